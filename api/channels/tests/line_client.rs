//! The LINE client against the fake LINE API: every method, its successes and LINE's failures.

use std::time::Duration;

use madoguchi_channels::line::OutboundMessage;
use madoguchi_channels::line::client::{
    AccessToken, BotInfo, ChatMode, Content, ContentOutcome, LineClient, LineEndpoints, LineError, MarkAsReadMode,
    Profile, PushOutcome, Quota, TranscodingStatus,
};
use madoguchi_fakes::{FakeBotInfo, FakeLine, FakeProfile};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

const TOKEN: &str = "valid-channel-access-token";
const BOT: &str = "Ub9952f8aaaaaaaaaaaaaaaaaaaaaaaaa";
const USER: &str = "U4af4980629aaaaaaaaaaaaaaaaaaaaaa";

struct Line {
    fake: FakeLine,
    client: LineClient,
    token: AccessToken,
}

async fn line() -> Line {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeLine::start().await;
    fake.add_channel(TOKEN, FakeBotInfo::new(BOT, "Madoguchi Support"));
    let endpoints = LineEndpoints { api_base: fake.api_base(), data_base: fake.data_base() };
    let client = LineClient::new(reqwest::Client::new(), endpoints);
    Line { fake, client, token: AccessToken::new(TOKEN) }
}

fn hello() -> Vec<OutboundMessage> {
    vec![
        OutboundMessage::text("hello"),
        OutboundMessage::image("https://cdn.example/a.jpg", "https://cdn.example/a-small.jpg"),
    ]
}

fn assert_authentication_failed(error: &LineError) {
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(error.is_unauthorized());
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        "Authentication failed. Confirm that the access token in the authorization header is valid."
    );
}

#[tokio::test]
async fn bot_info_returns_the_channels_bot() {
    let line = line().await;

    let info = line.client.bot_info(&line.token).await.unwrap();

    assert_eq!(
        info,
        BotInfo {
            user_id: BOT.into(),
            basic_id: "@b9952f8a".into(),
            premium_id: None,
            display_name: "Madoguchi Support".into(),
            picture_url: None,
            chat_mode: ChatMode::Chat,
            mark_as_read_mode: MarkAsReadMode::Manual,
        }
    );
    let requests = line.fake.requests_to("/v2/bot/info");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("authorization"), Some("Bearer valid-channel-access-token"));
}

#[tokio::test]
async fn an_unknown_access_token_is_unauthorized() {
    let line = line().await;

    let error = line.client.bot_info(&AccessToken::new("not-a-token")).await.unwrap_err();

    assert_authentication_failed(&error);
}

#[tokio::test]
async fn an_expired_access_token_is_unauthorized_everywhere() {
    let line = line().await;
    line.fake.expire_token(TOKEN);
    line.fake.issue_reply_token("r1");
    line.fake.set_content("m1", &b"x"[..], "image/jpeg", 0);

    let errors = [
        line.client.reply(&line.token, "r1", &hello()).await.unwrap_err(),
        line.client.push(&line.token, USER, &hello(), Uuid::new_v4()).await.unwrap_err(),
        line.client.profile(&line.token, USER).await.unwrap_err(),
        line.client.content(&line.token, "m1").await.unwrap_err(),
        line.client.quota(&line.token).await.unwrap_err(),
        line.client.quota_consumption(&line.token).await.unwrap_err(),
    ];

    for error in &errors {
        assert_authentication_failed(error);
    }
    assert!(line.fake.replied("r1").is_empty());
    assert!(line.fake.pushed_to(USER).is_empty());
}

#[tokio::test]
async fn the_access_token_never_appears_in_errors() {
    let line = line().await;
    line.fake.fail_next("/v2/bot/info", 500, json!({"message": "boom"}), None);

    let error = line.client.bot_info(&line.token).await.unwrap_err();

    assert!(!error.to_string().contains(TOKEN));
    assert!(!format!("{error:?}").contains(TOKEN));
    assert!(!format!("{:?}", line.client).contains(TOKEN));
}

#[tokio::test]
async fn a_reply_delivers_the_messages_in_lines_wire_format() {
    let line = line().await;
    line.fake.issue_reply_token("r1");

    let delivery = line.client.reply(&line.token, "r1", &hello()).await.unwrap();

    assert_eq!(delivery.sent_messages.len(), 2);
    assert!(delivery.request_id.is_some());
    assert_eq!(
        line.fake.replied("r1"),
        [
            json!({"type": "text", "text": "hello"}),
            json!({
                "type": "image",
                "originalContentUrl": "https://cdn.example/a.jpg",
                "previewImageUrl": "https://cdn.example/a-small.jpg",
            }),
        ]
    );
    let request = &line.fake.requests_to("/v2/bot/message/reply")[0];
    assert_eq!(request.body.as_ref().unwrap()["replyToken"], "r1");
    assert_eq!(request.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_reused_reply_token_is_rejected() {
    let line = line().await;
    line.fake.issue_reply_token("r1");
    line.client.reply(&line.token, "r1", &hello()).await.unwrap();

    let error = line.client.reply(&line.token, "r1", &[OutboundMessage::text("again")]).await.unwrap_err();

    assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
    assert!(error.is_invalid_reply_token());
    assert!(!error.is_retryable());
    assert_eq!(error.to_string(), "Invalid reply token");
    assert_eq!(line.fake.replied("r1").len(), 2);
}

#[tokio::test]
async fn an_unknown_reply_token_is_rejected() {
    let line = line().await;

    let error = line.client.reply(&line.token, "never-issued", &hello()).await.unwrap_err();

    assert!(error.is_invalid_reply_token());
}

#[tokio::test]
async fn an_expired_reply_token_is_rejected() {
    let line = line().await;
    line.fake.set_reply_token_ttl(Duration::ZERO);
    line.fake.issue_reply_token("r1");

    let error = line.client.reply(&line.token, "r1", &hello()).await.unwrap_err();

    assert!(error.is_invalid_reply_token());
    assert!(line.fake.replied("r1").is_empty());
}

#[tokio::test]
async fn six_messages_are_rejected_with_lines_details() {
    let line = line().await;
    line.fake.issue_reply_token("r1");
    let six = vec![OutboundMessage::text("x"); 6];

    let error = line.client.reply(&line.token, "r1", &six).await.unwrap_err();

    assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
    assert!(!error.is_invalid_reply_token());
    assert_eq!(error.to_string(), "The request body has 1 error(s) (messages: Size must be between 1 and 5)");
}

#[tokio::test]
async fn a_push_sends_the_retry_key_and_delivers() {
    let line = line().await;
    let key = Uuid::new_v4();

    let outcome = line.client.push(&line.token, USER, &hello(), key).await.unwrap();

    let PushOutcome::Sent(delivery) = outcome else { panic!("{outcome:?}") };
    assert_eq!(delivery.sent_messages.len(), 2);
    assert_eq!(line.fake.pushed_to(USER).len(), 2);
    let request = &line.fake.requests_to("/v2/bot/message/push")[0];
    assert_eq!(request.header("x-line-retry-key"), Some(key.to_string().as_str()));
    assert_eq!(request.body.as_ref().unwrap()["to"], USER);
}

#[tokio::test]
async fn a_retried_push_whose_key_was_accepted_is_already_accepted() {
    let line = line().await;
    let key = Uuid::new_v4();
    let PushOutcome::Sent(first) = line.client.push(&line.token, USER, &hello(), key).await.unwrap() else {
        panic!("the first push is sent")
    };

    let outcome = line.client.push(&line.token, USER, &hello(), key).await.unwrap();

    let PushOutcome::AlreadyAccepted { accepted_request_id, sent_messages } = outcome else { panic!("{outcome:?}") };
    assert_eq!(Some(accepted_request_id), first.request_id);
    assert_eq!(sent_messages, first.sent_messages);
    assert_eq!(line.fake.pushed_to(USER).len(), 2);
}

#[tokio::test]
async fn a_push_whose_answer_was_lost_is_retried_safely_with_the_same_key() {
    let line = line().await;
    line.fake.fail_next_after_taking_effect("/v2/bot/message/push", 502);
    let key = Uuid::new_v4();

    let error = line.client.push(&line.token, USER, &hello(), key).await.unwrap_err();
    let outcome = line.client.push(&line.token, USER, &hello(), key).await.unwrap();

    assert!(error.is_retryable());
    assert!(matches!(outcome, PushOutcome::AlreadyAccepted { .. }));
    assert_eq!(line.fake.pushed_to(USER).len(), 2);
}

#[tokio::test]
async fn a_conflict_without_an_accepted_request_id_is_an_error() {
    let line = line().await;
    line.fake.fail_next("/v2/bot/message/push", 409, json!({"message": "Conflict"}), None);

    let error = line.client.push(&line.token, USER, &hello(), Uuid::new_v4()).await.unwrap_err();

    assert_eq!(error.status(), Some(StatusCode::CONFLICT));
    assert_eq!(error.line_message(), Some("Conflict"));
}

#[tokio::test]
async fn a_rate_limited_call_is_retryable_after_the_time_line_asks() {
    let line = line().await;
    line.fake.fail_next(
        "/v2/bot/message/push",
        429,
        json!({"message": "The API rate limit has been exceeded. Try again later."}),
        Some(30),
    );

    let error = line.client.push(&line.token, USER, &hello(), Uuid::new_v4()).await.unwrap_err();

    assert_eq!(error.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(error.to_string(), "The API rate limit has been exceeded. Try again later.");
    assert!(line.fake.pushed_to(USER).is_empty());
}

#[tokio::test]
async fn a_server_error_is_retryable_and_the_retry_succeeds() {
    let line = line().await;
    line.fake.fail_next("/v2/bot/message/reply", 500, json!({"message": "Internal Server Error"}), None);
    line.fake.issue_reply_token("r1");

    let error = line.client.reply(&line.token, "r1", &hello()).await.unwrap_err();
    let retried = line.client.reply(&line.token, "r1", &hello()).await;

    assert_eq!(error.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), None);
    assert!(retried.is_ok(), "{retried:?}");
}

#[tokio::test]
async fn a_server_error_without_a_json_body_still_describes_itself() {
    let line = line().await;
    line.fake.fail_next("/v2/bot/info", 503, json!("upstream unavailable"), None);

    let error = line.client.bot_info(&line.token).await.unwrap_err();

    assert!(error.is_retryable());
    assert_eq!(error.to_string(), "line answered 503 Service Unavailable");
}

#[tokio::test]
async fn an_unreachable_line_is_a_retryable_transport_error() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeLine::start().await;
    let endpoints = LineEndpoints { api_base: fake.api_base(), data_base: fake.data_base() };
    fake.shutdown().await;
    let client = LineClient::new(reqwest::Client::new(), endpoints);

    let error = client.bot_info(&AccessToken::new(TOKEN)).await.unwrap_err();

    assert!(matches!(error, LineError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn profile_returns_the_users_profile() {
    let line = line().await;
    line.fake.set_profile(FakeProfile {
        language: Some("ja".into()),
        status_message: Some("こんにちは".into()),
        ..FakeProfile::new(USER, "LINE taro")
    });

    let profile = line.client.profile(&line.token, USER).await.unwrap();

    assert_eq!(
        profile,
        Profile {
            user_id: USER.into(),
            display_name: "LINE taro".into(),
            picture_url: None,
            status_message: Some("こんにちは".into()),
            language: Some("ja".into()),
        }
    );
}

#[tokio::test]
async fn an_unknown_profile_is_not_found() {
    let line = line().await;

    let error = line.client.profile(&line.token, "Uunknown").await.unwrap_err();

    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn content_not_ready_is_reported_until_line_has_it() {
    let line = line().await;
    line.fake.set_content("325708", &b"\x00\x01video"[..], "video/mp4", 2);

    let first = line.client.content(&line.token, "325708").await.unwrap();
    let second = line.client.content(&line.token, "325708").await.unwrap();
    let third = line.client.content(&line.token, "325708").await.unwrap();

    assert_eq!(first, ContentOutcome::NotReady);
    assert_eq!(second, ContentOutcome::NotReady);
    assert_eq!(
        third,
        ContentOutcome::Ready(Content {
            bytes: bytes::Bytes::from_static(b"\x00\x01video"),
            content_type: Some("video/mp4".into()),
        })
    );
    assert_eq!(line.fake.requests_to("/v2/bot/message/325708/content").len(), 3);
}

#[tokio::test]
async fn content_over_a_per_call_limit_is_refused_and_under_it_arrives() {
    let line = line().await;
    line.fake.set_content("m1", vec![7u8; 4096], "image/jpeg", 0);

    let error = line.client.content_within(&line.token, "m1", 4095).await.unwrap_err();
    assert!(matches!(error, LineError::ContentTooLarge { limit: 4095 }), "{error:?}");
    let ContentOutcome::Ready(content) = line.client.content_within(&line.token, "m1", 4096).await.unwrap() else {
        panic!("ready content expected");
    };
    assert_eq!(content.bytes.len(), 4096);
}

#[tokio::test]
async fn content_larger_than_the_limit_is_refused() {
    let line = line().await;
    line.fake.set_content("m1", vec![7u8; 2048], "image/jpeg", 0);
    let client = line.client.clone().with_content_limits(Duration::from_secs(5), 1024);

    let error = client.content(&line.token, "m1").await.unwrap_err();

    assert!(matches!(error, LineError::ContentTooLarge { limit: 1024 }), "{error:?}");
}

#[tokio::test]
async fn unknown_content_is_not_found() {
    let line = line().await;

    let error = line.client.content(&line.token, "404").await.unwrap_err();

    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn transcoding_reports_processing_then_succeeded() {
    let line = line().await;
    line.fake.set_content("m1", &b"m4a"[..], "audio/x-m4a", 1);

    let first = line.client.content_transcoding(&line.token, "m1").await.unwrap();
    let second = line.client.content_transcoding(&line.token, "m1").await.unwrap();

    assert_eq!(first, TranscodingStatus::Processing);
    assert_eq!(second, TranscodingStatus::Succeeded);
    assert_eq!(line.fake.requests_to("/v2/bot/message/m1/content/transcoding").len(), 2);
}

#[tokio::test]
async fn quota_is_unlimited_until_a_limit_is_set() {
    let line = line().await;

    let before = line.client.quota(&line.token).await.unwrap();
    line.fake.set_quota(200);
    let after = line.client.quota(&line.token).await.unwrap();

    assert_eq!(before, Quota::Unlimited);
    assert_eq!(after, Quota::Limited(200));
}

#[tokio::test]
async fn quota_consumption_counts_accepted_pushes() {
    let line = line().await;
    line.client.push(&line.token, USER, &hello(), Uuid::new_v4()).await.unwrap();
    let key = Uuid::new_v4();
    line.client.push(&line.token, USER, &hello(), key).await.unwrap();
    line.client.push(&line.token, USER, &hello(), key).await.unwrap();

    let used = line.client.quota_consumption(&line.token).await.unwrap();

    assert_eq!(used, 2);
}

#[tokio::test]
async fn a_push_past_the_monthly_limit_is_rate_limited() {
    let line = line().await;
    line.fake.set_quota(1);
    line.client.push(&line.token, USER, &hello(), Uuid::new_v4()).await.unwrap();

    let error = line.client.push(&line.token, USER, &hello(), Uuid::new_v4()).await.unwrap_err();

    assert_eq!(error.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(error.to_string(), "You have reached your monthly limit.");
}

#[tokio::test]
async fn a_slow_line_times_out_as_a_retryable_error() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A listener that accepts connections but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = url::Url::parse(&format!("http://{}", silent.local_addr().unwrap())).unwrap();
    let client = LineClient::new(reqwest::Client::new(), LineEndpoints { api_base: base.clone(), data_base: base })
        .with_timeout(Duration::from_millis(200));

    let error = client.bot_info(&AccessToken::new(TOKEN)).await.unwrap_err();

    let LineError::Transport(transport) = &error else { panic!("{error:?}") };
    assert!(transport.is_timeout(), "{transport:?}");
    assert!(error.is_retryable());
    drop(silent);
}
