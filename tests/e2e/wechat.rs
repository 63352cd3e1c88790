//! WeChat Official Accounts end to end: connecting an account, URL
//! verification, every message type in all three delivery modes, bad input
//! that stores nothing, the 48-hour window and the monthly allowance, the
//! errors WeChat answers sends with, and one access token across replicas.

use std::time::Duration;

use madoguchi_channels::wechat::crypto::{self, EncodingAesKey};
use madoguchi_entity::webhook_receipts;
use madoguchi_tests::line::eventually;
use madoguchi_tests::wechat::{APP_SECRET, MODES, Mode, TestWechatChannel, callback, now_seconds, text_xml};
use madoguchi_tests::{Backend, TestApp, error_code, spawn_app};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

const CHANNEL_FIELDS: &str = "id kind webhookUrl wechat { originalId appId appSecret token encodingAesKey
    previousKeyAccepted outboundIps setupSteps }";

async fn messages(app: &TestApp, token: &str, chat_id: &str) -> Vec<Value> {
    let response = app
        .graphql(
            Some(token),
            "query($id: ID!) { chat(id: $id) { messages { id direction kind text deliveryState deliveryError
                attachments { status contentType sizeBytes } } } }",
            json!({"id": chat_id}),
        )
        .await;
    response["data"]["chat"]["messages"].as_array().unwrap_or_else(|| panic!("{response}")).clone()
}

async fn receipts(app: &TestApp, channel: &TestWechatChannel) -> u64 {
    let id: uuid::Uuid = channel.id.parse().unwrap();
    webhook_receipts::Entity::find()
        .filter(webhook_receipts::Column::ChannelId.eq(id))
        .count(app.core.db())
        .await
        .unwrap()
}

async fn send(app: &TestApp, token: &str, chat_id: &str, text: &str) -> Value {
    app.graphql(
        Some(token),
        "mutation($id: ID!, $text: String!) { sendMessage(chatId: $id, text: $text) { id deliveryState } }",
        json!({"id": chat_id, "text": text}),
    )
    .await
}

/// Delivers a text from `openid`, claims the chat as `token`'s agent and
/// returns its id.
async fn claimed_chat(app: &TestApp, token: &str, channel: &TestWechatChannel, openid: &str) -> String {
    let msg_id = uuid::Uuid::new_v4().as_u128().to_string()[..19].to_owned();
    let (status, _) = app.deliver_wechat(channel, Mode::Secure, &text_xml(channel, openid, &msg_id, "你好")).await;
    assert_eq!(status, 200);
    let chat = app.wechat_chat(token, openid).await.expect("a chat");
    let chat_id = chat["id"].as_str().unwrap().to_owned();
    let claimed =
        app.graphql(Some(token), "mutation($id: ID!) { claimChat(id: $id) { status } }", json!({"id": chat_id})).await;
    assert_eq!(claimed["data"]["claimChat"]["status"], "IN_PROGRESS", "{claimed}");
    chat_id
}

/// Waits until a message reaches a final delivery state and returns it.
async fn delivered(app: &TestApp, token: &str, chat_id: &str, message_id: &str) -> Value {
    eventually(|| async {
        messages(app, token, chat_id).await.into_iter().find(|message| {
            message["id"] == message_id && !matches!(message["deliveryState"].as_str(), Some("PENDING" | "SENDING"))
        })
    })
    .await
}

on_both_backends!(
    connecting_an_account_checks_it_with_wechat_and_shows_its_secrets_once,
    url_verification_echoes_only_for_the_right_signature,
    every_message_type_arrives_once_in_every_mode,
    bad_callbacks_are_refused_and_store_nothing,
    a_rotated_key_keeps_the_previous_one_until_confirmed,
    answers_follow_the_window_and_the_monthly_allowance,
    wechats_errors_close_the_window_refresh_the_token_or_fail_the_message,
    voice_video_and_images_are_uploaded_then_sent_and_received_media_is_downloaded,
);

async fn connecting_an_account_checks_it_with_wechat_and_shows_its_secrets_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    assert_eq!(channel.token.len(), 32);
    assert_eq!(channel.encoding_aes_key.len(), 43);
    EncodingAesKey::parse(&channel.encoding_aes_key).expect("a usable key");

    let shown = app
        .graphql(
            Some(&admin),
            &format!("query($id: ID!) {{ channel(id: $id) {{ {CHANNEL_FIELDS} }} }}"),
            json!({"id": channel.id}),
        )
        .await;
    let shown = &shown["data"]["channel"];
    assert_eq!(shown["kind"], "WECHAT");
    assert_eq!(shown["webhookUrl"], format!("https://madoguchi.test/webhooks/wechat/{}", channel.id));
    assert_eq!(shown["wechat"]["appId"], channel.app_id.as_str());
    assert_eq!(shown["wechat"]["outboundIps"], json!(["203.0.113.7"]));
    assert!(shown["wechat"]["setupSteps"].as_array().is_some_and(|steps| !steps.is_empty()));
    let text = shown.to_string();
    for secret in [APP_SECRET, &channel.token, &channel.encoding_aes_key] {
        assert!(!text.contains(secret), "a secret is shown again: {text}");
    }
    // The token fetched to check the app is the one sends use.
    assert_eq!(app.wechat.tokens_issued(&channel.app_id), 1);

    // WeChat's refusals are shown, and nothing is stored.
    let before = app.graphql(Some(&admin), "{ channels { id } }", json!({})).await["data"]["channels"].clone();
    let create = |app_id: &str, secret: &str, extra: Value| {
        let mut input = json!({"name": "Another", "originalId": "gh_0123456789ab", "appId": app_id,
            "appSecret": secret, "departmentId": channel.department_id});
        input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        input
    };
    let cases = [
        (create("wx00000000000000ff", APP_SECRET, json!({})), "INVALID_ARGUMENT", "40013"),
        (create(&channel.app_id, "00000000000000000000000000000000", json!({})), "INVALID_ARGUMENT", "40125"),
        (create("wx123", APP_SECRET, json!({})), "INVALID_ARGUMENT", "AppID"),
        (create(&channel.app_id, APP_SECRET, json!({"existingToken": "ab"})), "INVALID_ARGUMENT", "both"),
        (
            create(&channel.app_id, APP_SECRET, json!({"existingToken": "abc", "existingEncodingAesKey": "short"})),
            "INVALID_ARGUMENT",
            "43 characters",
        ),
    ];
    for (input, code, says) in cases {
        let response = app
            .graphql(
                Some(&admin),
                "mutation($input: CreateWechatChannelInput!) { createWechatChannel(input: $input) { token } }",
                json!({"input": input}),
            )
            .await;
        assert_eq!(error_code(&response), code, "{response}");
        assert!(response.to_string().contains(says), "{response}");
    }
    let after = app.graphql(Some(&admin), "{ channels { id } }", json!({})).await["data"]["channels"].clone();
    assert_eq!(before, after);

    // An account configured elsewhere keeps its Token and key (Tencent's
    // sample key has non-zero trailing bits).
    let sample_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    let moved = app
        .graphql(
            Some(&admin),
            "mutation($input: CreateWechatChannelInput!) { createWechatChannel(input: $input) { channel { id } token encodingAesKey } }",
            json!({"input": create(&channel.app_id, APP_SECRET, json!({"existingToken": "spamtest", "existingEncodingAesKey": sample_key}))}),
        )
        .await;
    assert_eq!(moved["data"]["createWechatChannel"]["token"], "spamtest", "{moved}");
    assert_eq!(moved["data"]["createWechatChannel"]["encodingAesKey"], sample_key);

    // Agents cannot connect accounts.
    let agent = app.create_agent_token(&admin, "AGENT").await;
    let refused = app
        .graphql(
            Some(&agent),
            "mutation($input: CreateWechatChannelInput!) { createWechatChannel(input: $input) { token } }",
            json!({"input": create(&channel.app_id, APP_SECRET, json!({}))}),
        )
        .await;
    assert_eq!(error_code(&refused), "PERMISSION_DENIED", "{refused}");
    app.stop().await.unwrap();
}

async fn url_verification_echoes_only_for_the_right_signature(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    let (timestamp, nonce) = (now_seconds().to_string(), "1514711492".to_owned());
    let signature = crypto::signature(&[&channel.token, &timestamp, &nonce]);
    let query = |signature: &str, echostr: &str| {
        vec![
            ("signature", signature.to_owned()),
            ("timestamp", timestamp.clone()),
            ("nonce", nonce.clone()),
            ("echostr", echostr.to_owned()),
        ]
    };
    assert_eq!(
        app.verify_wechat_url(&channel.id, &query(&signature, "5837397520665436492")).await,
        (200, "5837397520665436492".into())
    );
    let wrong = crypto::signature(&["another token", &timestamp, &nonce]);
    assert_eq!(app.verify_wechat_url(&channel.id, &query(&wrong, "5837397520665436492")).await.0, 401);
    assert_eq!(app.verify_wechat_url(&channel.id, &[]).await.0, 401);
    assert_eq!(app.verify_wechat_url(&uuid::Uuid::new_v4().to_string(), &query(&signature, "1")).await.0, 404);

    // Encrypted: `msg_signature` over the ciphertext, the answer decrypted.
    let key = EncodingAesKey::parse(&channel.encoding_aes_key).unwrap();
    let encrypted = crypto::encrypt(&key, &channel.app_id, b"echo-42");
    let mut secure = query(&signature, &encrypted);
    secure.push(("msg_signature", crypto::signature(&[&channel.token, &timestamp, &nonce, &encrypted])));
    assert_eq!(app.verify_wechat_url(&channel.id, &secure).await, (200, "echo-42".into()));
    secure.last_mut().unwrap().1 = crypto::signature(&[&channel.token, &timestamp, &nonce, "other"]);
    assert_eq!(app.verify_wechat_url(&channel.id, &secure).await.0, 401);

    // The verification's signature (in an access log, say) signs no
    // plaintext callback; a verification's own retry still passes.
    let signed = vec![("signature", signature.clone()), ("timestamp", timestamp.clone()), ("nonce", nonce.clone())];
    let forged = text_xml(&channel, "oForged", "7000000000000000099", "forged");
    assert_eq!(app.post_wechat(&channel.id, &signed, forged.into_bytes()).await.0, 401);
    assert!(app.wechat_chat(&admin, "oForged").await.is_none());
    assert_eq!(receipts(&app, &channel).await, 0);
    assert_eq!(app.verify_wechat_url(&channel.id, &query(&signature, "7")).await, (200, "7".into()));
    // Nor is a stale verification answered.
    let stale = (now_seconds() - 3_600).to_string();
    let old = crypto::signature(&[&channel.token, &stale, &nonce]);
    let stale_query =
        vec![("signature", old), ("timestamp", stale), ("nonce", nonce.clone()), ("echostr", "8".to_owned())];
    assert_eq!(app.verify_wechat_url(&channel.id, &stale_query).await.0, 400);
    app.stop().await.unwrap();
}

/// One of each message type WeChat delivers, and the kind and text each
/// becomes.
fn every_type(
    channel: &TestWechatChannel,
    openid: &str,
    base: u64,
) -> Vec<(String, &'static str, Option<&'static str>)> {
    let time = now_seconds();
    let id = |n: u64| (base + n).to_string();
    let to = channel.original_id.as_str();
    vec![
        (
            callback(openid, to, time, "text", &[("Content", "こんにちは"), ("MsgId", &id(1))]),
            "TEXT",
            Some("こんにちは"),
        ),
        (
            callback(
                openid,
                to,
                time,
                "image",
                &[("PicUrl", "http://mmbiz.qpic.cn/x"), ("MediaId", "img-1"), ("MsgId", &id(2))],
            ),
            "IMAGE",
            None,
        ),
        (
            callback(
                openid,
                to,
                time,
                "voice",
                &[("MediaId", "voice-1"), ("Format", "amr"), ("Recognition", "你好"), ("MsgId", &id(3))],
            ),
            "AUDIO",
            Some("你好"),
        ),
        (
            callback(openid, to, time, "video", &[("MediaId", "video-1"), ("ThumbMediaId", "t1"), ("MsgId", &id(4))]),
            "VIDEO",
            None,
        ),
        (
            callback(
                openid,
                to,
                time,
                "shortvideo",
                &[("MediaId", "video-2"), ("ThumbMediaId", "t2"), ("MsgId", &id(5))],
            ),
            "VIDEO",
            None,
        ),
        (
            callback(
                openid,
                to,
                time,
                "location",
                &[
                    ("Location_X", "23.134521"),
                    ("Location_Y", "113.358803"),
                    ("Scale", "20"),
                    ("Label", "广州市"),
                    ("MsgId", &id(6)),
                ],
            ),
            "LOCATION",
            Some("广州市"),
        ),
        (
            callback(
                openid,
                to,
                time,
                "link",
                &[
                    ("Title", "公众平台官网链接"),
                    ("Description", "d"),
                    ("Url", "https://mp.weixin.qq.com"),
                    ("MsgId", &id(7)),
                ],
            ),
            "LINK",
            Some("公众平台官网链接"),
        ),
    ]
}

async fn every_message_type_arrives_once_in_every_mode(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    for (round, mode) in MODES.into_iter().enumerate() {
        let openid = format!("oUser{round}{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
        let subscribe = callback(&openid, &channel.original_id, now_seconds(), "event", &[("Event", "subscribe")]);
        assert_eq!(app.deliver_wechat(&channel, mode, &subscribe).await, (200, "success".into()), "{mode:?}");
        let all = every_type(&channel, &openid, 6_000_000_000_000_000_000 + round as u64 * 100);
        for (xml, _, _) in &all {
            assert_eq!(app.deliver_wechat(&channel, mode, xml).await, (200, "success".into()), "{mode:?} {xml}");
        }
        // WeChat retries when we are slow: the same MsgId adds nothing.
        for (xml, _, _) in &all {
            assert_eq!(app.deliver_wechat(&channel, mode, xml).await.0, 200);
        }
        let chat = app.wechat_chat(&admin, &openid).await.expect("a chat");
        let stored = messages(&app, &admin, chat["id"].as_str().unwrap()).await;
        let kinds: Vec<(&str, Option<&str>)> =
            stored.iter().map(|message| (message["kind"].as_str().unwrap(), message["text"].as_str())).collect();
        let expected: Vec<(&str, Option<&str>)> = all.iter().map(|(_, kind, text)| (*kind, *text)).collect();
        assert_eq!(kinds, expected, "{mode:?}");
        assert!(stored.iter().all(|message| message["direction"] == "INBOUND"));

        let unsubscribe = callback(&openid, &channel.original_id, now_seconds(), "event", &[("Event", "unsubscribe")]);
        assert_eq!(app.deliver_wechat(&channel, mode, &unsubscribe).await.0, 200);
        let chat = app.wechat_chat(&admin, &openid).await.unwrap();
        assert_eq!(chat["endUser"]["unfollowed"], true, "{mode:?}");
        // A menu click is kept as a receipt, and opens nothing.
        let click =
            callback(&openid, &channel.original_id, now_seconds(), "event", &[("Event", "CLICK"), ("EventKey", "V1")]);
        assert_eq!(app.deliver_wechat(&channel, mode, &click).await.0, 200);
    }
    // Per mode: subscribe, 7 messages, unsubscribe, a click.
    assert_eq!(receipts(&app, &channel).await, 3 * 10);
    app.stop().await.unwrap();
}

async fn bad_callbacks_are_refused_and_store_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    let xml = text_xml(&channel, "oBad", "7000000000000000001", "hi");
    let key = EncodingAesKey::parse(&channel.encoding_aes_key).unwrap();
    let other_key = EncodingAesKey::generate();

    // Signatures: 401.
    let (timestamp, nonce) = (now_seconds().to_string(), "n1".to_owned());
    let wrong = vec![
        ("signature", crypto::signature(&["not the token", &timestamp, &nonce])),
        ("timestamp", timestamp.clone()),
        ("nonce", nonce.clone()),
    ];
    assert_eq!(app.post_wechat(&channel.id, &wrong, xml.clone().into_bytes()).await.0, 401);
    assert_eq!(app.post_wechat(&channel.id, &[], xml.clone().into_bytes()).await.0, 401);
    let signed = vec![
        ("signature", crypto::signature(&[&channel.token, &timestamp, &nonce])),
        ("timestamp", timestamp.clone()),
        ("nonce", nonce.clone()),
    ];
    let mut bad_msg_signature = signed.clone();
    bad_msg_signature.push(("encrypt_type", "aes".into()));
    bad_msg_signature.push(("msg_signature", "0".repeat(40)));
    let envelope =
        format!("<xml><Encrypt><![CDATA[{}]]></Encrypt></xml>", crypto::encrypt(&key, &channel.app_id, xml.as_bytes()));
    assert_eq!(app.post_wechat(&channel.id, &bad_msg_signature, envelope.into_bytes()).await.0, 401);

    // Stale, undecryptable, for another AppID, malformed, hostile, or for
    // another account: 400.
    let stale = now_seconds() - 3_600;
    assert_eq!(app.deliver_wechat_with(&channel, Mode::Plaintext, &xml, &key, stale).await.0, 400);
    assert_eq!(app.deliver_wechat_with(&channel, Mode::Secure, &xml, &other_key, now_seconds()).await.0, 400);
    let for_other_app = TestWechatChannel { app_id: "wx0000000000000000".into(), ..channel.clone() };
    assert_eq!(app.deliver_wechat(&for_other_app, Mode::Secure, &xml).await.0, 400);
    for body in [
        "<xml><ToUserName>".to_owned(),
        "not xml at all".to_owned(),
        "<!DOCTYPE xml [<!ENTITY x \"y\">]><xml><Content>&x;</Content></xml>".to_owned(),
        format!("<xml>{}</xml>", "<a>".repeat(20) + &"</a>".repeat(20)),
        "<xml><MsgType>text</MsgType></xml>".to_owned(),
        text_xml(
            &TestWechatChannel { original_id: "gh_another0001".into(), ..channel.clone() },
            "oBad",
            "7000000000000000002",
            "hi",
        ),
    ] {
        let (status, _) = app.deliver_wechat(&channel, Mode::Plaintext, &body).await;
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(receipts(&app, &channel).await, 0);
    assert!(app.wechat_chat(&admin, "oBad").await.is_none());

    // A signature seen once: WeChat's retry of the same body passes, the
    // same signature on another plaintext body is a replay.
    let genuine = text_xml(&channel, "oReplay", "7000000000000000003", "genuine");
    assert_eq!(app.post_wechat(&channel.id, &signed, genuine.clone().into_bytes()).await.0, 200);
    assert_eq!(app.post_wechat(&channel.id, &signed, genuine.into_bytes()).await.0, 200);
    let forged = text_xml(&channel, "oReplay", "7000000000000000004", "forged");
    assert_eq!(app.post_wechat(&channel.id, &signed, forged.into_bytes()).await.0, 401);
    assert_eq!(receipts(&app, &channel).await, 1);

    // A disabled channel answers (so WeChat stops retrying) and stores nothing.
    let before = receipts(&app, &channel).await;
    let disabled = app.set_channel_status(&admin, &channel.id, "DISABLED").await;
    assert_eq!(disabled["data"]["setChannelStatus"]["status"], "DISABLED", "{disabled}");
    assert_eq!(app.deliver_wechat(&channel, Mode::Secure, &xml).await.0, 200);
    assert_eq!(receipts(&app, &channel).await, before);
    app.stop().await.unwrap();
}

async fn a_rotated_key_keeps_the_previous_one_until_confirmed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    let old_key = EncodingAesKey::parse(&channel.encoding_aes_key).unwrap();
    let rotated = app
        .graphql(
            Some(&admin),
            "mutation($id: ID!) { rotateWechatEncodingAesKey(id: $id) { encodingAesKey channel { wechat { previousKeyAccepted } } } }",
            json!({"id": channel.id}),
        )
        .await;
    let rotated = &rotated["data"]["rotateWechatEncodingAesKey"];
    assert_eq!(rotated["channel"]["wechat"]["previousKeyAccepted"], true, "{rotated}");
    let new_key = EncodingAesKey::parse(rotated["encodingAesKey"].as_str().unwrap()).unwrap();
    assert_ne!(new_key.expose_text(), old_key.expose_text());

    let xml = |n: u64| text_xml(&channel, "oRotating", &(8_000_000_000_000_000_000 + n).to_string(), "hi");
    let now = now_seconds();
    assert_eq!(app.deliver_wechat_with(&channel, Mode::Secure, &xml(1), &old_key, now).await.0, 200);
    assert_eq!(app.deliver_wechat_with(&channel, Mode::Secure, &xml(2), &new_key, now).await.0, 200);

    let confirmed = app
        .graphql(
            Some(&admin),
            "mutation($id: ID!) { confirmWechatEncodingAesKey(id: $id) { wechat { previousKeyAccepted } } }",
            json!({"id": channel.id}),
        )
        .await;
    assert_eq!(confirmed["data"]["confirmWechatEncodingAesKey"]["wechat"]["previousKeyAccepted"], false, "{confirmed}");
    assert_eq!(app.deliver_wechat_with(&channel, Mode::Secure, &xml(3), &old_key, now).await.0, 400);
    assert_eq!(app.deliver_wechat_with(&channel, Mode::Secure, &xml(4), &new_key, now).await.0, 200);
    assert_eq!(receipts(&app, &channel).await, 3);
    let again = app
        .graphql(
            Some(&admin),
            "mutation($id: ID!) { confirmWechatEncodingAesKey(id: $id) { id } }",
            json!({"id": channel.id}),
        )
        .await;
    assert_eq!(error_code(&again), "FAILED_PRECONDITION", "{again}");
    app.stop().await.unwrap();
}

async fn answers_follow_the_window_and_the_monthly_allowance(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    let openid = "oWindow0001";
    let chat_id = claimed_chat(&app, &admin, &channel, openid).await;
    let window = app.wechat_chat(&admin, openid).await.unwrap()["sendWindow"].clone();
    assert_eq!(window["state"], "OPEN", "{window}");
    assert_eq!(window["allowanceLimit"], 4);

    // Within the window: as many as the agent likes.
    for n in 0..6 {
        let sent = send(&app, &admin, &chat_id, &format!("answer {n}")).await;
        let id = sent["data"]["sendMessage"]["id"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned();
        assert_eq!(delivered(&app, &admin, &chat_id, &id).await["deliveryState"], "SENT");
    }
    let bodies = app.wechat.sent_to(openid);
    assert_eq!(bodies.len(), 6);
    assert_eq!(bodies[0], json!({"touser": openid, "msgtype": "text", "text": {"content": "answer 0"}}));

    // 49 hours later: four a month, then refused with when it reopens.
    app.clock.advance(chrono::Duration::hours(49));
    let admin = app.login_admin().await;
    let window = app.wechat_chat(&admin, openid).await.unwrap()["sendWindow"].clone();
    assert_eq!(window["state"], "LIMITED", "{window}");

    // A message WeChat refuses gives its place in the allowance back.
    app.wechat.limit_messages(openid);
    let sent = send(&app, &admin, &chat_id, "refused").await;
    let id = sent["data"]["sendMessage"]["id"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned();
    assert_eq!(delivered(&app, &admin, &chat_id, &id).await["deliveryState"], "FAILED");
    let window = app.wechat_chat(&admin, openid).await.unwrap()["sendWindow"].clone();
    assert_eq!(window["allowanceUsed"], 0, "{window}");
    app.wechat.open_window(openid);

    // Eight sends at once race for four places: exactly four are taken.
    let sends = (0..8).map(|n| {
        let (app, admin, chat_id) = (&app, &admin, &chat_id);
        async move { send(app, admin, chat_id, &format!("late {n}")).await }
    });
    let answers = futures::future::join_all(sends).await;
    let accepted = answers.iter().filter(|answer| answer["errors"].is_null()).count();
    assert_eq!(accepted, 4, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|answer| !answer["errors"].is_null())
            .all(|answer| error_code(answer) == "FAILED_PRECONDITION")
    );
    let refused = send(&app, &admin, &chat_id, "one too many").await;
    assert_eq!(error_code(&refused), "FAILED_PRECONDITION", "{refused}");
    let said = refused.to_string();
    assert!(said.contains("48-hour") && said.contains("reopens"), "{said}");
    let window = app.wechat_chat(&admin, openid).await.unwrap()["sendWindow"].clone();
    assert_eq!((window["state"].as_str(), window["allowanceUsed"].as_i64()), (Some("CLOSED"), Some(4)), "{window}");
    eventually(|| async { (app.wechat.sent_to(openid).len() == 10).then_some(()) }).await;

    // The consumer writes again: the window is open again.
    let (status, _) =
        app.deliver_wechat(&channel, Mode::Secure, &text_xml(&channel, openid, "9000000000000000001", "again")).await;
    assert_eq!(status, 200);
    assert_eq!(app.wechat_chat(&admin, openid).await.unwrap()["sendWindow"]["state"], "OPEN");
    assert!(send(&app, &admin, &chat_id, "welcome back").await["errors"].is_null());
    app.stop().await.unwrap();
}

async fn wechats_errors_close_the_window_refresh_the_token_or_fail_the_message(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    let send_and_wait = |chat_id: String, text: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            let sent = send(app, admin, &chat_id, text).await;
            let id = sent["data"]["sendMessage"]["id"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned();
            delivered(app, admin, &chat_id, &id).await
        }
    };

    // The token WeChat stopped accepting is dropped, another fetched, the
    // message sent once.
    let chat_id = claimed_chat(&app, &admin, &channel, "oToken").await;
    app.wechat.expire_tokens(&channel.app_id);
    let issued = app.wechat.tokens_issued(&channel.app_id);
    assert_eq!(send_and_wait(chat_id.clone(), "after expiry").await["deliveryState"], "SENT");
    assert_eq!(app.wechat.tokens_issued(&channel.app_id), issued + 1);
    app.wechat.revoke_tokens(&channel.app_id);
    assert_eq!(send_and_wait(chat_id.clone(), "after revocation").await["deliveryState"], "SENT");
    assert_eq!(app.wechat.sent_to("oToken").len(), 2);

    // Busy: retried, sent once.
    app.wechat.fail_next_send(-1, "system error");
    assert_eq!(send_and_wait(chat_id.clone(), "busy").await["deliveryState"], "SENT");
    assert_eq!(app.wechat.sent_to("oToken").len(), 3);

    // 45015: the window is closed, the message failed with why.
    let closed_chat = claimed_chat(&app, &admin, &channel, "oClosed").await;
    app.wechat.close_window("oClosed");
    let failed = send_and_wait(closed_chat.clone(), "too late").await;
    assert_eq!(failed["deliveryState"], "FAILED", "{failed}");
    assert!(failed["deliveryError"].as_str().unwrap().contains("45015"), "{failed}");
    let window = app.wechat_chat(&admin, "oClosed").await.unwrap()["sendWindow"].clone();
    assert_ne!(window["state"], "OPEN", "{window}");

    // 45047: final for that message.
    let limited_chat = claimed_chat(&app, &admin, &channel, "oLimited").await;
    app.wechat.limit_messages("oLimited");
    let failed = send_and_wait(limited_chat, "one more").await;
    assert_eq!(failed["deliveryState"], "FAILED", "{failed}");
    assert!(failed["deliveryError"].as_str().unwrap().contains("45047"), "{failed}");

    // A lost answer: unconfirmed, not sent again.
    app.wechat.drop_next_send_after_taking_effect();
    let unknown = send_and_wait(chat_id, "lost answer").await;
    assert_eq!(unknown["deliveryState"], "UNCONFIRMED", "{unknown}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.wechat.sent_to("oToken").iter().filter(|body| body["text"]["content"] == "lost answer").count(), 1);
    app.stop().await.unwrap();
}

async fn voice_video_and_images_are_uploaded_then_sent_and_received_media_is_downloaded(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7u8; 2048]].concat();
    app.wechat.add_media("img-in-1", "image/jpeg", jpeg.clone());
    app.wechat.add_video("video-in-1", vec![1u8; 4096]);
    let to = channel.original_id.clone();
    let image = callback(
        "oMedia",
        &to,
        now_seconds(),
        "image",
        &[("PicUrl", "http://x"), ("MediaId", "img-in-1"), ("MsgId", "9100000000000000001")],
    );
    let video = callback(
        "oMedia",
        &to,
        now_seconds(),
        "video",
        &[("MediaId", "video-in-1"), ("ThumbMediaId", "t"), ("MsgId", "9100000000000000002")],
    );
    let missing = callback(
        "oMedia",
        &to,
        now_seconds(),
        "voice",
        &[("MediaId", "gone"), ("Format", "amr"), ("MsgId", "9100000000000000003")],
    );
    for xml in [&image, &video, &missing] {
        assert_eq!(app.deliver_wechat(&channel, Mode::Secure, xml).await.0, 200);
    }
    let chat_id = app.wechat_chat(&admin, "oMedia").await.unwrap()["id"].as_str().unwrap().to_owned();
    let attachments = eventually(|| async {
        let stored = messages(&app, &admin, &chat_id).await;
        let attachments: Vec<Value> = stored.iter().map(|message| message["attachments"][0].clone()).collect();
        attachments.iter().all(|attachment| attachment["status"] != "PENDING").then_some(attachments)
    })
    .await;
    assert_eq!(attachments[0]["status"], "READY", "{attachments:?}");
    assert_eq!(attachments[0]["contentType"], "image/jpeg");
    assert_eq!(attachments[0]["sizeBytes"], jpeg.len());
    assert_eq!((attachments[1]["status"].as_str(), attachments[1]["sizeBytes"].as_u64()), (Some("READY"), Some(4096)));
    assert_eq!(attachments[2]["status"], "FAILED", "{attachments:?}");

    // An agent's image is uploaded as temporary media, then sent by its id.
    let claimed =
        app.graphql(Some(&admin), "mutation($id: ID!) { claimChat(id: $id) { status } }", json!({"id": chat_id})).await;
    assert_eq!(claimed["data"]["claimChat"]["status"], "IN_PROGRESS");
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &[3u8; 1000]].concat();
    let id = app.send_image(&admin, &chat_id, png.clone(), "image/png").await;
    assert_eq!(delivered(&app, &admin, &chat_id, &id).await["deliveryState"], "SENT");
    let sent = app.wechat.sent_to("oMedia");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["msgtype"], "image");
    let uploaded = |media_id: &Value| app.wechat.uploaded(media_id.as_str().unwrap()).expect("uploaded");
    let (kind, content_type, bytes) = uploaded(&sent[0]["image"]["media_id"]);
    assert_eq!((kind.as_str(), content_type.as_str(), &bytes[..]), ("image", "image/png", &png[..]));

    // Voice and video: uploaded as their own media types, the video with
    // its thumbnail.
    let amr = [&b"#!AMR\n"[..], &[0x3C; 600]].concat();
    let voice = app.send_files(&admin, "sendVoice", &chat_id, &[("voice", amr.clone(), "audio/amr")]).await;
    let voice_id = voice["data"]["sendVoice"]["id"].as_str().unwrap_or_else(|| panic!("{voice}")).to_owned();
    assert_eq!(delivered(&app, &admin, &chat_id, &voice_id).await["deliveryState"], "SENT");
    let mp4 = [&[0, 0, 0, 0x18][..], b"ftypmp42", &[0u8; 3000]].concat();
    let thumbnail = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[1u8; 500]].concat();
    let files = [("video", mp4.clone(), "video/mp4"), ("thumbnail", thumbnail.clone(), "image/jpeg")];
    let video = app.send_files(&admin, "sendVideo", &chat_id, &files).await;
    let video_id = video["data"]["sendVideo"]["id"].as_str().unwrap_or_else(|| panic!("{video}")).to_owned();
    assert_eq!(delivered(&app, &admin, &chat_id, &video_id).await["deliveryState"], "SENT");
    let sent = app.wechat.sent_to("oMedia");
    assert_eq!((sent[1]["msgtype"].as_str(), sent[2]["msgtype"].as_str()), (Some("voice"), Some("video")), "{sent:?}");
    let (kind, _, bytes) = uploaded(&sent[1]["voice"]["media_id"]);
    assert_eq!((kind.as_str(), &bytes[..]), ("voice", &amr[..]));
    let (kind, _, bytes) = uploaded(&sent[2]["video"]["media_id"]);
    assert_eq!((kind.as_str(), &bytes[..]), ("video", &mp4[..]));
    let (kind, _, bytes) = uploaded(&sent[2]["video"]["thumb_media_id"]);
    assert_eq!((kind.as_str(), &bytes[..]), ("thumb", &thumbnail[..]));

    // What is not a voice or a video is refused before anything is stored.
    let refused =
        app.send_files(&admin, "sendVoice", &chat_id, &[("voice", b"RIFF....WAVE".to_vec(), "audio/wav")]).await;
    assert_eq!(error_code(&refused), "INVALID_ARGUMENT", "{refused}");

    // LINE cannot carry them.
    let line = app.create_line_channel(&admin, "PUSH", "FREE").await;
    assert_eq!(app.deliver_line(&line, vec![madoguchi_tests::line::text_event("Uvoice", "m1", "hi", "r1")]).await, 200);
    let chats = app
        .graphql(Some(&admin), "query { chats(filter: {customerId: \"Uvoice\"}) { edges { node { id } } } }", json!({}))
        .await;
    let line_chat =
        chats["data"]["chats"]["edges"][0]["node"]["id"].as_str().unwrap_or_else(|| panic!("{chats}")).to_owned();
    app.graphql(Some(&admin), "mutation($id: ID!) { claimChat(id: $id) { status } }", json!({"id": line_chat})).await;
    let refused = app.send_files(&admin, "sendVoice", &line_chat, &[("voice", amr, "audio/amr")]).await;
    assert_eq!(error_code(&refused), "FAILED_PRECONDITION", "{refused}");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgres_refresh_an_expired_token_once() {
    let Some(app) = spawn_app(Backend::Postgres).await else { return };
    let replica = app.spawn_replica().await;
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    let mut chats = Vec::new();
    for n in 0..8 {
        chats.push(claimed_chat(&app, &admin, &channel, &format!("oReplica{n}")).await);
    }
    for round in 0..3 {
        app.wechat.expire_tokens(&channel.app_id);
        let (issued, calls) = (app.wechat.tokens_issued(&channel.app_id), app.wechat.token_calls(&channel.app_id));
        // Half the sends through each server: both servers' workers run jobs.
        let sends = chats.iter().enumerate().map(|(n, chat_id)| {
            let (server, admin) = (if n % 2 == 0 { &app } else { &replica }, &admin);
            async move {
                let sent = send(server, admin, chat_id, &format!("round {round}")).await;
                sent["data"]["sendMessage"]["id"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned()
            }
        });
        let ids = futures::future::join_all(sends).await;
        for (chat_id, id) in chats.iter().zip(&ids) {
            assert_eq!(delivered(&app, &admin, chat_id, id).await["deliveryState"], "SENT");
        }
        // One server asked WeChat, once; the other waited for its token.
        assert_eq!(app.wechat.token_calls(&channel.app_id), calls + 1, "round {round}");
        assert_eq!(app.wechat.tokens_issued(&channel.app_id), issued + 1, "round {round}");
    }
    replica.stop().await.unwrap();
    app.stop().await.unwrap();
}

on_both_backends!(callbacks_signed_and_encrypted_by_wechatpy_are_accepted);

/// The same callbacks, signed and encrypted by wechatpy (PyPI) rather than
/// by our own crypto, in all three modes: each is accepted and stored once.
async fn callbacks_signed_and_encrypted_by_wechatpy_are_accepted(backend: Backend) {
    let Some(python) = madoguchi_tests::wechat::wechatpy() else { return };
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    let openid = "oWechatpy";
    let all = every_type(&channel, openid, 9_200_000_000_000_000_000);
    let xmls: Vec<String> = all.iter().map(|(xml, _, _)| xml.clone()).collect();
    let signed = madoguchi_tests::wechat::sign_with_wechatpy(&python, &channel, now_seconds(), &xmls);
    assert_eq!(signed.len(), 1 + 3 * xmls.len());
    for callback in &signed {
        let query: Vec<(&str, String)> =
            callback.query.iter().map(|(name, value)| (name.as_str(), value.clone())).collect();
        if callback.mode == "verify" {
            let echo = callback.query["echostr"].clone();
            assert_eq!(app.verify_wechat_url(&channel.id, &query).await, (200, echo));
            continue;
        }
        let answer = app.post_wechat(&channel.id, &query, callback.body.clone().into_bytes()).await;
        assert_eq!(answer, (200, "success".to_owned()), "{} {}", callback.mode, callback.body);
    }
    let chat = app.wechat_chat(&admin, openid).await.expect("a chat");
    let stored = messages(&app, &admin, chat["id"].as_str().unwrap()).await;
    let kinds: Vec<&str> = stored.iter().map(|message| message["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, all.iter().map(|(_, kind, _)| *kind).collect::<Vec<_>>());
    assert_eq!(receipts(&app, &channel).await, xmls.len() as u64);

    // A body wechatpy encrypted, with one character of its signature changed.
    let secure = signed.iter().find(|callback| callback.mode == "secure").unwrap();
    let mut query: Vec<(&str, String)> =
        secure.query.iter().map(|(name, value)| (name.as_str(), value.clone())).collect();
    for (name, value) in &mut query {
        if *name == "msg_signature" {
            let flipped = if value.starts_with('0') { "1" } else { "0" };
            value.replace_range(..1, flipped);
        }
    }
    assert_eq!(app.post_wechat(&channel.id, &query, secure.body.clone().into_bytes()).await.0, 401);
    app.stop().await.unwrap();
}

on_both_backends!(an_account_is_updated_and_deleted_as_a_line_one_is);

async fn an_account_is_updated_and_deleted_as_a_line_one_is(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_wechat_channel(&admin).await;
    const UPDATE: &str = "mutation($id: ID!, $input: UpdateWechatChannelInput!) {
        updateWechatChannel(id: $id, input: $input) { name wechat { appSecret } } }";
    let renamed = app.graphql(Some(&admin), UPDATE, json!({"id": channel.id, "input": {"name": "Renamed"}})).await;
    assert_eq!(renamed["data"]["updateWechatChannel"]["name"], "Renamed", "{renamed}");
    let masked = renamed["data"]["updateWechatChannel"]["wechat"]["appSecret"].clone();

    // A secret WeChat refuses changes nothing.
    let calls = app.wechat.token_calls(&channel.app_id);
    let refused =
        app.graphql(Some(&admin), UPDATE, json!({"id": channel.id, "input": {"appSecret": "0".repeat(32)}})).await;
    assert_eq!(error_code(&refused), "INVALID_ARGUMENT", "{refused}");
    assert!(refused.to_string().contains("40125"), "{refused}");
    assert_eq!(app.wechat.token_calls(&channel.app_id), calls + 1);
    let shown = app
        .graphql(
            Some(&admin),
            "query($id: ID!) { channel(id: $id) { wechat { appSecret } } }",
            json!({"id": channel.id}),
        )
        .await;
    assert_eq!(shown["data"]["channel"]["wechat"]["appSecret"], masked);

    // Messages still arrive; after deleting, the URL is gone.
    let xml = text_xml(&channel, "oDeleted", "9300000000000000001", "hi");
    assert_eq!(app.deliver_wechat(&channel, Mode::Secure, &xml).await.0, 200);
    let deleted = app.set_channel_status(&admin, &channel.id, "DELETED").await;
    assert_eq!(deleted["data"]["setChannelStatus"]["status"], "DELETED", "{deleted}");
    assert_eq!(app.deliver_wechat(&channel, Mode::Secure, &xml).await.0, 404);
    let (timestamp, nonce) = (now_seconds().to_string(), "n".to_owned());
    let query = vec![
        ("signature", crypto::signature(&[&channel.token, &timestamp, &nonce])),
        ("timestamp", timestamp),
        ("nonce", nonce),
        ("echostr", "1".to_owned()),
    ];
    assert_eq!(app.verify_wechat_url(&channel.id, &query).await.0, 404);
    let again = app.graphql(Some(&admin), UPDATE, json!({"id": channel.id, "input": {"name": "Back"}})).await;
    assert_eq!(error_code(&again), "FAILED_PRECONDITION", "{again}");
    // The chat stays readable.
    assert!(app.wechat_chat(&admin, "oDeleted").await.is_some());
    app.stop().await.unwrap();
}
