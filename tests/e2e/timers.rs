//! A channel's timers as durable jobs, moved by the server's clock: the
//! missed-chat and idle closes (moved by messages, surviving a crash), the
//! auto-ticket timer (one ticket per window), the helpdesk link's rule
//! deciding which completed chats become tickets, passcode expiry, and two
//! replicas with the same timers due making each ticket once.

use chrono::{DateTime, Duration, Utc};
use madoguchi_entity::{jobs, passcodes, ticket_chats, tickets};
use madoguchi_tests::line::{TestChannel, eventually, text_event};
use madoguchi_tests::{Backend, TestApp, spawn_app};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::tickets::linked;

async fn set_timers(app: &TestApp, admin: &str, channel: &TestChannel, timers: Value) -> Value {
    app.graphql(
        Some(admin),
        "mutation($id: ID!, $t: ChannelTimersInput!) { setChannelTimers(id: $id, timers: $t) { timers { autoTicketAfterSeconds missedCloseAfter idleCloseAfterSeconds } } }",
        json!({"id": channel.id, "t": timers}),
    )
    .await
}

async fn chat_of(app: &TestApp, admin: &str, user: &str) -> String {
    let chats = app
        .graphql(
            Some(admin),
            "query($id: String!) { chats(filter: {customerId: $id}) { edges { node { id } } } }",
            json!({"id": user}),
        )
        .await;
    chats["data"]["chats"]["edges"][0]["node"]["id"].as_str().unwrap_or_else(|| panic!("{chats}")).to_owned()
}

async fn write(app: &TestApp, channel: &TestChannel, user: &str, message_id: &str) {
    let event = text_event(user, message_id, &format!("text of {message_id}"), &format!("r-{message_id}"));
    assert_eq!(app.deliver_line(channel, vec![event]).await, 200);
}

async fn mutate(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let answer = app.graphql(Some(token), query, variables).await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer
}

async fn claim_and_answer(app: &TestApp, token: &str, chat_id: &str) {
    mutate(app, token, "mutation($id: ID!) { claimChat(id: $id) { id } }", json!({"id": chat_id})).await;
    let send = "mutation($id: ID!, $text: String!) { sendMessage(chatId: $id, text: $text) { id } }";
    mutate(app, token, send, json!({"id": chat_id, "text": "on it"})).await;
}

async fn complete(app: &TestApp, token: &str, chat_id: &str) {
    mutate(app, token, "mutation($id: ID!) { completeChat(id: $id) { id } }", json!({"id": chat_id})).await;
}

/// The chat's status and completion reason.
async fn status(app: &TestApp, admin: &str, chat_id: &str) -> (String, Option<String>) {
    let chat = app
        .graphql(Some(admin), "query($id: ID!) { chat(id: $id) { status completionReason } }", json!({"id": chat_id}))
        .await;
    let chat = &chat["data"]["chat"];
    (
        chat["status"].as_str().unwrap_or_else(|| panic!("{chat}")).to_owned(),
        chat["completionReason"].as_str().map(str::to_owned),
    )
}

/// The chat's timer job of `kind` (`chat.close_missed`, …).
async fn timer(app: &TestApp, kind: &str, chat_id: &str) -> jobs::Model {
    jobs::Entity::find()
        .filter(jobs::Column::DedupeKey.eq(format!("timer:{kind}:{chat_id}")))
        .one(app.core.db())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {kind} timer for {chat_id}"))
}

/// Waits until no job of `kind` is queued and due, or running.
pub(crate) async fn settled(app: &TestApp, kind: &str) {
    eventually(|| async {
        let busy = jobs::Entity::find()
            .filter(jobs::Column::Kind.eq(kind))
            .filter(jobs::Column::Status.is_in(["QUEUED", "RUNNING"]))
            .filter(jobs::Column::RunAt.lte(app.core.now()))
            .all(app.core.db())
            .await
            .unwrap();
        busy.is_empty().then_some(())
    })
    .await;
}

/// Each ticket of the portal: the chat it came from, its department and
/// status, and its description — in number order.
pub(crate) async fn tickets_of(
    app: &TestApp,
    portal: uuid::Uuid,
) -> Vec<(uuid::Uuid, Option<uuid::Uuid>, String, String)> {
    let rows = tickets::Entity::find()
        .filter(tickets::Column::OrganizationId.eq(portal))
        .order_by_asc(tickets::Column::Number)
        .all(app.core.db())
        .await
        .unwrap();
    let mut found = Vec::new();
    for row in rows {
        let chat = ticket_chats::Entity::find()
            .filter(ticket_chats::Column::TicketId.eq(row.id))
            .one(app.core.db())
            .await
            .unwrap()
            .unwrap();
        found.push((chat.chat_id, row.department_id, row.status, row.description.unwrap_or_default()));
    }
    found
}

pub(crate) async fn portal(app: &TestApp, name: &str) -> uuid::Uuid {
    let name = madoguchi_core::organizations::PortalName::parse(name).unwrap();
    app.core.organizations().find_by_portal(&name).await.unwrap().id.uuid()
}

fn close_to(actual: DateTime<Utc>, expected: DateTime<Utc>) -> bool {
    (actual - expected).num_seconds().abs() <= 5
}

async fn missed_and_idle_chats_close_on_time_moved_by_messages_across_a_crash(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "PUSH", "STANDARD").await;
    let set = set_timers(
        &app,
        &admin,
        &channel,
        json!({"missedCloseAfter": "FIFTEEN_MINUTES", "idleCloseAfterSeconds": 600}),
    )
    .await;
    assert_eq!(
        set["data"]["setChannelTimers"]["timers"],
        json!({"autoTicketAfterSeconds": null, "missedCloseAfter": "FIFTEEN_MINUTES", "idleCloseAfterSeconds": 600}),
        "{set}"
    );
    let start = app.core.now();
    // A: nobody answers. B: claimed and answered, then quiet.
    write(&app, &channel, "Umissed", "a1").await;
    let missed = chat_of(&app, &admin, "Umissed").await;
    write(&app, &channel, "Uidle", "b1").await;
    let idle = chat_of(&app, &admin, "Uidle").await;
    claim_and_answer(&app, &admin, &idle).await;
    let first = timer(&app, "chat.close_missed", &missed).await;
    assert_eq!(first.status, "QUEUED");
    assert!(close_to(first.run_at, start + Duration::minutes(15)), "{first:?}");
    let armed = timer(&app, "chat.close_idle", &idle).await.run_at;
    assert!(close_to(armed, start + Duration::minutes(10)), "{armed}");

    // Five minutes on, the customer writes again: the idle close moves.
    app.clock.advance(Duration::minutes(5));
    write(&app, &channel, "Uidle", "b2").await;
    let moved = timer(&app, "chat.close_idle", &idle).await;
    assert!(close_to(moved.run_at, start + Duration::minutes(15)), "{moved:?}");
    assert_eq!(moved.status, "QUEUED");

    // The server dies; its timers do not.
    let app = app.crash().await.restart().await;
    let admin = app.login_admin().await;
    app.clock.advance(Duration::minutes(6));
    assert_eq!(status(&app, &admin, &missed).await.0, "NEW", "11 minutes: not missed yet");
    assert_eq!(status(&app, &admin, &idle).await.0, "IN_PROGRESS", "6 minutes since its last message");

    app.clock.advance(Duration::minutes(5));
    settled(&app, "chat.close_missed").await;
    settled(&app, "chat.close_idle").await;
    assert_eq!(status(&app, &admin, &missed).await, ("COMPLETED".into(), Some("MISSED".into())));
    assert_eq!(status(&app, &admin, &idle).await, ("COMPLETED".into(), Some("IDLE".into())));

    // A new message reopens the missed chat, and arms its timer again.
    write(&app, &channel, "Umissed", "a2").await;
    assert_eq!(status(&app, &admin, &missed).await, ("NEW".into(), None));
    let rearmed = timer(&app, "chat.close_missed", &missed).await;
    assert_eq!(rearmed.status, "QUEUED");
    assert!(close_to(rearmed.run_at, app.core.now() + Duration::minutes(15)), "{rearmed:?}");
}

async fn the_auto_ticket_timer_makes_one_ticket_per_window(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "PUSH", "STANDARD").await;
    let set = set_timers(&app, &admin, &channel, json!({"autoTicketAfterSeconds": 3600})).await;
    assert!(set["errors"].is_null(), "{set}");
    let portal = portal(&app, "acme").await;

    write(&app, &channel, "Uwindow", "w1").await;
    let chat = chat_of(&app, &admin, "Uwindow").await;
    app.clock.advance(Duration::minutes(30));
    write(&app, &channel, "Uwindow", "w2").await;
    // The window runs from its first message: 31 minutes later it ends.
    app.clock.advance(Duration::minutes(31));
    settled(&app, "chat.auto_ticket").await;
    settled(&app, "chat.convert").await;
    let made = tickets_of(&app, portal).await;
    assert_eq!(made.len(), 1, "{made:?}");
    let (chat_id, _, status, description) = &made[0];
    assert_eq!(chat_id.to_string(), chat);
    assert_eq!(status, "OPEN");
    assert!(description.contains("text of w1") && description.contains("text of w2"), "{description}");

    // A message after that starts the next ticket, with only its own messages.
    write(&app, &channel, "Uwindow", "w3").await;
    app.clock.advance(Duration::minutes(59));
    settled(&app, "chat.auto_ticket").await;
    assert_eq!(tickets_of(&app, portal).await.len(), 1, "the second window is not over yet");
    app.clock.advance(Duration::minutes(2));
    settled(&app, "chat.auto_ticket").await;
    settled(&app, "chat.convert").await;
    let made = tickets_of(&app, portal).await;
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(made[1].3.contains("text of w3") && !made[1].3.contains("text of w2"), "{}", made[1].3);

    // Completing the chat with no window open makes nothing more.
    claim_and_answer(&app, &admin, &chat).await;
    complete(&app, &admin, &chat).await;
    settled(&app, "chat.convert").await;
    assert_eq!(tickets_of(&app, portal).await.len(), 2);
}

/// Under each rule, an attended and a missed chat are completed; exactly the
/// ones the rule names become tickets, in the mapped department, with the
/// link's status.
async fn the_links_rule_decides_which_completed_chats_become_tickets(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (acme, globex, channel, helpdesk_department) = linked(&app).await;
    let globex_id = portal(&app, "globex").await;
    let cases = [
        ("ALL_VISITORS", "OPEN", true, true),
        ("ATTENDED", "CLOSED", true, false),
        ("MISSED", "OPEN", false, true),
        ("NONE", "OPEN", false, false),
    ];
    let mut expected = Vec::new();
    for (rule, status, attended_converts, missed_converts) in cases {
        let set = "mutation($r: ChatToTicketRule!, $s: TicketStatus!) { setChatToTicketRule(rule: $r, ticketStatus: $s, recentTickets: ALL_DEPARTMENTS) { rule } }";
        mutate(&app, &acme, set, json!({"r": rule, "s": status})).await;
        let (attended_user, missed_user) = (format!("Ua{rule}"), format!("Um{rule}"));
        write(&app, &channel, &attended_user, &format!("{rule}-a")).await;
        let attended = chat_of(&app, &acme, &attended_user).await;
        claim_and_answer(&app, &acme, &attended).await;
        complete(&app, &acme, &attended).await;
        write(&app, &channel, &missed_user, &format!("{rule}-m")).await;
        let missed = chat_of(&app, &acme, &missed_user).await;
        complete(&app, &acme, &missed).await;
        settled(&app, "chat.convert").await;
        if attended_converts {
            expected.push((attended.clone(), status));
        }
        if missed_converts {
            expected.push((missed.clone(), status));
        }
        let made: Vec<(String, String)> = tickets_of(&app, globex_id)
            .await
            .into_iter()
            .map(|(chat, department, status, _)| {
                assert_eq!(department.map(|id| id.to_string()), Some(helpdesk_department.clone()));
                (chat.to_string(), status)
            })
            .collect();
        let expected: Vec<(String, String)> =
            expected.iter().map(|(chat, status)| (chat.clone(), (*status).to_owned())).collect();
        assert_eq!(made, expected, "after {rule}");
    }
    // The helpdesk sees them as its own tickets.
    let search = app.graphql(Some(&globex), "query { searchTickets(text: \"Chat with\") { number } }", json!({})).await;
    assert_eq!(search["data"]["searchTickets"].as_array().map(Vec::len), Some(4), "{search}");

    // A disabled link makes none.
    mutate(&app, &acme, "mutation { setHelpdeskLinkEnabled(enabled: false) { enabled } }", json!({})).await;
    let set = "mutation { setChatToTicketRule(rule: ALL_VISITORS, ticketStatus: OPEN, recentTickets: ALL_DEPARTMENTS) { rule } }";
    let _ = app.graphql(Some(&acme), set, json!({})).await;
    write(&app, &channel, "Udisabled", "d1").await;
    let chat = chat_of(&app, &acme, "Udisabled").await;
    complete(&app, &acme, &chat).await;
    settled(&app, "chat.convert").await;
    assert_eq!(tickets_of(&app, globex_id).await.len(), 4);
}

async fn an_unused_passcode_expires_and_frees_its_code(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let contact = mutate(
        &app,
        &admin,
        "mutation($input: ContactInput!) { createContact(input: $input) { id } }",
        json!({"input": {"name": "Hanako"}}),
    )
    .await;
    let contact_id = contact["data"]["createContact"]["id"].as_str().unwrap().to_owned();
    let issue = "mutation($id: ID!) { issuePasscode(contactId: $id, validMinutes: 5) { code } }";
    let issued = mutate(&app, &admin, issue, json!({"id": contact_id})).await;
    let code = issued["data"]["issuePasscode"]["code"].as_str().unwrap().to_owned();
    let count = || async {
        passcodes::Entity::find()
            .filter(passcodes::Column::Code.eq(code.clone()))
            .all(app.core.db())
            .await
            .unwrap()
            .len()
    };
    app.clock.advance(Duration::minutes(4));
    settled(&app, "passcode.expire").await;
    assert_eq!(count().await, 1, "still valid for a minute");
    app.clock.advance(Duration::minutes(2));
    settled(&app, "passcode.expire").await;
    assert_eq!(count().await, 0);
}

/// Two servers on one PostgreSQL, many chats' auto-ticket timers due at once:
/// every window becomes exactly one ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_the_same_timers_due_make_each_ticket_once() {
    let Some(app) = spawn_app(Backend::Postgres).await else { return };
    let replica = app.spawn_replica().await;
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "PUSH", "STANDARD").await;
    mutate(
        &app,
        &admin,
        "mutation($id: ID!) { setChannelTimers(id: $id, timers: {autoTicketAfterSeconds: 600}) { id } }",
        json!({"id": channel.id}),
    )
    .await;
    let portal = portal(&app, "acme").await;
    for round in 0..4 {
        let users: Vec<String> = (0..8).map(|n| format!("Ur{round}x{n}")).collect();
        for user in &users {
            write(&app, &channel, user, &format!("{user}-1")).await;
        }
        // Both servers' workers see every timer due at once.
        app.clock.advance(Duration::minutes(11));
        settled(&app, "chat.auto_ticket").await;
        settled(&replica, "chat.convert").await;
        let made = tickets_of(&app, portal).await;
        assert_eq!(made.len(), 8 * (round + 1), "round {round}: {made:?}");
        let mut chats: Vec<uuid::Uuid> = made.iter().map(|(chat, ..)| *chat).collect();
        chats.sort_unstable();
        chats.dedup();
        assert_eq!(chats.len(), made.len(), "one ticket per chat");
    }
}

on_both_backends!(
    missed_and_idle_chats_close_on_time_moved_by_messages_across_a_crash,
    the_auto_ticket_timer_makes_one_ticket_per_window,
    the_links_rule_decides_which_completed_chats_become_tickets,
    an_unused_passcode_expires_and_frees_its_code
);
