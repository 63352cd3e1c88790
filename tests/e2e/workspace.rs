//! The agent workspace: exclusive claims (also across two server processes),
//! who may do what, filters and pages, passcodes, and live subscriptions
//! that replay what a dropped connection missed.

use std::time::Duration;

use madoguchi_core::ids::OrganizationId;
use madoguchi_tests::graphql_ws::{GraphqlWs, Received};
use madoguchi_tests::line::{TestChannel, text_event};
use madoguchi_tests::{Backend, TestApp, error_code, spawn_app};
use serde_json::json;

struct Team {
    admin: String,
    ann: String,
    ann_id: String,
    bob: String,
    bob_id: String,
    channel: TestChannel,
}

async fn create_agent(app: &TestApp, admin: &str, email: &str) -> (String, String) {
    let created = app
        .graphql(
            Some(admin),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": email, "role": "AGENT", "password": "a long password"}}),
        )
        .await;
    let id = created["data"]["createAgent"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    (app.login(email, "a long password").await, id)
}

/// An admin, two agents associated with one LINE channel.
async fn team(app: &TestApp) -> Team {
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let (ann, ann_id) = create_agent(app, &admin, "ann@acme.example").await;
    let (bob, bob_id) = create_agent(app, &admin, "bob@acme.example").await;
    associate(app, &admin, &channel.id, &[&ann_id, &bob_id]).await;
    Team { admin, ann, ann_id, bob, bob_id, channel }
}

async fn associate(app: &TestApp, admin: &str, channel_id: &str, agents: &[&str]) {
    let response = app
        .graphql(
            Some(admin),
            "mutation($id: ID!, $agents: [ID!]!) { setChannelAgents(id: $id, agentIds: $agents) }",
            json!({"id": channel_id, "agents": agents}),
        )
        .await;
    assert!(response["errors"].is_null(), "{response}");
}

async fn new_chat(app: &TestApp, team: &Team, user: &str) -> String {
    assert_eq!(
        app.deliver_line(&team.channel, vec![text_event(user, &format!("{user}-1"), "hello", &format!("{user}-r1"))])
            .await,
        200
    );
    let found = app
        .graphql(
            Some(&team.admin),
            "query($user: String!) { chats(filter: {customerId: $user}) { edges { node { id } } } }",
            json!({"user": user}),
        )
        .await;
    found["data"]["chats"]["edges"][0]["node"]["id"].as_str().unwrap_or_else(|| panic!("{found}")).to_owned()
}

const CLAIM: &str = "mutation($id: ID!) { claimChat(id: $id) { status claimedBy } }";

/// Every query and mutation that names a chat, with variables.
fn every_chat_operation(chat_id: &str, agent_id: &str) -> Vec<(&'static str, serde_json::Value)> {
    let chat = json!({"id": chat_id});
    vec![
        ("query($id: ID!) { chat(id: $id) { id } }", chat.clone()),
        ("mutation($id: ID!) { claimChat(id: $id) { id } }", chat.clone()),
        ("mutation($id: ID!) { completeChat(id: $id) { id } }", chat.clone()),
        (
            "mutation($id: ID!, $to: ID!) { transferChat(id: $id, agentId: $to) { id } }",
            json!({"id": chat_id, "to": agent_id}),
        ),
        ("mutation($id: ID!) { releaseChat(id: $id) { id } }", chat.clone()),
        ("mutation($id: ID!) { markChatRead(id: $id) { id } }", chat.clone()),
        ("mutation($id: ID!) { setEndUserBlocked(chatId: $id, blocked: true) { id } }", chat.clone()),
        ("mutation($id: ID!) { sendMessage(chatId: $id, text: \"hi\") { id } }", chat.clone()),
        ("mutation($id: ID!) { linkChatToContact(chatId: $id, contactId: null) { id } }", chat),
    ]
}

on_both_backends!(
    of_two_agents_racing_to_claim_exactly_one_wins,
    only_the_claimer_sends_and_the_lifecycle_holds,
    an_agent_sees_only_the_chats_of_their_channels,
    a_subscriber_sees_messages_live_and_replays_after_a_drop,
    a_passcode_links_the_customer_once,
    chats_filter_and_page,
    another_tenant_sees_none_of_it,
    an_expired_session_closes_the_websocket,
    every_subscriber_gets_the_events_chat_and_only_where_it_may_see_it,
    subscribers_of_one_document_get_their_own_organizations_chat_at_the_same_cursor,
);

async fn of_two_agents_racing_to_claim_exactly_one_wins(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    // On PostgreSQL the second agent talks to a second server process.
    let replica = if backend == Backend::Postgres { Some(app.spawn_replica().await) } else { None };
    let other = replica.as_ref().unwrap_or(&app);
    for round in 0..5 {
        let chat_id = new_chat(&app, &team, &format!("Urace{round}")).await;
        let variables = json!({"id": chat_id});
        let (ann, bob) = tokio::join!(
            app.graphql(Some(&team.ann), CLAIM, variables.clone()),
            other.graphql(Some(&team.bob), CLAIM, variables.clone())
        );
        let winners: Vec<_> = [&ann, &bob].into_iter().filter(|response| response["errors"].is_null()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {ann} / {bob}");
        let loser = if ann["errors"].is_null() { &bob } else { &ann };
        assert_eq!(error_code(loser), "ABORTED");
        let winner_id = if ann["errors"].is_null() { &team.ann_id } else { &team.bob_id };
        let chat =
            app.graphql(Some(&team.admin), "query($id: ID!) { chat(id: $id) { status claimedBy } }", variables).await;
        assert_eq!(chat["data"]["chat"], json!({"status": "IN_PROGRESS", "claimedBy": winner_id}));
    }
}

async fn only_the_claimer_sends_and_the_lifecycle_holds(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let chat_id = new_chat(&app, &team, "Ulife").await;
    let send = |token: &String| {
        let token = token.clone();
        let variables = json!({"id": chat_id});
        let app = &app;
        async move {
            app.graphql(Some(&token), "mutation($id: ID!) { sendMessage(chatId: $id, text: \"hi\") { id } }", variables)
                .await
        }
    };
    assert_eq!(error_code(&send(&team.ann).await), "PERMISSION_DENIED", "nobody may send before claiming");
    app.graphql(Some(&team.ann), CLAIM, json!({"id": chat_id})).await;
    assert_eq!(error_code(&send(&team.bob).await), "PERMISSION_DENIED");
    assert_eq!(error_code(&send(&team.admin).await), "PERMISSION_DENIED", "not even an admin");
    assert!(send(&team.ann).await["errors"].is_null());

    let release = app
        .graphql(Some(&team.bob), "mutation($id: ID!) { releaseChat(id: $id) { status } }", json!({"id": chat_id}))
        .await;
    assert_eq!(error_code(&release), "PERMISSION_DENIED", "only admins release");
    let transfer = app
        .graphql(
            Some(&team.ann),
            "mutation($id: ID!, $to: ID!) { transferChat(id: $id, agentId: $to) { claimedBy } }",
            json!({"id": chat_id, "to": team.bob_id}),
        )
        .await;
    assert_eq!(transfer["data"]["transferChat"]["claimedBy"], team.bob_id.as_str(), "{transfer}");
    assert_eq!(error_code(&send(&team.ann).await), "PERMISSION_DENIED", "after a transfer only the new claimer sends");
    let complete = app
        .graphql(
            Some(&team.bob),
            "mutation($id: ID!) { completeChat(id: $id) { status claimedBy } }",
            json!({"id": chat_id}),
        )
        .await;
    assert_eq!(complete["data"]["completeChat"], json!({"status": "COMPLETED", "claimedBy": null}));

    // The customer writes again: the chat is NEW again.
    assert_eq!(
        app.deliver_line(&team.channel, vec![text_event("Ulife", "Ulife-2", "one more thing", "Ulife-r2")]).await,
        200
    );
    let chat = app
        .graphql(Some(&team.admin), "query($id: ID!) { chat(id: $id) { status unreadCount } }", json!({"id": chat_id}))
        .await;
    assert_eq!(chat["data"]["chat"], json!({"status": "NEW", "unreadCount": 2}));

    // A blocked customer's messages are kept but open nothing.
    let blocked = app
        .graphql(
            Some(&team.ann),
            "mutation($id: ID!) { setEndUserBlocked(chatId: $id, blocked: true) { endUser { blocked } } }",
            json!({"id": chat_id}),
        )
        .await;
    assert_eq!(blocked["data"]["setEndUserBlocked"]["endUser"]["blocked"], true);
    app.graphql(Some(&team.ann), CLAIM, json!({"id": chat_id})).await;
    app.graphql(Some(&team.ann), "mutation($id: ID!) { completeChat(id: $id) { status } }", json!({"id": chat_id}))
        .await;
    assert_eq!(app.deliver_line(&team.channel, vec![text_event("Ulife", "Ulife-3", "spam", "Ulife-r3")]).await, 200);
    let chat = app
        .graphql(
            Some(&team.admin),
            "query($id: ID!) { chat(id: $id) { status messages { text } } }",
            json!({"id": chat_id}),
        )
        .await;
    assert_eq!(chat["data"]["chat"]["status"], "COMPLETED", "a blocked customer reopens nothing");
    assert_eq!(
        chat["data"]["chat"]["messages"].as_array().unwrap().iter().filter(|m| m["text"] == "spam").count(),
        1,
        "but the message is kept"
    );
}

async fn an_agent_sees_only_the_chats_of_their_channels(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let other_channel = app.create_line_channel(&team.admin, "REPLY", "FREE").await;
    let ours = new_chat(&app, &team, "Uours").await;
    assert_eq!(app.deliver_line(&other_channel, vec![text_event("Utheirs", "t1", "elsewhere", "tr1")]).await, 200);
    let all =
        app.graphql(Some(&team.admin), "{ chats { edges { node { id endUser { customerId } } } } }", json!({})).await;
    let theirs = all["data"]["chats"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["endUser"]["customerId"] == "Utheirs")
        .unwrap()["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let visible = app.graphql(Some(&team.ann), "{ chats { edges { node { id } } } channels { id } }", json!({})).await;
    assert_eq!(visible["data"]["chats"]["edges"], json!([{"node": {"id": ours}}]));
    assert_eq!(visible["data"]["channels"], json!([{"id": team.channel.id}]));
    for (query, variables) in every_chat_operation(&theirs, &team.bob_id) {
        assert_eq!(error_code(&app.graphql(Some(&team.ann), query, variables).await), "NOT_FOUND", "{query}");
    }

    // Live: Ann hears about her channel only, and nothing more once removed from it.
    let mut ws = GraphqlWs::connect(
        &format!("ws://{}/graphql/ws", app.http),
        json!({"authorization": format!("Bearer {}", team.ann)}),
    )
    .await
    .unwrap();
    ws.subscribe("1", "subscription { chatEvents { kind chatId } }", json!({})).await;
    assert!(ws.is_quiet_for(Duration::from_millis(300)).await);
    assert_eq!(
        app.deliver_line(&other_channel, vec![text_event("Utheirs", "t2", "still elsewhere", "tr2")]).await,
        200
    );
    assert_eq!(app.deliver_line(&team.channel, vec![text_event("Uours", "o2", "for ann", "or2")]).await, 200);
    let event = ws.next_data().await;
    assert_eq!(event["chatEvents"]["chatId"], ours.as_str(), "{event}");
    associate(&app, &team.admin, &team.channel.id, &[&team.bob_id]).await;
    assert_eq!(app.deliver_line(&team.channel, vec![text_event("Uours", "o3", "after removal", "or3")]).await, 200);
    assert!(ws.is_quiet_for(Duration::from_millis(700)).await, "a removed agent stops receiving the channel's events");
}

async fn a_subscriber_sees_messages_live_and_replays_after_a_drop(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let chat_id = new_chat(&app, &team, "Ulive").await;
    let url = format!("ws://{}/graphql/ws", app.http);
    let init = json!({"authorization": format!("Bearer {}", team.ann)});
    let subscription = "subscription($chat: ID!, $after: String) { chatMessages(chatId: $chat, after: $after) { cursor kind message { text direction deliveryState } } }";

    let mut ws = GraphqlWs::connect(&url, init.clone()).await.unwrap();
    ws.subscribe("1", subscription, json!({"chat": chat_id})).await;
    assert!(ws.is_quiet_for(Duration::from_millis(300)).await);
    assert_eq!(app.deliver_line(&team.channel, vec![text_event("Ulive", "l2", "live one", "lr2")]).await, 200);
    let live = ws.next_data().await;
    assert_eq!(live["chatMessages"]["kind"], "message.created");
    assert_eq!(live["chatMessages"]["message"]["text"], "live one");
    let cursor = live["chatMessages"]["cursor"].as_str().unwrap().to_owned();
    drop(ws);

    for (id, text) in [("l3", "missed 1"), ("l4", "missed 2"), ("l5", "missed 3")] {
        assert_eq!(app.deliver_line(&team.channel, vec![text_event("Ulive", id, text, &format!("{id}-r"))]).await, 200);
    }
    let mut ws = GraphqlWs::connect(&url, init).await.unwrap();
    ws.subscribe("2", subscription, json!({"chat": chat_id, "after": cursor})).await;
    let mut texts = Vec::new();
    let mut cursors = Vec::new();
    for _ in 0..3 {
        let data = ws.next_data().await;
        texts.push(data["chatMessages"]["message"]["text"].as_str().unwrap().to_owned());
        cursors.push(data["chatMessages"]["cursor"].as_str().unwrap().parse::<i64>().unwrap());
    }
    assert_eq!(texts, ["missed 1", "missed 2", "missed 3"]);
    assert!(cursors.windows(2).all(|pair| pair[0] < pair[1]), "in order: {cursors:?}");
    assert!(ws.is_quiet_for(Duration::from_millis(300)).await, "replayed once");

    // The sender sees the delivery state change live.
    app.graphql(Some(&team.ann), CLAIM, json!({"id": chat_id})).await;
    app.graphql(
        Some(&team.ann),
        "mutation($id: ID!) { sendMessage(chatId: $id, text: \"on its way\") { id } }",
        json!({"id": chat_id}),
    )
    .await;
    let mut kinds = Vec::new();
    while !kinds.contains(&"message.delivery_changed".to_owned()) {
        let data = ws.next_data().await;
        kinds.push(data["chatMessages"]["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds.first().map(String::as_str), Some("message.created"));
}

async fn a_passcode_links_the_customer_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let contact = app
        .graphql(Some(&team.ann), "mutation { createContact(input: {name: \"Yamada Hanako\", email: \"hanako@example.jp\", phone: \"+81 90-1234-5678\", accountName: \"Yamada Inc.\", slaName: \"Gold\"}) { id } }", json!({}))
        .await;
    let contact_id = contact["data"]["createContact"]["id"].as_str().unwrap_or_else(|| panic!("{contact}")).to_owned();
    let issued = app
        .graphql(
            Some(&team.ann),
            "mutation($id: ID!) { issuePasscode(contactId: $id) { code expiresAt } }",
            json!({"id": contact_id}),
        )
        .await;
    let code = issued["data"]["issuePasscode"]["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with('@') && code.len() == 8, "{code}");

    let chat_id = new_chat(&app, &team, "Upass").await;
    assert_eq!(app.deliver_line(&team.channel, vec![text_event("Upass", "p2", &code, "pr2")]).await, 200);
    let chat = app.graphql(Some(&team.ann), "query($id: ID!) { chat(id: $id) { lastMessagePreview endUser { contactId } messages { text isPasscode } } }", json!({"id": chat_id})).await;
    assert_eq!(chat["data"]["chat"]["endUser"]["contactId"], contact_id.as_str(), "{chat}");
    assert_eq!(chat["data"]["chat"]["lastMessagePreview"], "hello", "a passcode is not shown as a question");
    assert_eq!(chat["data"]["chat"]["messages"][1], json!({"text": code, "isPasscode": true}));

    // Used once: another customer sending it links nothing.
    let other = new_chat(&app, &team, "Upass2").await;
    assert_eq!(app.deliver_line(&team.channel, vec![text_event("Upass2", "p3", &code, "pr3")]).await, 200);
    let chat = app
        .graphql(Some(&team.ann), "query($id: ID!) { chat(id: $id) { endUser { contactId } } }", json!({"id": other}))
        .await;
    assert!(chat["data"]["chat"]["endUser"]["contactId"].is_null());
    let found =
        app.graphql(Some(&team.ann), "{ searchContacts(text: \"1234-5678\") { name slaName } }", json!({})).await;
    assert_eq!(found["data"]["searchContacts"], json!([{"name": "Yamada Hanako", "slaName": "Gold"}]));
    let linked = app
        .graphql(
            Some(&team.ann),
            "{ chats(filter: {linked: true}) { edges { node { endUser { customerId } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(linked["data"]["chats"]["edges"], json!([{"node": {"endUser": {"customerId": "Upass"}}}]));
}

async fn chats_filter_and_page(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let mut ids = Vec::new();
    for user in ["Upage1", "Upage2", "Upage3"] {
        ids.push(new_chat(&app, &team, user).await);
    }
    app.graphql(Some(&team.ann), CLAIM, json!({"id": ids[0]})).await;
    let page = |after: Option<String>| {
        app.graphql(Some(&team.ann), "query($after: String) { chats(first: 2, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }", json!({"after": after}))
    };
    let first = page(None).await;
    assert_eq!(first["data"]["chats"]["pageInfo"]["hasNextPage"], true, "{first}");
    let second = page(first["data"]["chats"]["pageInfo"]["endCursor"].as_str().map(str::to_owned)).await;
    let mut seen: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|page| {
            page["data"]["chats"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(second["data"]["chats"]["pageInfo"]["hasNextPage"], false);
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected, "every chat once across pages");

    let claimed = app
        .graphql(
            Some(&team.ann),
            "query($me: ID!) { chats(filter: {statuses: [IN_PROGRESS], claimedBy: $me}) { edges { node { id } } } }",
            json!({"me": team.ann_id}),
        )
        .await;
    assert_eq!(claimed["data"]["chats"]["edges"], json!([{"node": {"id": ids[0]}}]));
    let too_many = app.graphql(Some(&team.ann), "{ chats(first: 1000) { edges { node { id } } } }", json!({})).await;
    assert_eq!(error_code(&too_many), "INVALID_ARGUMENT");
}

async fn another_tenant_sees_none_of_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let chat_id = new_chat(&app, &team, "Uisolated").await;
    let globex = crate::identity::second_tenant(&app).await;
    app.graphql(Some(&team.ann), CLAIM, json!({"id": chat_id})).await;
    for (query, variables) in every_chat_operation(&chat_id, &team.ann_id).into_iter().chain([
        ("query($id: ID!) { channel(id: $id) { id } }", json!({"id": team.channel.id})),
        ("mutation($id: ID!) { setChannelStatus(id: $id, status: DISABLED) { id } }", json!({"id": team.channel.id})),
        ("mutation($id: ID!) { setChannelAgents(id: $id, agentIds: []) }", json!({"id": team.channel.id})),
        ("mutation($id: ID!) { reconcilePushUsage(channelId: $id) { pushed } }", json!({"id": team.channel.id})),
    ]) {
        assert_eq!(error_code(&app.graphql(Some(&globex), query, variables).await), "NOT_FOUND", "{query}");
    }
    let untouched = app
        .graphql(
            Some(&team.admin),
            "query($id: ID!) { chat(id: $id) { status claimedBy endUser { blocked contactId } } }",
            json!({"id": chat_id}),
        )
        .await;
    assert_eq!(
        untouched["data"]["chat"],
        json!({"status": "IN_PROGRESS", "claimedBy": team.ann_id, "endUser": {"blocked": false, "contactId": null}})
    );
    let lists = app.graphql(Some(&globex), "{ chats { edges { node { id } } } channels { id } }", json!({})).await;
    assert_eq!(lists["data"], json!({"chats": {"edges": []}, "channels": []}));
    let subscription = GraphqlWs::connect(
        &format!("ws://{}/graphql/ws", app.http),
        json!({"authorization": format!("Bearer {globex}")}),
    )
    .await;
    let mut ws = subscription.unwrap();
    ws.subscribe("1", "subscription($id: ID!) { chatMessages(chatId: $id) { kind } }", json!({"id": chat_id})).await;
    match ws.next().await {
        Received::Message(message) => {
            assert_eq!(message["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{message}")
        }
        other => panic!("{other:?}"),
    }
}

async fn an_expired_session_closes_the_websocket(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let mut ws = GraphqlWs::connect(
        &format!("ws://{}/graphql/ws", app.http),
        json!({"authorization": format!("Bearer {admin}")}),
    )
    .await
    .unwrap();
    ws.subscribe("1", "subscription { chatEvents { kind } }", json!({})).await;
    app.clock.advance(chrono::Duration::hours(11));
    assert!(ws.is_quiet_for(Duration::from_millis(300)).await, "open while the session lasts");
    // Past the 12-hour session the socket closes, without waiting for it.
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(ws.next().await, Received::Closed(Some(4401)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_on_one_replica_reaches_a_subscriber_on_the_other() {
    let Some(app) = spawn_app(Backend::Postgres).await else { return };
    let replica = app.spawn_replica().await;
    let team = team(&app).await;
    let chat_id = new_chat(&app, &team, "Ureplica").await;
    let mut ws = GraphqlWs::connect(
        &format!("ws://{}/graphql/ws", replica.http),
        json!({"authorization": format!("Bearer {}", team.ann)}),
    )
    .await
    .unwrap();
    ws.subscribe(
        "1",
        "subscription($id: ID!) { chatMessages(chatId: $id) { message { text } } }",
        json!({"id": chat_id}),
    )
    .await;
    assert!(ws.is_quiet_for(Duration::from_millis(300)).await);
    let sent_at = std::time::Instant::now();
    assert_eq!(
        app.deliver_line(&team.channel, vec![text_event("Ureplica", "rp2", "through the other process", "rpr2")]).await,
        200
    );
    let data = ws.next_data().await;
    assert_eq!(data["chatMessages"]["message"]["text"], "through the other process");
    // Well under the 5 s safety poll: the wake-up came through LISTEN/NOTIFY.
    assert!(sent_at.elapsed() < Duration::from_secs(4), "took {:?}", sent_at.elapsed());
}

/// Returns the organization's id and how far its event log is.
async fn organization_head(app: &TestApp, admin: &str) -> (OrganizationId, i64) {
    let found = app.graphql(Some(admin), "{ organization { id } }", json!({})).await;
    let id = OrganizationId::parse(found["data"]["organization"]["id"].as_str().unwrap()).unwrap();
    (id, app.core.events().head(id).await.unwrap())
}

/// Subscribers in two organizations run the same `chatEvents` document,
/// whose payload is resolved once per event and shared, and both logs are
/// brought to the same position first so that both organizations' events
/// get the same cursors. Each subscriber still gets its own organization's
/// chat. A subscriber selecting the chat's messages, which are never
/// shared, gets them as well.
async fn subscribers_of_one_document_get_their_own_organizations_chat_at_the_same_cursor(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let bill = crate::isolation::third_tenant(&app).await;
    let initech = app.create_line_channel(&bill, "REPLY", "FREE").await;
    let subscription = "subscription { chatEvents { cursor kind chat { lastMessagePreview endUser { customerId } } } }";
    let url = format!("ws://{}/graphql/ws", app.http);
    let mut acme_ws =
        GraphqlWs::connect(&url, json!({"authorization": format!("Bearer {}", team.admin)})).await.unwrap();
    acme_ws.subscribe("1", subscription, json!({})).await;
    let mut initech_ws = GraphqlWs::connect(&url, json!({"authorization": format!("Bearer {bill}")})).await.unwrap();
    initech_ws.subscribe("1", subscription, json!({})).await;
    let mut messages_ws =
        GraphqlWs::connect(&url, json!({"authorization": format!("Bearer {}", team.ann)})).await.unwrap();
    messages_ws.subscribe("1", "subscription { chatEvents { cursor chat { messages { text } } } }", json!({})).await;
    assert!(acme_ws.is_quiet_for(Duration::from_millis(100)).await);

    // One event at a time (a channel's agents set again) on whichever is behind.
    loop {
        let (acme, acme_head) = organization_head(&app, &team.admin).await;
        let (initech_id, initech_head) = organization_head(&app, &bill).await;
        assert_ne!(acme, initech_id);
        match acme_head.cmp(&initech_head) {
            std::cmp::Ordering::Equal => break,
            std::cmp::Ordering::Less => {
                associate(&app, &team.admin, &team.channel.id, &[&team.ann_id, &team.bob_id]).await
            }
            std::cmp::Ordering::Greater => associate(&app, &bill, &initech.id, &[]).await,
        }
    }

    assert_eq!(
        app.deliver_line(&team.channel, vec![text_event("Uacme", "Uacme-1", "from acme", "Uacme-r")]).await,
        200
    );
    let acme_event = acme_ws.next_data().await;
    assert_eq!(acme_event["chatEvents"]["chat"]["endUser"]["customerId"], "Uacme", "{acme_event}");
    let with_messages = messages_ws.next_data().await;
    assert_eq!(with_messages["chatEvents"]["chat"]["messages"][0]["text"], "from acme", "{with_messages}");

    assert_eq!(
        app.deliver_line(&initech, vec![text_event("Uinitech", "Uinitech-1", "from initech", "Uinitech-r")]).await,
        200
    );
    let initech_event = initech_ws.next_data().await;
    assert_eq!(
        initech_event["chatEvents"]["cursor"], acme_event["chatEvents"]["cursor"],
        "the same cursor in both logs"
    );
    assert_eq!(initech_event["chatEvents"]["chat"]["endUser"]["customerId"], "Uinitech", "{initech_event}");
    assert_eq!(initech_event["chatEvents"]["chat"]["lastMessagePreview"], "from initech", "{initech_event}");
}

/// Several agents and admins follow `chatEvents` selecting the chat (the
/// chat is loaded once per event for all of them): each gets it as it is
/// after the event, a replay from a cursor gets it too, and an agent of
/// another channel gets neither the event nor its chat.
async fn every_subscriber_gets_the_events_chat_and_only_where_it_may_see_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let team = team(&app).await;
    let other_channel = app.create_line_channel(&team.admin, "REPLY", "FREE").await;
    let (carol, carol_id) = create_agent(&app, &team.admin, "carol@acme.example").await;
    associate(&app, &team.admin, &other_channel.id, &[&carol_id]).await;
    let chat_id = new_chat(&app, &team, "Ushared").await;
    let subscription = "subscription($after: String) { chatEvents(after: $after) { cursor kind chatId \
        chat { id status lastMessagePreview unreadCount endUser { customerId } } } }";
    let url = format!("ws://{}/graphql/ws", app.http);
    let mut watchers = Vec::new();
    for token in [&team.admin, &team.ann, &team.bob, &team.admin, &team.ann, &team.bob] {
        let mut ws = GraphqlWs::connect(&url, json!({"authorization": format!("Bearer {token}")})).await.unwrap();
        ws.subscribe("1", subscription, json!({})).await;
        watchers.push(ws);
    }
    let mut carols = GraphqlWs::connect(&url, json!({"authorization": format!("Bearer {carol}")})).await.unwrap();
    carols.subscribe("1", subscription, json!({})).await;
    for ws in &mut watchers {
        assert!(ws.is_quiet_for(Duration::from_millis(100)).await);
    }

    let mut first_cursor = None;
    for (n, text) in ["second", "third"].iter().enumerate() {
        let id = format!("Ushared-{}", n + 2);
        assert_eq!(
            app.deliver_line(&team.channel, vec![text_event("Ushared", &id, text, &format!("{id}-r"))]).await,
            200
        );
        for ws in &mut watchers {
            let event = ws.next_data().await;
            let chat = &event["chatEvents"]["chat"];
            let cursor: i64 = event["chatEvents"]["cursor"].as_str().unwrap().parse().unwrap();
            first_cursor.get_or_insert(cursor);
            assert_eq!(event["chatEvents"]["chatId"], chat_id.as_str(), "{event}");
            assert_eq!(chat["id"], chat_id.as_str(), "{event}");
            assert_eq!(chat["lastMessagePreview"], *text, "{event}");
            assert_eq!(chat["unreadCount"], n + 2, "{event}");
            assert_eq!(chat["endUser"]["customerId"], "Ushared", "{event}");
        }
    }
    assert!(carols.is_quiet_for(Duration::from_millis(500)).await, "carol sees nothing of a channel not hers");

    // A replay from before both messages gets each event with the chat.
    let mut late = GraphqlWs::connect(&url, json!({"authorization": format!("Bearer {}", team.ann)})).await.unwrap();
    let after = first_cursor.expect("an event") - 1;
    late.subscribe("2", subscription, json!({"after": after.to_string()})).await;
    let replayed = late.next_data().await;
    assert_eq!(replayed["chatEvents"]["chat"]["id"], chat_id.as_str(), "{replayed}");
    assert_eq!(replayed["chatEvents"]["chat"]["endUser"]["customerId"], "Ushared", "{replayed}");
}
