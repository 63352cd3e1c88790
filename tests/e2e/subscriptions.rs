//! The event log as clients see it: GraphQL subscriptions over
//! graphql-transport-ws and the gRPC event stream, live and resumed.

use futures::StreamExt;
use madoguchi_grpc::pb;
use madoguchi_grpc::pb::event_service_client::EventServiceClient;
use madoguchi_tests::graphql_ws::{GraphqlWs, Received};
use madoguchi_tests::{Backend, TestApp, spawn_app};
use serde_json::{Value, json};

use crate::grpc::{api_key, with_key};

const ORGANIZATION_EVENTS: &str =
    "subscription($after: String) { organizationEvents(after: $after) { cursor kind payload } }";

fn ws_url(app: &TestApp) -> String {
    format!("ws://{}/graphql/ws", app.http)
}

async fn create_department(app: &TestApp, token: &str, name: &str) {
    let response = app
        .graphql(
            Some(token),
            "mutation($name: String!) { createDepartment(name: $name) { id } }",
            json!({"name": name}),
        )
        .await;
    assert!(response["errors"].is_null(), "{response}");
}

fn event(data: &Value) -> (i64, String, String) {
    let event = &data["organizationEvents"];
    (
        event["cursor"].as_str().unwrap().parse().unwrap(),
        event["kind"].as_str().unwrap().to_owned(),
        event["payload"]["name"].as_str().unwrap_or_default().to_owned(),
    )
}

on_both_backends!(
    a_subscriber_sees_changes_live_and_resumes_after_a_drop,
    a_websocket_without_a_valid_token_is_refused,
    the_websocket_keeps_to_graphql_transport_ws,
    the_older_subscriptions_transport_ws_protocol_still_works,
    a_grpc_event_stream_replays_then_follows,
);

async fn a_subscriber_sees_changes_live_and_resumes_after_a_drop(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let mut ws = GraphqlWs::connect(&ws_url(&app), json!({"authorization": format!("Bearer {admin}")})).await.unwrap();
    ws.subscribe("1", ORGANIZATION_EVENTS, json!({})).await;
    // The subscription starts at the newest event; give it a moment to be
    // registered before changing anything.
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(300)).await);

    create_department(&app, &admin, "Support").await;
    let (cursor, kind, name) = event(&ws.next_data().await);
    assert_eq!((kind.as_str(), name.as_str()), ("department.created", "Support"));
    drop(ws);

    // While nobody listens, three more changes happen.
    for name in ["Sales", "Billing", "Returns"] {
        create_department(&app, &admin, name).await;
    }
    let mut ws = GraphqlWs::connect(&ws_url(&app), json!({"authorization": format!("Bearer {admin}")})).await.unwrap();
    ws.subscribe("2", ORGANIZATION_EVENTS, json!({"after": cursor.to_string()})).await;
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(event(&ws.next_data().await));
    }
    assert_eq!(replayed.iter().map(|(_, _, name)| name.as_str()).collect::<Vec<_>>(), ["Sales", "Billing", "Returns"]);
    assert_eq!(replayed.iter().map(|(cursor, _, _)| *cursor).collect::<Vec<_>>(), [cursor + 1, cursor + 2, cursor + 3]);

    create_department(&app, &admin, "Live again").await;
    assert_eq!(event(&ws.next_data().await).2, "Live again");
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(300)).await, "each event arrives once");
}

async fn a_websocket_without_a_valid_token_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let refused = GraphqlWs::connect(&ws_url(&app), json!({"authorization": "Bearer forged.token.here"})).await;
    assert!(matches!(refused, Err(Received::Closed(Some(4403)))), "{refused:?}");
    let anonymous = GraphqlWs::connect(&ws_url(&app), json!({})).await;
    assert!(matches!(anonymous, Err(Received::Closed(Some(4403)))), "{anonymous:?}");

    // An agent (not an admin) may connect but not follow the whole log.
    let admin = app.login_admin().await;
    app.graphql(
        Some(&admin),
        "mutation { createAgent(input: {email: \"ann@acme.example\", name: \"Ann\", role: AGENT, password: \"ann's long password\"}) { id } }",
        json!({}),
    )
    .await;
    let ann = app.login("ann@acme.example", "ann's long password").await;
    let mut ws = GraphqlWs::connect(&ws_url(&app), json!({"authorization": format!("Bearer {ann}")})).await.unwrap();
    ws.subscribe("1", ORGANIZATION_EVENTS, json!({})).await;
    match ws.next().await {
        Received::Message(message) => {
            assert_eq!(message["payload"]["errors"][0]["extensions"]["code"], "PERMISSION_DENIED", "{message}");
            assert!(message["payload"]["data"].is_null());
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn the_websocket_keeps_to_graphql_transport_ws(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let url = ws_url(&app);
    let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {admin}")}});
    // Opened first, looked at last: one that never sends connection_init,
    // and one acknowledged, which the initialisation timeout leaves alone.
    let mut silent = GraphqlWs::open(&url, "graphql-transport-ws").await;
    let mut acknowledged = GraphqlWs::connect(&url, init["payload"].clone()).await.unwrap();

    // Subscribing before connection_init: 4401 Unauthorized.
    let mut ws = GraphqlWs::open(&url, "graphql-transport-ws").await;
    ws.subscribe("1", ORGANIZATION_EVENTS, json!({})).await;
    assert_eq!(ws.next().await, Received::Closed(Some(4401)));
    // What is not a protocol message: 4400.
    let mut ws = GraphqlWs::open(&url, "graphql-transport-ws").await;
    ws.send_text("hello").await;
    assert_eq!(ws.next().await, Received::Closed(Some(4400)));
    // A second connection_init: 4429.
    let mut ws = GraphqlWs::connect(&url, init["payload"].clone()).await.unwrap();
    ws.send(init.clone()).await;
    assert_eq!(ws.next().await, Received::Closed(Some(4429)));
    // A second subscription under an id still running: 4409.
    let mut ws = GraphqlWs::connect(&url, init["payload"].clone()).await.unwrap();
    ws.subscribe("1", ORGANIZATION_EVENTS, json!({})).await;
    ws.subscribe("1", ORGANIZATION_EVENTS, json!({})).await;
    assert_eq!(ws.next().await, Received::Closed(Some(4409)));

    // A query runs once: next, then complete.
    let mut ws = GraphqlWs::connect(&url, init["payload"].clone()).await.unwrap();
    ws.subscribe("q", "query { me { email } }", json!({})).await;
    let Received::Message(next) = ws.next().await else { panic!("expected next") };
    assert_eq!((next["type"].as_str(), next["id"].as_str()), (Some("next"), Some("q")), "{next}");
    assert_eq!(next["payload"]["data"]["me"]["email"], madoguchi_tests::ADMIN_EMAIL, "{next}");
    assert_eq!(ws.next().await, Received::Message(json!({"type": "complete", "id": "q"})));

    // A request that does not validate never runs: `error` with its errors,
    // and no `complete` after it.
    ws.subscribe("v", "subscription { noSuchField }", json!({})).await;
    let Received::Message(error) = ws.next().await else { panic!("expected error") };
    assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("v")), "{error}");
    assert!(error["payload"][0]["message"].as_str().is_some_and(|message| message.contains("noSuchField")), "{error}");
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(300)).await, "no complete after an error");

    // The client's complete stops a subscription; its id may be used again,
    // and the first one's end completes nothing of the second.
    ws.subscribe("1", ORGANIZATION_EVENTS, json!({})).await;
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(300)).await);
    create_department(&app, &admin, "Support").await;
    assert_eq!(event(&ws.next_data().await).2, "Support");
    ws.send(json!({"type": "complete", "id": "1"})).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await, Received::Message(json!({"type": "pong"})));
    create_department(&app, &admin, "Sales").await;
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(300)).await, "a completed subscription sends nothing");
    ws.subscribe("1", ORGANIZATION_EVENTS, json!({})).await;
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(300)).await);
    create_department(&app, &admin, "Billing").await;
    let Received::Message(next) = ws.next().await else { panic!("expected next") };
    assert_eq!((next["type"].as_str(), next["id"].as_str()), (Some("next"), Some("1")), "{next}");
    assert_eq!(event(&next["payload"]["data"]).2, "Billing");
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(300)).await, "nothing else, no complete");

    // At most 100 operations at once: the 101st alone fails, with `error`;
    // the connection goes on, and one ending makes room again.
    let mut busy = GraphqlWs::connect(&url, init["payload"].clone()).await.unwrap();
    for n in 0..100 {
        busy.subscribe(&n.to_string(), ORGANIZATION_EVENTS, json!({})).await;
    }
    busy.subscribe("100", ORGANIZATION_EVENTS, json!({})).await;
    let Received::Message(error) = busy.next().await else { panic!("expected error") };
    assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("100")), "{error}");
    assert!(error["payload"][0]["message"].as_str().is_some_and(|message| message.contains("100")), "{error}");
    busy.send(json!({"type": "complete", "id": "0"})).await;
    busy.subscribe("100", ORGANIZATION_EVENTS, json!({})).await;
    busy.send(json!({"type": "ping"})).await;
    assert_eq!(busy.next().await, Received::Message(json!({"type": "pong"})), "no error for the 100th now");

    // No connection_init within 10 s: 4408.
    assert_eq!(silent.next().await, Received::Closed(Some(4408)));
    acknowledged.send(json!({"type": "ping"})).await;
    assert_eq!(acknowledged.next().await, Received::Message(json!({"type": "pong"})));
}

async fn the_older_subscriptions_transport_ws_protocol_still_works(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let url = ws_url(&app);

    let mut refused = GraphqlWs::open(&url, "graphql-ws").await;
    refused.send(json!({"type": "connection_init", "payload": {"authorization": "Bearer forged.token.here"}})).await;
    let Received::Message(error) = refused.next().await else { panic!("expected connection_error") };
    assert_eq!(error["type"], "connection_error", "{error}");
    assert_eq!(refused.next().await, Received::Closed(Some(4403)));

    let mut ws = GraphqlWs::open(&url, "graphql-ws").await;
    ws.send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {admin}")}})).await;
    assert_eq!(ws.next().await, Received::Message(json!({"type": "connection_ack"})));
    ws.send(json!({"type": "start", "id": "7", "payload": {"query": ORGANIZATION_EVENTS}})).await;
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(300)).await);
    create_department(&app, &admin, "Support").await;
    let Received::Message(data) = ws.next().await else { panic!("expected data") };
    assert_eq!((data["type"].as_str(), data["id"].as_str()), (Some("data"), Some("7")), "{data}");
    assert_eq!(event(&data["payload"]["data"]).2, "Support");
    // A stop is confirmed with complete, as subscriptions-transport-ws's server does.
    ws.send(json!({"type": "stop", "id": "7"})).await;
    assert_eq!(ws.next().await, Received::Message(json!({"type": "complete", "id": "7"})));
    create_department(&app, &admin, "Sales").await;
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(300)).await, "a stopped subscription sends nothing");
    ws.send(json!({"type": "connection_terminate"})).await;
    assert_eq!(ws.next().await, Received::Closed(Some(1000)));
}

async fn a_grpc_event_stream_replays_then_follows(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let (key, _) = api_key(&app, &admin, &["events:read"]).await;
    create_department(&app, &admin, "Support").await;
    let mut client = EventServiceClient::new(app.grpc_channel().await);
    let mut stream = client
        .stream_events(with_key(pb::StreamEventsRequest { after_cursor: Some(0), kinds: Vec::new() }, &key))
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    while kinds.last().map(String::as_str) != Some("department.created") {
        let event = stream.next().await.unwrap().unwrap().event.unwrap();
        kinds.push(event.kind);
    }
    assert_eq!(kinds.first().map(String::as_str), Some("organization.created"));
    create_department(&app, &admin, "Sales").await;
    let live = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
    let event = live.event.unwrap();
    assert_eq!(event.kind, "department.created");
    let name = event.payload.unwrap().fields["name"].kind.clone();
    assert_eq!(name, Some(prost_types::value::Kind::StringValue("Sales".into())));

    let (unscoped, _) = api_key(&app, &admin, &["organization:read"]).await;
    let denied = client
        .stream_events(with_key(pb::StreamEventsRequest { after_cursor: None, kinds: Vec::new() }, &unscoped))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
}
