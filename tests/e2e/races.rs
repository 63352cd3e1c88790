//! Rules that concurrent requests race on, raced for real against the
//! running server, many rounds, on SQLite and PostgreSQL: what was answered,
//! what was stored and what reached the fake LINE are counted.

use std::collections::HashMap;

use futures::future::join_all;
use madoguchi_entity::{channels, chats, end_users, events, messages, webhook_receipts};
use madoguchi_tests::line::{TestChannel, eventually, follow_event, text_event};
use madoguchi_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestApp, spawn_app};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};

use crate::line::{claim, send};
use crate::sessions::{FIRST_PASSWORD, create_agent};

const ROUNDS: usize = 4;

on_both_backends!(
    concurrent_deliveries_for_new_and_existing_customers_are_each_stored_exactly_once,
    waiting_answers_leave_once_even_when_reply_jobs_race,
    two_admins_demoting_each_other_at_once_leave_one_admin,
    a_deactivation_decided_before_a_promotion_never_leaves_no_admin,
    a_failing_delivery_among_concurrent_ones_fails_alone,
    concurrent_messages_to_the_same_chats_are_each_counted_once,
    sends_racing_a_completion_or_a_block_never_land_after_it,
    changes_to_one_channel_at_once_apply_one_after_another,
    timer_changes_racing_deliveries_arm_in_one_order,
    two_replacements_of_the_classifications_at_once_leave_one_list,
    a_mapping_racing_a_new_link_never_names_another_portals_department,
    a_passcode_racing_answers_links_the_customer_without_a_deadlock,
);

async fn chat_of(app: &TestApp, channel: &TestChannel, user: &str) -> Option<chats::Model> {
    let end_user = end_users::Entity::find()
        .filter(end_users::Column::ChannelId.eq(uuid(&channel.id)))
        .filter(end_users::Column::ExternalId.eq(user))
        .one(app.core.db())
        .await
        .unwrap()?;
    chats::Entity::find().filter(chats::Column::EndUserId.eq(end_user.id)).one(app.core.db()).await.unwrap()
}

fn uuid(id: &str) -> uuid::Uuid {
    id.parse().unwrap_or_else(|_| panic!("not a uuid id: {id}"))
}

async fn inbound_with_external_id(app: &TestApp, external_id: &str) -> u64 {
    messages::Entity::find().filter(messages::Column::ExternalId.eq(external_id)).count(app.core.db()).await.unwrap()
}

/// Per round, all at once: 20 new customers' follow and first message in
/// two deliveries each; 10 messages of existing customers delivered 4 times
/// each; 4 deliveries carrying a message for each of those 10 customers,
/// half naming them in reverse order; and an agent claiming their chats.
/// Nothing deadlocks (PostgreSQL would break it by failing one side, which
/// a retry hides from every other check).
async fn concurrent_deliveries_for_new_and_existing_customers_are_each_stored_exactly_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let deadlocks_before = deadlocks(&app).await;
    for round in 0..ROUNDS {
        let existing: Vec<String> = (0..10).map(|n| format!("Uexisting{round}x{n}")).collect();
        for user in &existing {
            let event = text_event(user, &format!("hello-{user}"), "hello", &format!("r-hello-{user}"));
            assert_eq!(app.deliver_line(&channel, vec![event]).await, 200);
        }
        let mut chat_ids = Vec::new();
        for user in &existing {
            chat_ids.push(chat_of(&app, &channel, user).await.expect("an existing chat").id);
        }

        let mut deliveries: Vec<Vec<Value>> = Vec::new();
        let new_customers: Vec<String> = (0..20).map(|n| format!("Unew{round}x{n}")).collect();
        for user in &new_customers {
            deliveries.push(vec![follow_event(user, &format!("01FOLLOW{user}"), true)]);
            deliveries.push(vec![text_event(user, &format!("first-{user}"), "first message", &format!("r-{user}"))]);
        }
        // Each message alone, four times; and all ten together, four times,
        // in alternating orders.
        for user in &existing {
            for _ in 0..4 {
                deliveries.push(vec![text_event(user, &format!("again-{user}"), "again", &format!("r-again-{user}"))]);
            }
        }
        let together: Vec<Value> = existing
            .iter()
            .map(|user| text_event(user, &format!("together-{user}"), "together", &format!("r-together-{user}")))
            .collect();
        for copy in 0..4 {
            let mut events = together.clone();
            if copy % 2 == 1 {
                events.reverse();
            }
            deliveries.push(events);
        }
        let delivery_count = deliveries.len();

        let webhooks = join_all(deliveries.into_iter().map(|events| app.deliver_line(&channel, events)));
        let claims = join_all(chat_ids.iter().map(|chat_id| {
            app.graphql(
                Some(&admin),
                "mutation($id: ID!) { claimChat(id: $id) { status } }",
                json!({"id": chat_id.to_string()}),
            )
        }));
        let (statuses, claims) = tokio::join!(webhooks, claims);

        let mut answered: HashMap<u16, usize> = HashMap::new();
        for status in &statuses {
            *answered.entry(*status).or_default() += 1;
        }
        assert_eq!(answered, HashMap::from([(200, delivery_count)]), "round {round}: every delivery answered 200");
        for claim in &claims {
            assert!(claim["errors"].is_null(), "round {round}: a claim failed: {claim}");
        }
        for user in &new_customers {
            let chat =
                chat_of(&app, &channel, user).await.unwrap_or_else(|| panic!("round {round}: {user} has no chat"));
            let stored = messages::Entity::find()
                .filter(messages::Column::ChatId.eq(chat.id))
                .count(app.core.db())
                .await
                .unwrap();
            assert_eq!(stored, 1, "round {round}: {user}'s first message stored once");
            let end_users = end_users::Entity::find()
                .filter(end_users::Column::ExternalId.eq(user.as_str()))
                .count(app.core.db())
                .await
                .unwrap();
            assert_eq!(end_users, 1, "round {round}: one end user for {user}");
        }
        for user in &existing {
            assert_eq!(inbound_with_external_id(&app, &format!("again-{user}")).await, 1, "round {round}: {user}");
            assert_eq!(inbound_with_external_id(&app, &format!("together-{user}")).await, 1, "round {round}: {user}");
        }
    }
    // Retried, a deadlock would still pass the checks above; with one lock
    // order there is none to retry.
    assert_eq!(
        deadlocks(&app).await,
        deadlocks_before,
        "PostgreSQL broke a deadlock while deliveries and claims raced"
    );
}

/// Per round: five customers, each with two answers waiting for a token,
/// then one delivery carrying two messages (two fresh tokens) per customer,
/// so two reply jobs per chat run at once. Each answer reaches LINE once.
async fn waiting_answers_leave_once_even_when_reply_jobs_race(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let send = |chat_id: String, text: String| {
        let admin = admin.clone();
        let app = &app;
        async move {
            let sent = app
                .graphql(
                    Some(&admin),
                    "mutation($id: ID!, $text: String!) { sendMessage(chatId: $id, text: $text) { id } }",
                    json!({"id": chat_id, "text": text}),
                )
                .await;
            assert!(sent["errors"].is_null(), "{sent}");
        }
    };
    for round in 0..ROUNDS {
        let users: Vec<String> = (0..5).map(|n| format!("Uwait{round}x{n}")).collect();
        // A first message whose token is spent by the time anyone answers.
        app.line.set_reply_token_ttl(std::time::Duration::ZERO);
        let mut chat_ids = Vec::new();
        for user in &users {
            let event = text_event(user, &format!("hi-{user}"), "hi", &format!("spent-{user}"));
            assert_eq!(app.deliver_line(&channel, vec![event]).await, 200);
            let chat = chat_of(&app, &channel, user).await.expect("a chat");
            chat_ids.push(chat.id.to_string());
        }
        for chat_id in &chat_ids {
            app.graphql(Some(&admin), "mutation($id: ID!) { claimChat(id: $id) { id } }", json!({"id": chat_id})).await;
            send(chat_id.clone(), format!("{chat_id} answer one")).await;
            send(chat_id.clone(), format!("{chat_id} answer two")).await;
        }
        // Both answers of every chat wait as UNSENT.
        eventually(|| async {
            let mut waiting = 0;
            for chat_id in &chat_ids {
                waiting += messages::Entity::find()
                    .filter(messages::Column::ChatId.eq(uuid(chat_id)))
                    .filter(messages::Column::DeliveryState.eq("UNSENT"))
                    .count(app.core.db())
                    .await
                    .unwrap();
            }
            (waiting == 10).then_some(())
        })
        .await;

        app.line.set_reply_token_ttl(std::time::Duration::from_secs(60));
        let mut events = Vec::new();
        for user in &users {
            for n in 0..2 {
                events.push(text_event(user, &format!("more-{user}-{n}"), "more", &format!("fresh-{user}-{n}")));
            }
        }
        assert_eq!(app.deliver_line(&channel, events).await, 200);
        eventually(|| async {
            let mut sent = 0;
            for chat_id in &chat_ids {
                sent += messages::Entity::find()
                    .filter(messages::Column::ChatId.eq(uuid(chat_id)))
                    .filter(messages::Column::DeliveryState.eq("SENT"))
                    .count(app.core.db())
                    .await
                    .unwrap();
            }
            (sent == 10).then_some(())
        })
        .await;
        // Let any second job finish before counting.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;

        let mut delivered: HashMap<String, usize> = HashMap::new();
        for user in &users {
            for n in 0..2 {
                for message in app.line.replied(&format!("fresh-{user}-{n}")) {
                    for line in message["text"].as_str().unwrap_or_default().lines() {
                        *delivered.entry(line.to_owned()).or_default() += 1;
                    }
                }
            }
        }
        for chat_id in &chat_ids {
            for answer in ["one", "two"] {
                let text = format!("{chat_id} answer {answer}");
                assert_eq!(delivered.get(&text), Some(&1), "round {round}: {text:?} reached LINE once: {delivered:?}");
            }
        }
    }
}

/// Per round: the remaining admin makes a second one, then each demotes the
/// other at the same moment. One organization always keeps an active admin.
async fn two_admins_demoting_each_other_at_once_leave_one_admin(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let password = "a long admin password";
    let first = app.login_admin().await;
    let me = |token: String| {
        let app = &app;
        async move { app.graphql(Some(&token), "{ me { id } }", json!({})).await["data"]["me"]["id"].clone() }
    };
    let mut survivor = (ADMIN_EMAIL.to_owned(), ADMIN_PASSWORD.to_owned(), me(first.clone()).await);
    for round in 0..ROUNDS * 2 {
        let token = app.login(&survivor.0, &survivor.1).await;
        let email = format!("admin{round}@acme.example");
        let created = app
            .graphql(
                Some(&token),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
                json!({"input": {"email": email, "name": "Admin", "role": "ADMIN", "password": password}}),
            )
            .await;
        let other_id = created["data"]["createAgent"]["id"].clone();
        let other = app.login(&email, password).await;
        let demote = |token: String, id: Value| {
            let app = &app;
            async move {
                app.graphql(
                    Some(&token),
                    "mutation($id: ID!) { updateAgent(id: $id, input: {role: AGENT}) { id } }",
                    json!({"id": id}),
                )
                .await
            }
        };
        let (a, b) = tokio::join!(demote(token, other_id.clone()), demote(other, survivor.2.clone()));
        let succeeded = [&a, &b].iter().filter(|answer| answer["errors"].is_null()).count();
        assert_eq!(succeeded, 1, "round {round}: exactly one demotion wins: {a} {b}");
        assert_eq!(active_admins(&app).await.len(), 1, "round {round}: one active admin remains");
        if b["errors"].is_null() {
            survivor = (email, password.to_owned(), other_id);
        }
    }
}

/// Per round: the remaining admin makes a second admin and an agent, then
/// starts deactivating the agent (with a new password, whose hashing keeps
/// the request open after it has read the agent). Meanwhile the agent is
/// promoted and both other admins step down, one after another, each allowed
/// because the new admin remains. The deactivation, decided on an agent who
/// was no admin, must not then take away the last active admin.
async fn a_deactivation_decided_before_a_promotion_never_leaves_no_admin(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let update = |token: String, id: String, input: Value| {
        let app = &app;
        async move {
            app.graphql(
                Some(&token),
                "mutation($id: ID!, $input: UpdateAgentInput!) { updateAgent(id: $id, input: $input) { id } }",
                json!({"id": id, "input": input}),
            )
            .await
        }
    };
    let first = app.login_admin().await;
    let first_id = app.graphql(Some(&first), "{ me { id } }", json!({})).await["data"]["me"]["id"].clone();
    let first_id = first_id.as_str().unwrap().to_owned();
    let mut survivor = (ADMIN_EMAIL.to_owned(), ADMIN_PASSWORD.to_owned(), first_id);
    for round in 0..ROUNDS * 2 {
        let token = app.login(&survivor.0, &survivor.1).await;
        let second_email = format!("second{round}@acme.example");
        let second = create_agent(&app, &token, &second_email, "ADMIN").await;
        let promoted_email = format!("promoted{round}@acme.example");
        let promoted = create_agent(&app, &token, &promoted_email, "AGENT").await;

        let deactivation =
            update(token.clone(), promoted.clone(), json!({"active": false, "password": "a new password"}));
        let others = async {
            let mut answers = Vec::new();
            for (id, input) in [
                (promoted.clone(), json!({"role": "ADMIN"})),
                (second.clone(), json!({"role": "AGENT"})),
                (survivor.2.clone(), json!({"role": "AGENT"})),
            ] {
                answers.push(update(token.clone(), id, input).await);
            }
            answers
        };
        let (deactivated, others) = tokio::join!(deactivation, others);
        let admins = active_admins(&app).await;
        assert!(!admins.is_empty(), "round {round}: no active admin is left: {deactivated} {others:?}");
        // Whichever admin is left manages the next round.
        let left = admins[0].id.to_string();
        survivor = if left == promoted {
            (promoted_email, FIRST_PASSWORD.to_owned(), promoted)
        } else if left == second {
            (second_email, FIRST_PASSWORD.to_owned(), second)
        } else {
            survivor
        };
    }
}

/// The active admins, of every organization.
async fn active_admins(app: &TestApp) -> Vec<madoguchi_entity::agents::Model> {
    madoguchi_entity::agents::Entity::find()
        .filter(madoguchi_entity::agents::Column::Role.eq("ADMIN"))
        .filter(madoguchi_entity::agents::Column::Active.eq(true))
        .all(app.core.db())
        .await
        .unwrap()
}

/// Makes the database refuse one message text, as a bug or a broken row
/// would: the insert fails after the delivery has written other rows.
async fn refuse_messages_saying(app: &TestApp, text: &str) {
    let statements = match app.backend {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_text BEFORE INSERT ON messages WHEN NEW.text = '{text}' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse_text() RETURNS trigger AS $$ BEGIN \
                 IF NEW.text = '{text}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; \
                 END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER refuse_text BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_text()".into(),
        ],
    };
    for statement in statements {
        app.core.db().execute_unprepared(&statement).await.unwrap();
    }
}

/// Deadlocks PostgreSQL broke in this process so far
/// (`db_transaction_conflicts_total{conflict="deadlock"}`; the tests share
/// the process, and a deadlock in any of them is a lock-order bug).
async fn deadlocks(app: &TestApp) -> f64 {
    let text = app.client.get(format!("http://{}/metrics", app.metrics)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("db_transaction_conflicts_total{") && line.contains("conflict=\"deadlock\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sums a Prometheus summary's `_count` and `_sum` lines for `name`.
async fn summary(app: &TestApp, name: &str) -> (f64, f64) {
    let text = app.client.get(format!("http://{}/metrics", app.metrics)).send().await.unwrap().text().await.unwrap();
    let value = |suffix: &str| {
        text.lines()
            .filter(|line| line.starts_with(&format!("{name}{suffix}")))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    (value("_count"), value("_sum"))
}

/// Per round, all at once: 24 deliveries of two new customers each, and one
/// delivery whose first customer's message is fine and whose second's is
/// refused by the database. Deliveries that arrive together share one
/// transaction; the refused one is rolled back alone (its fine half too,
/// and its events), answered 500, and every other is stored and answered
/// 200. The event log stays gap-free, and the refused delivery, sent again
/// once the database accepts it, is stored whole.
async fn a_failing_delivery_among_concurrent_ones_fails_alone(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    refuse_messages_saying(&app, "refused").await;
    let organization_id = channels::Entity::find_by_id(uuid(&channel.id))
        .one(app.core.db())
        .await
        .unwrap()
        .expect("the channel")
        .organization_id;
    let (batches_before, deliveries_before) = summary(&app, "intake_batch_deliveries").await;
    for round in 0..ROUNDS {
        let mut deliveries: Vec<Vec<Value>> = (0..24)
            .map(|n| {
                (0..2)
                    .map(|m| {
                        let user = format!("Ugood{round}x{n}x{m}");
                        text_event(&user, &format!("good-{user}"), "hello", &format!("r-good-{user}"))
                    })
                    .collect()
            })
            .collect();
        let (fine, refused) = (format!("Ufine{round}"), format!("Urefused{round}"));
        let poisoned = vec![
            text_event(&fine, &format!("fine-{fine}"), "fine", &format!("r-{fine}")),
            text_event(&refused, &format!("refused-{refused}"), "refused", &format!("r-{refused}")),
        ];
        deliveries.insert(12, poisoned.clone());

        let statuses = join_all(deliveries.iter().map(|events| app.deliver_line(&channel, events.clone()))).await;
        for (n, status) in statuses.iter().enumerate() {
            let expected = if n == 12 { 500 } else { 200 };
            assert_eq!(*status, expected, "round {round}: delivery {n}");
        }
        for n in 0..24 {
            for m in 0..2 {
                let id = format!("good-Ugood{round}x{n}x{m}");
                assert_eq!(inbound_with_external_id(&app, &id).await, 1, "round {round}: {id} stored once");
            }
        }
        assert_eq!(inbound_with_external_id(&app, &format!("fine-{fine}")).await, 0, "round {round}: rolled back");
        assert!(chat_of(&app, &channel, &fine).await.is_none(), "round {round}: no chat for the refused delivery");
        let receipts = webhook_receipts::Entity::find()
            .filter(
                webhook_receipts::Column::ProviderEventId
                    .is_in([format!("01EVENTfine-{fine}"), format!("01EVENTrefused-{refused}")]),
            )
            .count(app.core.db())
            .await
            .unwrap();
        assert_eq!(receipts, 0, "round {round}: the refused delivery left no receipt, so it can come again");

        let seqs: Vec<i64> = events::Entity::find()
            .select_only()
            .column(events::Column::Seq)
            .filter(events::Column::OrganizationId.eq(organization_id))
            .order_by_asc(events::Column::Seq)
            .into_tuple()
            .all(app.core.db())
            .await
            .unwrap();
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, expected, "round {round}: the event log has no gap");
        // Every event names a chat that exists: none of the rolled-back
        // delivery's was written.
        let logged = events::Entity::find()
            .filter(events::Column::OrganizationId.eq(organization_id))
            .all(app.core.db())
            .await
            .unwrap();
        for event in &logged {
            if let Some(chat_id) = event.chat_id {
                let chat = chats::Entity::find_by_id(chat_id).one(app.core.db()).await.unwrap();
                assert!(
                    chat.is_some(),
                    "round {round}: event {} ({}) names a chat that was rolled back",
                    event.seq,
                    event.kind
                );
            }
        }
    }
    let (batches, deliveries) = summary(&app, "intake_batch_deliveries").await;
    assert!(
        deliveries - deliveries_before > batches - batches_before,
        "concurrent deliveries shared transactions: {} deliveries in {} batches",
        deliveries - deliveries_before,
        batches - batches_before
    );

    // Once the database takes it, LINE's redelivery is stored whole.
    let drop = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse_text",
        Backend::Postgres => "DROP TRIGGER refuse_text ON messages",
    };
    app.core.db().execute_unprepared(drop).await.unwrap();
    let (fine, refused) = ("Ufine0", "Urefused0");
    let poisoned = vec![
        text_event(fine, &format!("fine-{fine}"), "fine", &format!("r2-{fine}")),
        text_event(refused, &format!("refused-{refused}"), "refused", &format!("r2-{refused}")),
    ];
    assert_eq!(app.deliver_line(&channel, poisoned).await, 200);
    assert_eq!(inbound_with_external_id(&app, &format!("fine-{fine}")).await, 1);
    assert_eq!(inbound_with_external_id(&app, &format!("refused-{refused}")).await, 1);
}

/// Events of `kind` about `chat` logged after `after`.
async fn events_since(app: &TestApp, after: i64, kind: &str, chat: uuid::Uuid) -> u64 {
    events::Entity::find()
        .filter(events::Column::Seq.gt(after))
        .filter(events::Column::Kind.eq(kind))
        .filter(events::Column::ChatId.eq(chat))
        .count(app.core.db())
        .await
        .unwrap()
}

/// The chat `user` opens by writing once, claimed by the caller of `token`.
async fn claimed_chat(app: &TestApp, token: &str, channel: &TestChannel, user: &str) -> chats::Model {
    let event = text_event(user, &format!("hello-{user}"), "hello", &format!("r-hello-{user}"));
    assert_eq!(app.deliver_line(channel, vec![event]).await, 200);
    let chat = chat_of(app, channel, user).await.expect("a chat");
    let claimed = claim(app, token, &chat.id.to_string()).await;
    assert!(claimed["errors"].is_null(), "{user}: {claimed}");
    chat
}

/// The agent's `n`th answer in a chat.
async fn answer(app: &TestApp, token: &str, chat_id: &str, n: usize) -> Value {
    send(app, token, chat_id, &format!("answer {n}")).await
}

/// Per round: six customers with a chat each, the first's completed and the
/// second blocked; then, all at once, 30 deliveries of one to three
/// messages each from those six, so that shared transactions change one
/// chat several times and race each other for it. Every message is stored
/// once with one event; each chat's unread count grows by exactly its new
/// messages; the completed chat is reopened once; the blocked customer's
/// messages are kept and change nothing.
async fn concurrent_messages_to_the_same_chats_are_each_counted_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let mutate = |query: &'static str, variables: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            let answer = app.graphql(Some(admin), query, variables).await;
            assert!(answer["errors"].is_null(), "{query}: {answer}");
        }
    };
    for round in 0..ROUNDS {
        let users: Vec<String> = (0..6).map(|n| format!("Ucount{round}x{n}")).collect();
        let mut chats = Vec::new();
        for user in &users {
            let event = text_event(user, &format!("first-{user}"), "first", &format!("r-first-{user}"));
            assert_eq!(app.deliver_line(&channel, vec![event]).await, 200);
            chats.push(chat_of(&app, &channel, user).await.expect("a chat"));
        }
        let (completed, blocked) = (chats[0].id.to_string(), chats[1].id.to_string());
        mutate("mutation($id: ID!) { claimChat(id: $id) { status } }", json!({"id": completed})).await;
        mutate("mutation($id: ID!) { completeChat(id: $id) { status } }", json!({"id": completed})).await;
        mutate(
            "mutation($id: ID!) { setEndUserBlocked(chatId: $id, blocked: true) { status } }",
            json!({"id": blocked}),
        )
        .await;
        let mut before = Vec::new();
        for user in &users {
            before.push(chat_of(&app, &channel, user).await.expect("a chat"));
        }
        assert_eq!(before[0].status, "COMPLETED", "round {round}");
        let last_seq: i64 = events::Entity::find()
            .select_only()
            .column_as(events::Column::Seq.max(), "seq")
            .into_tuple::<Option<i64>>()
            .one(app.core.db())
            .await
            .unwrap()
            .flatten()
            .unwrap_or(0);

        let mut sent = vec![0u64; users.len()];
        let deliveries: Vec<Vec<Value>> = (0..30)
            .map(|d| {
                let n = d % users.len();
                let user = &users[n];
                let count = 1 + d % 3;
                sent[n] += count as u64;
                (0..count)
                    .map(|m| {
                        text_event(
                            user,
                            &format!("many-{user}-{d}-{m}"),
                            &format!("text {d}.{m}"),
                            &format!("r-{d}-{m}"),
                        )
                    })
                    .collect()
            })
            .collect();
        let statuses = join_all(deliveries.iter().map(|events| app.deliver_line(&channel, events.clone()))).await;
        assert!(statuses.iter().all(|status| *status == 200), "round {round}: {statuses:?}");

        for (n, user) in users.iter().enumerate() {
            let chat = chat_of(&app, &channel, user).await.expect("a chat");
            let inbound = messages::Entity::find()
                .filter(messages::Column::ChatId.eq(chat.id))
                .count(app.core.db())
                .await
                .unwrap();
            assert_eq!(inbound, 1 + sent[n], "round {round}: {user}'s messages each stored once");
            let created = events_since(&app, last_seq, "message.created", chat.id).await;
            if n == 1 {
                assert_eq!(chat.unread_count, before[n].unread_count, "round {round}: blocked, so not counted");
                assert_eq!(chat.status, before[n].status, "round {round}: blocked, so not reopened");
                assert_eq!(created, 0, "round {round}: a blocked customer's messages notify no one");
                continue;
            }
            assert_eq!(
                chat.unread_count as u64,
                before[n].unread_count as u64 + sent[n],
                "round {round}: {user}'s unread count grew by each new message once"
            );
            assert_eq!(created, sent[n], "round {round}: one event per message of {user}");
            assert_eq!(chat.status, if n == 0 { "NEW" } else { before[n].status.as_str() }, "round {round}: {user}");
        }
        assert_eq!(events_since(&app, last_seq, "chat.reopened", chats[0].id).await, 1, "round {round}: reopened once");
    }
}

/// Per round: a customer writes, the admin claims the chat, then sends
/// eight answers at the moment the chat is completed (even rounds) or the
/// customer blocked (odd rounds; a completion refused because a send
/// changed the chat meanwhile is asked again). Each send either commits
/// before that —
/// its message's event logged first — or is refused for that reason and
/// stores nothing; none lands after it.
async fn sends_racing_a_completion_or_a_block_never_land_after_it(backend: Backend) {
    const SENDS: usize = 8;
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    for round in 0..ROUNDS * 2 {
        let chat = claimed_chat(&app, &admin, &channel, &format!("Uanswered{round}")).await;
        let chat_id = chat.id.to_string();
        let id = json!({"id": chat_id});
        let (ending, ended, refusal) = if round % 2 == 0 {
            ("mutation($id: ID!) { completeChat(id: $id) { status } }", "chat.completed", "only the agent who claimed")
        } else {
            (
                "mutation($id: ID!) { setEndUserBlocked(chatId: $id, blocked: true) { status } }",
                "end_user.blocked",
                "the customer is blocked",
            )
        };

        let sends = join_all((0..SENDS).map(|n| answer(&app, &admin, &chat_id, n)));
        // A completion that meets a send changing the chat is refused as
        // changed meanwhile (ABORTED), and asked again, as a client would.
        let end = async {
            loop {
                let end = app.graphql(Some(&admin), ending, id.clone()).await;
                if end["errors"][0]["extensions"]["code"] != "ABORTED" {
                    return end;
                }
            }
        };
        let (sends, end) = tokio::join!(sends, end);
        assert!(end["errors"].is_null(), "round {round}: {end}");

        let sent = sends.iter().filter(|answer| answer["errors"].is_null()).count();
        for answer in sends.iter().filter(|answer| !answer["errors"].is_null()) {
            let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains(refusal), "round {round}: refused for another reason: {answer}");
        }
        let stored = messages::Entity::find()
            .filter(messages::Column::ChatId.eq(chat.id))
            .filter(messages::Column::Direction.eq("OUTBOUND"))
            .count(app.core.db())
            .await
            .unwrap();
        assert_eq!(stored, sent as u64, "round {round}: a refused send stores nothing");
        let end_seq = events::Entity::find()
            .filter(events::Column::ChatId.eq(chat.id))
            .filter(events::Column::Kind.eq(ended))
            .one(app.core.db())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: no {ended} event"))
            .seq;
        assert_eq!(
            events_since(&app, end_seq, "message.created", chat.id).await,
            0,
            "round {round}: {sent} of {SENDS} sends succeeded; one landed after {ended}"
        );
    }
}

/// Per round, on a new channel, all at once: two admins' replacements of
/// its agents with lists that share no one, a disable and a delete. Both
/// replacements succeed and the channel keeps one list, not both; the
/// delete is final — the disable either came first or is refused.
async fn changes_to_one_channel_at_once_apply_one_after_another(backend: Backend) {
    use madoguchi_entity::channel_agents;

    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let mut agents = Vec::new();
    for n in 0..4 {
        let created = app
            .graphql(
                Some(&admin),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
                json!({"input": {"email": format!("agent{n}@acme.example"), "name": "Agent", "role": "AGENT", "password": "a long agent password"}}),
            )
            .await;
        agents.push(created["data"]["createAgent"]["id"].as_str().expect("an agent").to_owned());
    }
    let mut lists = [agents[..2].to_vec(), agents[2..].to_vec()];
    lists.iter_mut().for_each(|list| list.sort());
    for round in 0..ROUNDS * 2 {
        let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
        let replace = |list: &Vec<String>| {
            app.graphql(
                Some(&admin),
                "mutation($id: ID!, $agents: [ID!]!) { setChannelAgents(id: $id, agentIds: $agents) }",
                json!({"id": channel.id, "agents": list}),
            )
        };
        let set_status = |status: &str| {
            app.graphql(
                Some(&admin),
                "mutation($id: ID!, $status: ChannelStatus!) { setChannelStatus(id: $id, status: $status) { status } }",
                json!({"id": channel.id, "status": status}),
            )
        };
        let (first, second, disabled, deleted) =
            tokio::join!(replace(&lists[0]), replace(&lists[1]), set_status("DISABLED"), set_status("DELETED"));

        for answer in [&first, &second, &deleted] {
            assert!(answer["errors"].is_null(), "round {round}: {answer}");
        }
        let mut kept: Vec<String> = channel_agents::Entity::find()
            .filter(channel_agents::Column::ChannelId.eq(uuid(&channel.id)))
            .all(app.core.db())
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.agent_id.to_string())
            .collect();
        kept.sort();
        assert!(lists.contains(&kept), "round {round}: the channel's agents are one list, not {kept:?}");

        if !disabled["errors"].is_null() {
            let message = disabled["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains("deleted"), "round {round}: disabling refused for another reason: {disabled}");
        }
        let row = channels::Entity::find_by_id(uuid(&channel.id)).one(app.core.db()).await.unwrap().unwrap();
        assert_eq!(row.status, "DELETED", "round {round}: the delete stays (disable: {disabled})");
        assert!(row.deleted_at.is_some(), "round {round}");
    }
}

/// Per round, all at once, on a channel with timers: 12 deliveries each
/// carrying messages of three of six customers, and three changes of the
/// channel's timers, which arm every open chat's timers again. Intake and
/// the change lock the chats' timer jobs in one order (chat id), so every
/// delivery is answered 200, every change succeeds (it is not run again
/// when PostgreSQL breaks a deadlock) and no deadlock is broken.
async fn timer_changes_racing_deliveries_arm_in_one_order(backend: Backend) {
    const TIMERS: &str = "mutation($id: ID!, $t: ChannelTimersInput!) { setChannelTimers(id: $id, timers: $t) { id } }";
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let timers = |seconds: i64| json!({"id": channel.id, "t": {"autoTicketAfterSeconds": seconds, "idleCloseAfterSeconds": seconds}});
    let set = app.graphql(Some(&admin), TIMERS, timers(600)).await;
    assert!(set["errors"].is_null(), "{set}");
    let customers: Vec<String> = (0..6).map(|n| format!("Utimed{n}")).collect();
    // Chats opened in reverse: their ids run against the customers' order,
    // the order a delivery's messages are stored in.
    for user in customers.iter().rev() {
        let event = text_event(user, &format!("first-{user}"), "hello", &format!("r-first-{user}"));
        assert_eq!(app.deliver_line(&channel, vec![event]).await, 200);
    }
    let deadlocks_before = deadlocks(&app).await;
    for round in 0..ROUNDS * 2 {
        let deliveries = (0..12).map(|n| {
            let events: Vec<Value> = (0..3)
                .map(|k| {
                    let user = &customers[(n + k * 2) % customers.len()];
                    let id = format!("timed-{round}-{n}-{k}");
                    text_event(user, &id, "again", &format!("r-{id}"))
                })
                .collect();
            app.deliver_line(&channel, events)
        });
        let changes = (0..3).map(|n| app.graphql(Some(&admin), TIMERS, timers(600 + 60 * (round * 3 + n) as i64)));
        let (statuses, changes) = tokio::join!(join_all(deliveries), join_all(changes));
        assert!(statuses.iter().all(|status| *status == 200), "round {round}: {statuses:?}");
        for change in &changes {
            assert!(change["errors"].is_null(), "round {round}: a timer change failed: {change}");
        }
    }
    assert_eq!(deadlocks(&app).await, deadlocks_before, "no deadlock was broken");
}

/// Per round: two replacements of the helpdesk portal's classifications at
/// once, with lists that share no name (odd rounds: one name). Both succeed,
/// and the portal keeps one list, not both.
async fn two_replacements_of_the_classifications_at_once_leave_one_list(backend: Backend) {
    const SET: &str = "mutation($names: [String!]!) { setTicketClassifications(names: $names) }";
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    for round in 0..ROUNDS * 2 {
        let shared = if round % 2 == 1 { vec!["Shared".to_owned()] } else { Vec::new() };
        let lists: Vec<Vec<String>> = ["A", "B"]
            .iter()
            .map(|side| [shared.clone(), (0..3).map(|n| format!("{side}{round}-{n}")).collect()].concat())
            .collect();
        let (first, second) = tokio::join!(
            app.graphql(Some(&admin), SET, json!({"names": lists[0]})),
            app.graphql(Some(&admin), SET, json!({"names": lists[1]})),
        );
        assert!(first["errors"].is_null() && second["errors"].is_null(), "round {round}: {first} {second}");
        let kept = app.graphql(Some(&admin), "{ ticketClassifications }", json!({})).await;
        let kept: Vec<String> = serde_json::from_value(kept["data"]["ticketClassifications"].clone()).unwrap();
        assert!(lists.contains(&kept), "round {round}: the portal's classifications are one list, not {kept:?}");
    }
}

/// Per round, at once: the chat side's admin maps its department onto a
/// department of the portal the link points to, and links another portal
/// (which maps afresh). The mapping came first, or is refused; no mapping
/// ever names a department of a portal the link does not point to.
async fn a_mapping_racing_a_new_link_never_names_another_portals_department(backend: Backend) {
    use madoguchi_entity::{department_mappings, departments, helpdesk_links};

    const MAP: &str = "mutation($d: ID!, $h: ID) { setDepartmentMapping(departmentId: $d, mode: DEPARTMENT, helpdeskDepartmentId: $h) { enabled } }";
    const LINK: &str = "mutation($input: LinkHelpdeskInput!) { linkHelpdesk(input: $input) { enabled } }";
    let Some(app) = spawn_app(backend).await else { return };
    let (acme, globex, channel, globex_department) = crate::tickets::linked(&app).await;
    let initech = crate::isolation::third_tenant(&app).await;
    let created =
        app.graphql(Some(&initech), "mutation { createDepartment(name: \"Elsewhere\") { id } }", json!({})).await;
    let initech_department = created["data"]["createDepartment"]["id"].as_str().expect("a department").to_owned();
    let shown = app
        .graphql(Some(&acme), "query($id: ID!) { channel(id: $id) { departmentId } }", json!({"id": channel.id}))
        .await;
    let ours = shown["data"]["channel"]["departmentId"].as_str().unwrap().to_owned();
    let portals = [
        ("globex", "boss@globex.example", globex, globex_department),
        ("initech", "bill@initech.example", initech, initech_department),
    ];

    for round in 0..ROUNDS * 2 {
        let ((_, _, _, from_department), (to, to_email, to_admin, _)) =
            (&portals[round % 2], &portals[(round + 1) % 2]);
        let key = app.graphql(Some(to_admin), "mutation { generateZscKey { zscKey } }", json!({})).await;
        let key = key["data"]["generateZscKey"]["zscKey"].as_str().unwrap_or_else(|| panic!("{key}")).to_owned();
        let link = json!({"input": {"adminEmail": to_email, "portalName": to, "zscKey": key}});
        let (mapped, linked) = tokio::join!(
            app.graphql(Some(&acme), MAP, json!({"d": ours, "h": from_department})),
            app.graphql(Some(&acme), LINK, link),
        );
        assert!(linked["errors"].is_null(), "round {round}: {linked}");
        if !mapped["errors"].is_null() {
            let message = mapped["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains("not in the linked helpdesk portal"), "round {round}: {mapped}");
        }
        let link = helpdesk_links::Entity::find().one(app.core.db()).await.unwrap().expect("the link");
        let mappings = department_mappings::Entity::find()
            .filter(department_mappings::Column::LinkId.eq(link.id))
            .all(app.core.db())
            .await
            .unwrap();
        for mapping in mappings {
            let Some(department) = mapping.helpdesk_department_id else { continue };
            let department = departments::Entity::find_by_id(department).one(app.core.db()).await.unwrap().unwrap();
            assert_eq!(
                Some(department.organization_id),
                link.helpdesk_organization_id,
                "round {round}: a mapping names another portal's department (mapping: {mapped})"
            );
        }
    }
}

/// Per round, at once: a customer sends the passcode an agent gave them
/// while the agent sends six answers in their chat. Intake locks the chat,
/// then the customer to link the contact; a send locks the chat, then the
/// customer against a block: one order, so every answer is sent, the
/// customer is linked, and no deadlock is broken.
async fn a_passcode_racing_answers_links_the_customer_without_a_deadlock(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let deadlocks_before = deadlocks(&app).await;
    for round in 0..ROUNDS * 2 {
        let user = format!("Ulinked{round}");
        let chat = claimed_chat(&app, &admin, &channel, &user).await;
        let chat_id = chat.id.to_string();
        let (contact_id, code) = crate::abuse::issue_passcode(&app, &admin, &format!("Contact {round}")).await;

        let passcode = text_event(&user, &format!("code-{user}"), &code, &format!("r-code-{user}"));
        let sends = join_all((0..6).map(|n| answer(&app, &admin, &chat_id, n)));
        let (status, sends) = tokio::join!(app.deliver_line(&channel, vec![passcode]), sends);
        assert_eq!(status, 200, "round {round}");
        for sent in &sends {
            assert!(sent["errors"].is_null(), "round {round}: {sent}");
        }
        let linked = end_users::Entity::find_by_id(chat.end_user_id).one(app.core.db()).await.unwrap().unwrap();
        assert_eq!(
            linked.contact_id.map(|id| id.to_string()),
            Some(contact_id),
            "round {round}: linked by the passcode"
        );
    }
    assert_eq!(deadlocks(&app).await, deadlocks_before, "no deadlock was broken");
}
