//! The fake's own behaviour, checked with a plain HTTP client.

use super::*;

const TOKEN: &str = "channel-access-token";
const USER: &str = "U4af4980629aaaaaaaaaaaaaaaaaaaaaa";

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn started() -> FakeLine {
    let line = FakeLine::start().await;
    line.add_channel(TOKEN, FakeBotInfo::new("Ub9952f8aaaaaaaaaaaaaaaaaaaaaaaaa", "Madoguchi"));
    line
}

async fn post(line: &FakeLine, path: &str, body: Value, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
    let mut request = http().post(line.api_base().join(path).unwrap()).bearer_auth(TOKEN).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn texts(count: usize) -> Value {
    Value::Array((0..count).map(|n| json!({"type": "text", "text": format!("m{n}")})).collect())
}

#[tokio::test]
async fn an_unknown_access_token_gets_lines_401() {
    let line = started().await;

    let response =
        http().get(line.api_base().join("/v2/bot/info").unwrap()).bearer_auth("someone-else").send().await.unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"message": AUTHENTICATION_FAILED}));
}

#[tokio::test]
async fn six_messages_are_rejected_like_line_does() {
    let line = started().await;
    line.issue_reply_token("r1");

    let (status, _, body) =
        post(&line, "/v2/bot/message/reply", json!({"replyToken": "r1", "messages": texts(6)}), &[]).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({
            "message": "The request body has 1 error(s)",
            "details": [{"message": "Size must be between 1 and 5", "property": "messages"}],
        })
    );
    assert!(line.replied("r1").is_empty());
}

#[tokio::test]
async fn a_rejected_body_does_not_use_up_the_reply_token() {
    let line = started().await;
    line.issue_reply_token("r1");
    post(&line, "/v2/bot/message/reply", json!({"replyToken": "r1", "messages": []}), &[]).await;

    let (status, _, _) =
        post(&line, "/v2/bot/message/reply", json!({"replyToken": "r1", "messages": texts(5)}), &[]).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(line.replied("r1").len(), 5);
}

#[tokio::test]
async fn empty_and_overlong_texts_and_plain_http_images_are_rejected() {
    let line = started().await;
    let messages = json!([
        {"type": "text", "text": ""},
        {"type": "text", "text": "😀".repeat(2501)},
        {"type": "image", "originalContentUrl": "http://cdn.example/a.jpg", "previewImageUrl": "https://cdn.example/b.jpg"},
        {"type": "carousel"},
    ]);

    let (status, _, body) = post(&line, "/v2/bot/message/push", json!({"to": USER, "messages": messages}), &[]).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "The request body has 4 error(s)");
    let properties: Vec<&str> =
        body["details"].as_array().unwrap().iter().map(|detail| detail["property"].as_str().unwrap()).collect();
    assert_eq!(
        properties,
        ["messages[0].text", "messages[1].text", "messages[2].originalContentUrl", "messages[3].type"]
    );
    assert!(line.pushed_to(USER).is_empty());
}

#[tokio::test]
async fn a_text_of_exactly_5000_utf16_units_is_accepted() {
    let line = started().await;

    let (status, _, _) = post(
        &line,
        "/v2/bot/message/push",
        json!({"to": USER, "messages": [{"type": "text", "text": "😀".repeat(2500)}]}),
        &[],
    )
    .await;

    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_push_accepted_before_its_answer_was_lost_is_not_delivered_twice() {
    let line = started().await;
    line.fail_next_after_taking_effect("/v2/bot/message/push", 500);
    let key = uuid::Uuid::new_v4().to_string();
    let body = json!({"to": USER, "messages": texts(1)});

    let (first, _, _) = post(&line, "/v2/bot/message/push", body.clone(), &[("x-line-retry-key", &key)]).await;
    let (second, headers, conflict) = post(&line, "/v2/bot/message/push", body, &[("x-line-retry-key", &key)]).await;

    assert_eq!(first, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(second, StatusCode::CONFLICT);
    assert!(headers.contains_key("x-line-accepted-request-id"));
    assert_eq!(conflict["message"], "The retry key is already accepted");
    assert_eq!(conflict["sentMessages"].as_array().unwrap().len(), 1);
    assert_eq!(line.pushed_to(USER), [json!({"type": "text", "text": "m0"})]);
}

#[tokio::test]
async fn an_invalid_retry_key_is_rejected() {
    let line = started().await;

    let (status, _, _) = post(
        &line,
        "/v2/bot/message/push",
        json!({"to": USER, "messages": texts(1)}),
        &[("x-line-retry-key", "not-a-uuid")],
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(line.pushed_to(USER).is_empty());
}

#[tokio::test]
async fn pushes_beyond_the_monthly_limit_get_429() {
    let line = started().await;
    line.set_quota(1);
    post(&line, "/v2/bot/message/push", json!({"to": USER, "messages": texts(3)}), &[]).await;

    let (status, _, body) = post(&line, "/v2/bot/message/push", json!({"to": USER, "messages": texts(1)}), &[]).await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["message"], "You have reached your monthly limit.");
    assert_eq!(line.pushed_to(USER).len(), 3);
}

#[tokio::test]
async fn content_is_served_on_the_data_host_only() {
    let line = started().await;
    line.set_content("325708", &b"jpeg"[..], "image/jpeg", 0);

    let on_api = http()
        .get(line.api_base().join("/v2/bot/message/325708/content").unwrap())
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let on_data = http()
        .get(line.data_base().join("/v2/bot/message/325708/content").unwrap())
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();

    assert_eq!(on_api.status(), StatusCode::NOT_FOUND);
    assert_eq!(on_data.status(), StatusCode::OK);
    assert_eq!(on_data.bytes().await.unwrap(), &b"jpeg"[..]);
}

#[tokio::test]
async fn every_request_is_recorded_with_its_json_body() {
    let line = started().await;
    line.issue_reply_token("r1");

    post(&line, "/v2/bot/message/reply", json!({"replyToken": "r1", "messages": texts(1)}), &[]).await;

    let requests = line.requests_to("/v2/bot/message/reply");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, Method::POST);
    assert_eq!(requests[0].host, FakeHost::Api);
    assert_eq!(requests[0].header("authorization"), Some("Bearer channel-access-token"));
    assert_eq!(requests[0].body.as_ref().unwrap()["replyToken"], "r1");
    assert_eq!(line.requests().len(), 1);
}

#[tokio::test]
async fn scripted_failures_are_used_once_each_in_order() {
    let line = started().await;
    line.fail_next("/v2/bot/info", 500, json!({"message": "first"}), None);
    line.fail_next("/v2/bot/info", 503, json!({"message": "second"}), Some(7));

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response =
            http().get(line.api_base().join("/v2/bot/info").unwrap()).bearer_auth(TOKEN).send().await.unwrap();
        statuses.push((
            response.status().as_u16(),
            response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()),
        ));
    }

    assert_eq!(statuses, [(500, None), (503, Some("7".to_owned())), (200, None)]);
}

#[tokio::test]
async fn a_dropped_fake_stops_answering() {
    let line = started().await;
    let url = line.api_base().join("/v2/bot/info").unwrap();

    drop(line);
    tokio::task::yield_now().await;

    assert!(http().get(url).bearer_auth(TOKEN).send().await.is_err());
}

#[tokio::test]
async fn a_shut_down_fake_stops_answering() {
    let line = started().await;
    let url = line.data_base().join("/v2/bot/message/1/content").unwrap();

    line.shutdown().await;

    assert!(http().get(url).bearer_auth(TOKEN).send().await.is_err());
}
