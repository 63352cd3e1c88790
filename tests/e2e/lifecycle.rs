//! Probes, metrics and a clean shutdown.

use madoguchi_tests::graphql_ws::{GraphqlWs, Received};
use madoguchi_tests::line::{eventually, text_event};
use madoguchi_tests::{Backend, spawn_app};
use serde_json::json;

on_both_backends!(probes_and_metrics_answer, shutdown_closes_websockets_cleanly_and_stops);

async fn probes_and_metrics_answer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    for (path, body) in [("/livez", "ok"), ("/readyz", "ready")] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), body);
    }
    app.graphql(None, "{ organization { name } }", json!({})).await;
    // A message in, its answer out, and a socket open: each shows on /metrics.
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    assert_eq!(app.deliver_line(&channel, vec![text_event("Umetrics", "m1", "hi", "r-metrics")]).await, 200);
    let chats = app.graphql(Some(&admin), "{ chats { edges { node { id } } } }", json!({})).await;
    let chat_id = chats["data"]["chats"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    app.graphql(Some(&admin), "mutation($id: ID!) { claimChat(id: $id) { id } }", json!({"id": chat_id})).await;
    app.graphql(
        Some(&admin),
        "mutation($id: ID!) { sendMessage(chatId: $id, text: \"hello\") { id } }",
        json!({"id": chat_id}),
    )
    .await;
    eventually(|| async { Some(()).filter(|_| !app.line.replied("r-metrics").is_empty()) }).await;
    let _ws = GraphqlWs::connect(
        &format!("ws://{}/graphql/ws", app.http),
        json!({"authorization": format!("Bearer {admin}")}),
    )
    .await
    .unwrap();
    let metrics_url = format!("http://{}/metrics", app.metrics);
    eventually(|| async {
        let metrics = app.client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
        metrics.contains("deliveries_total{provider=\"line\",result=\"SENT\"}").then_some(())
    })
    .await;
    // A gRPC call without a key is counted with its method and status.
    let mut grpc =
        madoguchi_grpc::pb::organization_service_client::OrganizationServiceClient::new(app.grpc_channel().await);
    let refused = grpc.get_organization(madoguchi_grpc::pb::GetOrganizationRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    // A method nobody serves, posted without a key, grows no label.
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let random = format!("http://{}/madoguchi.v1.Nothing/{}", app.grpc, uuid::Uuid::new_v4().simple());
    h2.post(&random).header("content-type", "application/grpc").body(vec![0u8; 5]).send().await.unwrap();
    let metrics = app.client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("madoguchi.v1.Nothing"), "{metrics}");
    assert!(metrics.contains("grpc_requests_total{method=\"unknown\""), "{metrics}");
    for name in [
        "grpc_requests_total{method=\"/madoguchi.v1.OrganizationService/GetOrganization\",code=\"Unauthenticated\"}",
        "grpc_request_duration_seconds",
        "webhook_events_total{provider=\"line\",outcome=\"stored\"}",
        "job_attempts_total{kind=\"line.reply\",result=\"done\"}",
        "intake_batch_deliveries_count",
        "intake_batch_events_sum",
        "websocket_connections",
    ] {
        assert!(metrics.contains(name), "{name} missing from {metrics}");
    }
    // Metrics are on their own listener, not the public one.
    let metrics = app.client.get(format!("http://{}/metrics", app.metrics)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert_eq!(app.client.get(app.url("/metrics")).send().await.unwrap().status(), 404);
    let graphiql = app.client.get(app.url("/graphql")).send().await.unwrap().text().await.unwrap();
    assert!(graphiql.contains("graphiql"));
}

async fn shutdown_closes_websockets_cleanly_and_stops(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let mut ws = GraphqlWs::connect(
        &format!("ws://{}/graphql/ws", app.http),
        json!({"authorization": format!("Bearer {admin}")}),
    )
    .await
    .unwrap();
    ws.subscribe("1", "subscription { organizationEvents { cursor } }", json!({})).await;
    assert!(ws.is_quiet_for(std::time::Duration::from_millis(200)).await);

    app.begin_stop();
    assert_eq!(ws.next().await, Received::Closed(Some(1001)));
    tokio::time::timeout(std::time::Duration::from_secs(10), app.wait_stopped())
        .await
        .expect("the server stops within its grace period")
        .expect("the server stops without error");
    assert!(app.client.get(app.url("/livez")).send().await.is_err(), "nothing listens any more");
}
