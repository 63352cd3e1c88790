//! Sessions end when what they stand for does: a deactivated or demoted
//! agent, a changed password, a revoked API key — on requests, open
//! WebSockets and gRPC streams alike.

use std::time::Duration;

use futures::StreamExt;
use madoguchi_grpc::pb;
use madoguchi_grpc::pb::event_service_client::EventServiceClient;
use madoguchi_tests::graphql_ws::{GraphqlWs, Received};
use madoguchi_tests::{Backend, TestApp, error_code, spawn_app};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, Statement, TransactionTrait};
use serde_json::json;

use crate::grpc::{api_key, with_key};

on_both_backends!(
    a_password_change_revokes_the_sessions_issued_before_it,
    a_deactivated_agents_open_subscription_is_closed,
    a_demoted_admins_session_and_subscription_end,
    a_revoked_keys_event_stream_ends_unauthenticated,
    a_deactivation_whose_notification_was_lost_still_closes_open_subscriptions,
    an_operation_on_an_open_socket_checks_the_session_again,
);

const ME: &str = "{ me { email role } }";
/// The password [`create_agent`] gives.
pub(crate) const FIRST_PASSWORD: &str = "a long first password";
const CHAT_EVENTS: &str = "subscription { chatEvents { cursor kind } }";

pub(crate) async fn create_agent(app: &TestApp, admin: &str, email: &str, role: &str) -> String {
    let created = app
        .graphql(
            Some(admin),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": "Someone", "role": role, "password": FIRST_PASSWORD}}),
        )
        .await;
    created["data"]["createAgent"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned()
}

async fn update_agent(app: &TestApp, admin: &str, id: &str, input: serde_json::Value) {
    let updated = app
        .graphql(
            Some(admin),
            "mutation($id: ID!, $input: UpdateAgentInput!) { updateAgent(id: $id, input: $input) { id } }",
            json!({"id": id, "input": input}),
        )
        .await;
    assert!(updated["errors"].is_null(), "{updated}");
}

async fn subscribed(app: &TestApp, token: &str) -> GraphqlWs {
    let url = format!("ws://{}/graphql/ws", app.http);
    let mut ws = GraphqlWs::connect(&url, json!({"authorization": format!("Bearer {token}")})).await.unwrap();
    ws.subscribe("1", CHAT_EVENTS, json!({})).await;
    assert!(ws.is_quiet_for(Duration::from_millis(200)).await, "no event yet");
    ws
}

/// Reads an event stream until it ends (within 30 s); returns the kinds it
/// delivered and the status it ended with, if any.
async fn until_ended(stream: &mut tonic::Streaming<pb::StreamEventsResponse>) -> (Vec<String>, Option<tonic::Code>) {
    let mut delivered = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.next().await {
                Some(Ok(response)) => delivered.push(response.event.map(|event| event.kind).unwrap_or_default()),
                Some(Err(status)) => return Some(status.code()),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream ends");
    (delivered, ended)
}

async fn a_password_change_revokes_the_sessions_issued_before_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let id = create_agent(&app, &admin, "pat@acme.example", "AGENT").await;
    let before = app.login("pat@acme.example", "a long first password").await;
    assert!(app.graphql(Some(&before), ME, json!({})).await["errors"].is_null());

    update_agent(&app, &admin, &id, json!({"password": "a long second password"})).await;
    let refused = app.graphql(Some(&before), ME, json!({})).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    let after = app.login("pat@acme.example", "a long second password").await;
    assert_eq!(app.graphql(Some(&after), ME, json!({})).await["data"]["me"]["email"], "pat@acme.example");

    // A change that revokes nothing (a new name) keeps the session.
    update_agent(&app, &admin, &id, json!({"name": "Pat"})).await;
    assert!(app.graphql(Some(&after), ME, json!({})).await["errors"].is_null());
}

async fn a_deactivated_agents_open_subscription_is_closed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let id = create_agent(&app, &admin, "dee@acme.example", "AGENT").await;
    let token = app.login("dee@acme.example", "a long first password").await;
    let mut ws = subscribed(&app, &token).await;
    let mut bystander = subscribed(&app, &admin).await;

    update_agent(&app, &admin, &id, json!({"active": false})).await;
    assert_eq!(ws.next().await, Received::Closed(Some(4401)));
    assert!(bystander.is_quiet_for(Duration::from_millis(300)).await, "the admin's socket stays open");
    assert_eq!(error_code(&app.graphql(Some(&token), ME, json!({})).await), "UNAUTHENTICATED");
}

async fn a_demoted_admins_session_and_subscription_end(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let id = create_agent(&app, &admin, "ada@acme.example", "ADMIN").await;
    let token = app.login("ada@acme.example", "a long first password").await;
    let mut ws = subscribed(&app, &token).await;

    update_agent(&app, &admin, &id, json!({"role": "AGENT"})).await;
    assert_eq!(ws.next().await, Received::Closed(Some(4401)));
    assert_eq!(error_code(&app.graphql(Some(&token), ME, json!({})).await), "UNAUTHENTICATED");
    let again = app.login("ada@acme.example", "a long first password").await;
    assert_eq!(app.graphql(Some(&again), ME, json!({})).await["data"]["me"]["role"], "AGENT");
}

async fn a_revoked_keys_event_stream_ends_unauthenticated(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let (key, key_id) = api_key(&app, &admin, &["events:read"]).await;
    let mut client = EventServiceClient::new(app.grpc_channel().await);
    let mut stream = client
        .stream_events(with_key(pb::StreamEventsRequest { after_cursor: None, kinds: Vec::new() }, &key))
        .await
        .unwrap()
        .into_inner();

    let revoked =
        app.graphql(Some(&admin), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({"id": key_id})).await;
    assert!(revoked["errors"].is_null(), "{revoked}");
    // What follows the revocation is never delivered to the revoked key.
    let created = app.graphql(Some(&admin), "mutation { createDepartment(name: \"Later\") { id } }", json!({})).await;
    assert!(created["errors"].is_null(), "{created}");
    let (delivered, ended) = until_ended(&mut stream).await;
    assert_eq!(ended, Some(tonic::Code::Unauthenticated));
    assert!(!delivered.contains(&"department.created".to_owned()), "{delivered:?}");
}

/// A key revoked through one server process ends its stream on another,
/// through the identity flag of the PostgreSQL notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_replica_ends_its_stream_on_the_other() {
    let Some(app) = spawn_app(Backend::Postgres).await else { return };
    let replica = app.spawn_replica().await;
    let admin = app.login_admin().await;
    let (key, key_id) = api_key(&app, &admin, &["events:read"]).await;
    let mut client = EventServiceClient::new(replica.grpc_channel().await);
    let mut stream = client
        .stream_events(with_key(pb::StreamEventsRequest { after_cursor: None, kinds: Vec::new() }, &key))
        .await
        .unwrap()
        .into_inner();
    let revoked =
        app.graphql(Some(&admin), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({"id": key_id})).await;
    assert!(revoked["errors"].is_null(), "{revoked}");
    let (_, ended) = until_ended(&mut stream).await;
    assert_eq!(ended, Some(tonic::Code::Unauthenticated));
}

/// Deactivates an agent as another replica would, in the database alone:
/// no wake-up or notification reaches this process. With `event`, the
/// change's `agent.updated` event is in the log, as the other replica's
/// commit put it there (its notification lost).
async fn deactivate_elsewhere(app: &TestApp, agent_id: &str, event: bool) {
    let agent_id: uuid::Uuid = agent_id.parse().unwrap();
    let db = app.core.db();
    let tx = db.begin().await.unwrap();
    let agent = madoguchi_entity::agents::Entity::find_by_id(agent_id).one(&tx).await.unwrap().unwrap();
    let backend = tx.get_database_backend();
    tx.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE agents SET active = false WHERE id = $1",
        [agent_id.into()],
    ))
    .await
    .unwrap();
    if event {
        let seq: i64 = tx
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE organizations SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq",
                [agent.organization_id.into()],
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "event_seq")
            .unwrap();
        madoguchi_entity::events::Entity::insert(madoguchi_entity::events::ActiveModel {
            organization_id: Set(agent.organization_id),
            seq: Set(seq),
            kind: Set("agent.updated".to_owned()),
            channel_id: Set(None),
            chat_id: Set(None),
            payload: Set(json!({"agentId": agent_id})),
            created_at: Set(chrono::Utc::now()),
            ..Default::default()
        })
        .exec_without_returning(&tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The log, not the notification, is the source of truth: the
/// organization's shared tail reads the change at its next safety poll,
/// and the sockets of the agent it revokes close.
async fn a_deactivation_whose_notification_was_lost_still_closes_open_subscriptions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let id = create_agent(&app, &admin, "lou@acme.example", "AGENT").await;
    let token = app.login("lou@acme.example", "a long first password").await;
    let mut ws = subscribed(&app, &token).await;
    let mut bystander = subscribed(&app, &admin).await;

    deactivate_elsewhere(&app, &id, true).await;
    assert_eq!(ws.next().await, Received::Closed(Some(4401)));
    assert!(bystander.is_quiet_for(Duration::from_millis(300)).await, "the admin's socket stays open");
}

/// An operation started on an open socket checks its session first, as a
/// request over HTTP does, even when no identity change reached this
/// process at all.
async fn an_operation_on_an_open_socket_checks_the_session_again(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let id = create_agent(&app, &admin, "kim@acme.example", "AGENT").await;
    let token = app.login("kim@acme.example", "a long first password").await;
    let url = format!("ws://{}/graphql/ws", app.http);
    let mut ws = GraphqlWs::connect(&url, json!({"authorization": format!("Bearer {token}")})).await.unwrap();
    ws.subscribe("1", ME, json!({})).await;
    assert_eq!(ws.next_data().await["me"]["email"], "kim@acme.example");

    deactivate_elsewhere(&app, &id, false).await;
    ws.subscribe("2", ME, json!({})).await;
    let mut refused = None;
    loop {
        match ws.next().await {
            // The first operation's `complete`.
            Received::Message(message) if message["type"] == "complete" && message["id"] == "1" => {}
            Received::Message(message) => {
                assert_eq!((message["type"].as_str(), message["id"].as_str()), (Some("error"), Some("2")), "{message}");
                refused = Some(message["payload"][0]["extensions"]["code"].clone());
            }
            closed => {
                // Then the whole connection ends, as a revocation heard of ends it.
                assert_eq!(closed, Received::Closed(Some(4401)));
                break;
            }
        }
    }
    assert_eq!(refused, Some(json!("UNAUTHENTICATED")), "the operation was refused before it ran");
}
