//! The WeChat client against the fake WeChat API: tokens, customer-service
//! messages, media upload and download, and how WeChat's failures are classified.

use std::time::Duration;

use bytes::Bytes;
use madoguchi_channels::wechat::client::{
    IssuedToken, Media, MediaType, WechatAccessToken, WechatClient, WechatEndpoints, WechatError, codes,
};
use madoguchi_channels::wechat::outbound::{CustomMessage, Video};
use madoguchi_fakes::FakeWechat;
use serde_json::json;

const APP: &str = "wx6f1a2b3c4d5e6f70";
const SECRET: &str = "0f9e8d7c6b5a49382716a5b4c3d2e1f0";
const USER: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

struct Wechat {
    fake: FakeWechat,
    client: WechatClient,
}

impl Wechat {
    async fn token(&self) -> WechatAccessToken {
        self.client.token(APP, SECRET).await.unwrap().token
    }
}

async fn wechat() -> Wechat {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeWechat::start().await;
    fake.add_app(APP, SECRET);
    let client = WechatClient::new(reqwest::Client::new(), WechatEndpoints { api_base: fake.base_url() });
    Wechat { fake, client }
}

fn assert_token_invalid(error: &WechatError, errcode: i64) {
    assert_eq!(error.errcode(), Some(errcode), "{error:?}");
    assert!(error.is_token_invalid(), "{error:?}");
    assert!(!error.is_retryable(), "{error:?}");
    assert!(!error.outcome_unknown(), "{error:?}");
}

#[tokio::test]
async fn token_is_issued_for_two_hours_and_each_call_invalidates_the_previous_one() {
    let wechat = wechat().await;

    let first = wechat.client.token(APP, SECRET).await.unwrap();
    let second = wechat.client.token(APP, SECRET).await.unwrap();

    assert_eq!(first.expires_in, Duration::from_secs(7200));
    assert_ne!(first.token, second.token);
    let stale = wechat.client.send_custom(&first.token, &CustomMessage::text(USER, "hi")).await.unwrap_err();
    assert_token_invalid(&stale, codes::INVALID_CREDENTIAL);
    wechat.client.send_custom(&second.token, &CustomMessage::text(USER, "hi")).await.unwrap();
    assert_eq!(wechat.fake.tokens_issued(APP), 2);
    let request = &wechat.fake.requests_to("/cgi-bin/token")[0];
    assert_eq!(request.query("grant_type"), Some("client_credential"));
    assert_eq!(request.query("appid"), Some(APP));
    assert_eq!(request.query("secret"), Some(SECRET));
}

#[tokio::test]
async fn stable_token_answers_the_same_token_while_it_is_valid() {
    let wechat = wechat().await;

    let first = wechat.client.stable_token(APP, SECRET, false).await.unwrap();
    let again = wechat.client.stable_token(APP, SECRET, false).await.unwrap();

    assert_eq!(first.expires_in, Duration::from_secs(7200));
    assert_eq!(again.token, first.token);
    assert!(again.expires_in <= first.expires_in && again.expires_in >= Duration::from_secs(7190), "{again:?}");
    assert_eq!(wechat.fake.tokens_issued(APP), 1);
    assert_eq!(wechat.fake.token_calls(APP), 2);
    let request = &wechat.fake.requests_to("/cgi-bin/stable_token")[0];
    assert_eq!(
        request.body,
        Some(json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET, "force_refresh": false}))
    );
    assert!(request.query.is_empty(), "the secret stays out of the url: {:?}", request.query);
}

#[tokio::test]
async fn a_forced_stable_refresh_mints_a_new_token_and_invalidates_the_old_one() {
    let wechat = wechat().await;
    let first = wechat.client.stable_token(APP, SECRET, false).await.unwrap();

    let forced = wechat.client.stable_token(APP, SECRET, true).await.unwrap();

    assert_ne!(forced.token, first.token);
    assert_eq!(forced.expires_in, Duration::from_secs(7200));
    let stale = wechat.client.send_custom(&first.token, &CustomMessage::text(USER, "hi")).await.unwrap_err();
    assert_token_invalid(&stale, codes::INVALID_CREDENTIAL);
    wechat.client.send_custom(&forced.token, &CustomMessage::text(USER, "hi")).await.unwrap();
    assert_eq!(wechat.fake.tokens_issued(APP), 2);
}

#[tokio::test]
async fn stable_token_mints_a_new_token_once_the_current_one_expired() {
    let wechat = wechat().await;
    let first = wechat.client.stable_token(APP, SECRET, false).await.unwrap();
    wechat.fake.expire_tokens(APP);

    let renewed = wechat.client.stable_token(APP, SECRET, false).await.unwrap();

    assert_ne!(renewed.token, first.token);
    wechat.client.send_custom(&renewed.token, &CustomMessage::text(USER, "hi")).await.unwrap();
}

#[tokio::test]
async fn an_unknown_app_id_or_a_wrong_secret_is_wechats_error() {
    let wechat = wechat().await;

    let errors = [
        (wechat.client.token("wx0000000000000000", SECRET).await.unwrap_err(), codes::INVALID_APP_ID),
        (wechat.client.stable_token("wx0000000000000000", SECRET, false).await.unwrap_err(), codes::INVALID_APP_ID),
        (wechat.client.token(APP, "wrong-secret").await.unwrap_err(), codes::INVALID_APP_SECRET),
        (wechat.client.stable_token(APP, "wrong-secret", false).await.unwrap_err(), codes::INVALID_APP_SECRET),
    ];

    for (error, errcode) in &errors {
        let expected_message = if *errcode == codes::INVALID_APP_ID { "invalid appid" } else { "invalid appsecret" };
        assert_eq!(error, &WechatError::Api { errcode: *errcode, errmsg: expected_message.into() });
        assert!(!error.is_token_invalid());
        assert!(!error.is_retryable());
        assert!(!error.outcome_unknown());
    }
    assert_eq!(wechat.fake.tokens_issued(APP), 0);
}

#[tokio::test]
async fn a_text_message_is_delivered_in_wechats_wire_format() {
    let wechat = wechat().await;
    let token = wechat.token().await;

    wechat.client.send_custom(&token, &CustomMessage::text(USER, "こんにちは、窓口です")).await.unwrap();

    let expected = json!({"touser": USER, "msgtype": "text", "text": {"content": "こんにちは、窓口です"}});
    assert_eq!(wechat.fake.sent_to(USER), vec![expected.clone()]);
    assert_eq!(wechat.fake.sent(), [(APP.to_owned(), expected)]);
    let request = &wechat.fake.requests_to("/cgi-bin/message/custom/send")[0];
    assert_eq!(request.query("access_token"), Some(token.expose_secret()));
    assert_eq!(request.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn an_uploaded_image_is_sent_by_its_media_id() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    let jpeg = Bytes::from_static(b"\xff\xd8\xff\xe0fake jpeg");

    let media_id =
        wechat.client.upload_media(&token, MediaType::Image, "photo.jpg", "image/jpeg", jpeg.clone()).await.unwrap();
    wechat.client.send_custom(&token, &CustomMessage::image(USER, media_id.clone())).await.unwrap();

    assert_eq!(wechat.fake.uploaded(&media_id), Some(("image".into(), "image/jpeg".into(), jpeg)));
    assert_eq!(wechat.fake.uploads(), 1);
    assert_eq!(
        wechat.fake.sent_to(USER),
        [json!({"touser": USER, "msgtype": "image", "image": {"media_id": media_id}})]
    );
    let upload = &wechat.fake.requests_to("/cgi-bin/media/upload")[0];
    assert_eq!(upload.query("type"), Some("image"));
    assert_eq!(upload.query("access_token"), Some(token.expose_secret()));
    assert!(upload.header("content-type").unwrap().starts_with("multipart/form-data; boundary="));
}

#[tokio::test]
async fn a_video_is_sent_with_an_uploaded_thumb() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    let mp4 = Bytes::from_static(b"\x00\x00\x00\x18ftypmp42");
    let thumb = Bytes::from_static(b"\xff\xd8thumb");

    let video_id = wechat.client.upload_media(&token, MediaType::Video, "clip.mp4", "video/mp4", mp4).await.unwrap();
    let thumb_id = wechat.client.upload_media(&token, MediaType::Thumb, "clip.jpg", "image/jpeg", thumb).await.unwrap();
    let video = Video {
        media_id: video_id.clone(),
        thumb_media_id: thumb_id.clone(),
        title: Some("How to return an item".into()),
        description: None,
    };
    wechat.client.send_custom(&token, &CustomMessage::video(USER, video)).await.unwrap();

    assert_eq!(wechat.fake.uploaded(&thumb_id).unwrap().0, "thumb");
    assert_eq!(
        wechat.fake.sent_to(USER),
        [json!({
            "touser": USER,
            "msgtype": "video",
            "video": {"media_id": video_id, "thumb_media_id": thumb_id, "title": "How to return an item"},
        })]
    );
}

#[tokio::test]
async fn an_image_with_a_media_id_wechat_never_issued_is_invalid_media() {
    let wechat = wechat().await;
    let token = wechat.token().await;

    let error = wechat.client.send_custom(&token, &CustomMessage::image(USER, "never-uploaded")).await.unwrap_err();

    assert_eq!(error, WechatError::Api { errcode: 40007, errmsg: "invalid media_id".into() });
    assert!(!error.is_retryable());
    assert!(wechat.fake.sent().is_empty());
}

#[tokio::test]
async fn an_upload_wechat_refuses_is_its_error() {
    let wechat = wechat().await;
    let token = wechat.token().await;

    let error = wechat
        .client
        .upload_media(&token, MediaType::Thumb, "thumb.jpg", "image/jpeg", Bytes::from(vec![0u8; 64 * 1024 + 1]))
        .await
        .unwrap_err();

    assert_eq!(error.errcode(), Some(40006), "{error:?}");
    assert_eq!(wechat.fake.uploads(), 0);
}

#[tokio::test]
async fn a_closed_window_is_neither_retryable_nor_a_token_problem() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    wechat.fake.close_window(USER);

    let error = wechat.client.send_custom(&token, &CustomMessage::text(USER, "hi")).await.unwrap_err();
    wechat.fake.open_window(USER);
    let reopened = wechat.client.send_custom(&token, &CustomMessage::text(USER, "hi again")).await;

    assert_eq!(
        error,
        WechatError::Api {
            errcode: codes::WINDOW_CLOSED,
            errmsg: "response out of time limit or subscription is canceled".into()
        }
    );
    assert!(!error.is_retryable());
    assert!(!error.is_token_invalid());
    assert!(!error.outcome_unknown());
    assert!(reopened.is_ok(), "{reopened:?}");
    assert_eq!(wechat.fake.sent_to(USER).len(), 1);
}

#[tokio::test]
async fn too_many_messages_is_neither_retryable_nor_a_token_problem() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    wechat.fake.limit_messages(USER);

    let error = wechat.client.send_custom(&token, &CustomMessage::text(USER, "hi")).await.unwrap_err();

    assert_eq!(error.errcode(), Some(codes::TOO_MANY_MESSAGES));
    assert!(!error.is_retryable());
    assert!(!error.is_token_invalid());
    assert!(wechat.fake.sent_to(USER).is_empty());
}

#[tokio::test]
async fn a_revoked_token_is_invalid_everywhere() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    wechat.fake.add_media("img1", "image/jpeg", &b"jpeg"[..]);
    wechat.fake.revoke_tokens(APP);

    let errors = [
        wechat.client.send_custom(&token, &CustomMessage::text(USER, "hi")).await.unwrap_err(),
        wechat
            .client
            .upload_media(&token, MediaType::Image, "a.jpg", "image/jpeg", Bytes::from_static(b"x"))
            .await
            .unwrap_err(),
        wechat.client.media(&token, "img1", 1024).await.unwrap_err(),
    ];

    for error in &errors {
        assert_token_invalid(error, codes::INVALID_CREDENTIAL);
    }
    assert!(wechat.fake.sent().is_empty());
}

#[tokio::test]
async fn an_expired_token_is_invalid() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    wechat.fake.expire_tokens(APP);

    let error = wechat.client.send_custom(&token, &CustomMessage::text(USER, "hi")).await.unwrap_err();

    assert_eq!(error, WechatError::Api { errcode: codes::ACCESS_TOKEN_EXPIRED, errmsg: "access_token expired".into() });
    assert_token_invalid(&error, codes::ACCESS_TOKEN_EXPIRED);
}

#[tokio::test]
async fn a_token_outliving_its_expires_in_is_expired() {
    let wechat = wechat().await;
    wechat.fake.set_token_lifetime(Duration::from_millis(1500));
    let issued = wechat.client.token(APP, SECRET).await.unwrap();

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let error = wechat.client.send_custom(&issued.token, &CustomMessage::text(USER, "hi")).await.unwrap_err();

    assert_eq!(issued.expires_in, Duration::from_secs(1));
    assert_token_invalid(&error, codes::ACCESS_TOKEN_EXPIRED);
}

#[tokio::test]
async fn a_busy_wechat_is_retryable_and_the_retry_is_delivered() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    wechat.fake.fail_next_send(codes::BUSY, "system error");

    let error = wechat.client.send_custom(&token, &CustomMessage::text(USER, "hi")).await.unwrap_err();
    let retried = wechat.client.send_custom(&token, &CustomMessage::text(USER, "hi")).await;

    assert_eq!(error, WechatError::Api { errcode: -1, errmsg: "system error".into() });
    assert!(error.is_retryable());
    assert!(!error.is_token_invalid());
    assert!(!error.outcome_unknown());
    assert!(retried.is_ok(), "{retried:?}");
    assert_eq!(wechat.fake.sent_to(USER).len(), 1);
}

#[tokio::test]
async fn a_scripted_invalid_credential_asks_for_a_new_token() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    wechat.fake.fail_next_send(codes::INVALID_CREDENTIAL, "invalid credential, access_token is invalid or not latest");

    let error = wechat.client.send_custom(&token, &CustomMessage::text(USER, "hi")).await.unwrap_err();

    assert_token_invalid(&error, codes::INVALID_CREDENTIAL);
    assert!(wechat.fake.sent().is_empty());
}

#[tokio::test]
async fn a_send_whose_answer_was_lost_has_an_unknown_outcome() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    wechat.fake.drop_next_send_after_taking_effect();

    let error = wechat.client.send_custom(&token, &CustomMessage::text(USER, "hi")).await.unwrap_err();

    assert!(error.outcome_unknown(), "{error:?}");
    assert!(!error.is_retryable(), "{error:?}");
    assert!(!error.is_token_invalid(), "{error:?}");
    assert!(!error.to_string().contains(token.expose_secret()), "{error}");
    assert_eq!(wechat.fake.sent_to(USER).len(), 1, "the message was delivered although the answer was lost");
}

#[tokio::test]
async fn an_image_a_consumer_sent_downloads_with_its_content_type() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    let jpeg = Bytes::from(vec![0xff_u8; 4096]);
    wechat.fake.add_media("consumer-image", "image/jpeg", jpeg.clone());

    let media = wechat.client.media(&token, "consumer-image", 4096).await.unwrap();

    assert_eq!(media, Media { bytes: jpeg, content_type: Some("image/jpeg".into()) });
    let request = &wechat.fake.requests_to("/cgi-bin/media/get")[0];
    assert_eq!(request.query("media_id"), Some("consumer-image"));
    assert_eq!(request.query("access_token"), Some(token.expose_secret()));
}

#[tokio::test]
async fn a_video_a_consumer_sent_downloads_through_its_video_url() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    let mp4 = Bytes::from_static(b"\x00\x00\x00\x18ftypmp42 consumer video");
    wechat.fake.add_video("consumer-video", mp4.clone());

    let media = wechat.client.media(&token, "consumer-video", 1024).await.unwrap();

    assert_eq!(media, Media { bytes: mp4, content_type: Some("video/mp4".into()) });
    assert_eq!(wechat.fake.requests_to("/cgi-bin/media/get").len(), 1);
    assert_eq!(wechat.fake.requests_to("/video/consumer-video").len(), 1);
}

#[tokio::test]
async fn media_over_the_limit_is_refused() {
    let wechat = wechat().await;
    let token = wechat.token().await;
    wechat.fake.add_media("big-image", "image/png", vec![7u8; 2048]);
    wechat.fake.add_video("big-video", vec![7u8; 2048]);

    let image = wechat.client.media(&token, "big-image", 2047).await.unwrap_err();
    let video = wechat.client.media(&token, "big-video", 2047).await.unwrap_err();

    assert_eq!(image, WechatError::MediaTooLarge { limit: 2047 });
    assert_eq!(video, WechatError::MediaTooLarge { limit: 2047 });
    assert!(!image.is_retryable());
    assert!(!image.outcome_unknown());
}

#[tokio::test]
async fn unknown_media_is_wechats_invalid_media_id() {
    let wechat = wechat().await;
    let token = wechat.token().await;

    let error = wechat.client.media(&token, "no-such-media", 1024).await.unwrap_err();

    assert_eq!(error, WechatError::Api { errcode: 40007, errmsg: "invalid media_id".into() });
}

#[tokio::test]
async fn an_unreachable_wechat_was_not_sent_to_and_its_error_keeps_the_secrets_out() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeWechat::start().await;
    let endpoints = WechatEndpoints { api_base: fake.base_url() };
    fake.shutdown().await;
    let client = WechatClient::new(reqwest::Client::new(), endpoints);
    let token = WechatAccessToken::new("ACCESS_TOKEN_THAT_MUST_NOT_LEAK");

    let errors = [
        client.token(APP, SECRET).await.unwrap_err(),
        client.stable_token(APP, SECRET, false).await.unwrap_err(),
        client.send_custom(&token, &CustomMessage::text(USER, "hi")).await.unwrap_err(),
        client
            .upload_media(&token, MediaType::Image, "a.jpg", "image/jpeg", Bytes::from_static(b"x"))
            .await
            .unwrap_err(),
        client.media(&token, "m", 1024).await.unwrap_err(),
    ];

    for error in &errors {
        assert!(matches!(error, WechatError::Transport { sent: false, .. }), "{error:?}");
        assert!(error.is_retryable());
        assert!(!error.outcome_unknown());
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(token.expose_secret()), "{shown}");
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("127.0.0.1"), "no url in {shown}");
        }
    }
}

#[test]
fn the_access_token_is_not_printed_in_debug_output() {
    let token = WechatAccessToken::new("ACCESS_TOKEN_THAT_MUST_NOT_LEAK");
    let issued = IssuedToken { token: token.clone(), expires_in: Duration::from_secs(7200) };

    assert_eq!(format!("{token:?}"), "***");
    assert!(!format!("{issued:?}").contains(token.expose_secret()));
}
