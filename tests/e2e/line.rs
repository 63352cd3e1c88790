//! LINE channels end to end: connecting, every kind of webhook delivery,
//! replies, pushes, media, and a crash between acknowledgement and the
//! follow-up work.

use madoguchi_tests::line::{CHANNEL_SECRET, TestChannel, eventually, follow_event, image_event, text_event};
use madoguchi_tests::{Backend, TestApp, error_code, spawn_app};
use serde_json::{Value, json};

const CHATS: &str = "{ chats { edges { node { id status unreadCount lastMessagePreview endUser { customerId displayName blocked unfollowed } } } } }";

async fn chats(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app.graphql(Some(token), CHATS, json!({})).await;
    response["data"]["chats"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{response}"))
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

async fn messages(app: &TestApp, token: &str, chat_id: &str) -> Vec<Value> {
    let response = app
        .graphql(
            Some(token),
            "query($id: ID!) { chat(id: $id) { messages { id direction kind text deliveryState deliveryMethod deliveryError isPasscode attachments { status contentType sizeBytes } } } }",
            json!({"id": chat_id}),
        )
        .await;
    response["data"]["chat"]["messages"].as_array().unwrap_or_else(|| panic!("{response}")).clone()
}

pub(crate) async fn send(app: &TestApp, token: &str, chat_id: &str, text: &str) -> Value {
    app.graphql(
        Some(token),
        "mutation($id: ID!, $text: String!) { sendMessage(chatId: $id, text: $text) { id deliveryState deliveryMethod } }",
        json!({"id": chat_id, "text": text}),
    )
    .await
}

pub(crate) async fn claim(app: &TestApp, token: &str, chat_id: &str) -> Value {
    app.graphql(Some(token), "mutation($id: ID!) { claimChat(id: $id) { status claimedBy } }", json!({"id": chat_id}))
        .await
}

/// Delivers one text message and returns the chat's id.
async fn first_chat(app: &TestApp, admin: &str, channel: &TestChannel, user: &str, reply_token: &str) -> String {
    assert_eq!(app.deliver_line(channel, vec![text_event(user, "m1", "こんにちは", reply_token)]).await, 200);
    let chats = chats(app, admin).await;
    chats.iter().find(|chat| chat["endUser"]["customerId"] == user).unwrap_or_else(|| panic!("{chats:?}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits for the chat's first attachment to be ready and returns its
/// signed link's path on this server.
async fn first_attachment_path(app: &TestApp, token: &str, chat_id: &str) -> String {
    let url = eventually(|| async {
        let response = app
            .graphql(
                Some(token),
                "query($id: ID!) { chat(id: $id) { messages { attachments { url } } } }",
                json!({"id": chat_id}),
            )
            .await;
        response["data"]["chat"]["messages"][0]["attachments"][0]["url"].as_str().map(str::to_owned)
    })
    .await;
    url.strip_prefix("https://madoguchi.test").expect("a public URL").to_owned()
}

async fn delivery_states(app: &TestApp, token: &str, chat_id: &str) -> Vec<(String, String)> {
    messages(app, token, chat_id)
        .await
        .iter()
        .filter(|m| m["direction"] == "OUTBOUND")
        .map(|m| (m["text"].as_str().unwrap_or_default().to_owned(), m["deliveryState"].as_str().unwrap().to_owned()))
        .collect()
}

on_both_backends!(
    a_line_message_becomes_a_chat_and_the_answer_leaves_on_its_reply_token,
    bad_signatures_bodies_and_channels_get_clear_errors_and_store_nothing,
    a_redelivered_event_is_stored_once,
    replies_wait_unsent_and_leave_joined_on_the_next_token,
    a_reply_whose_answer_was_lost_is_unconfirmed_and_never_sent_again,
    pushes_carry_a_stable_retry_key_and_count_against_the_plan,
    a_quota_reading_that_comes_back_late_never_replaces_a_newer_one,
    auto_mode_replies_when_it_can_and_pushes_otherwise,
    media_is_fetched_once_line_has_prepared_it,
    a_crash_after_acknowledgement_loses_nothing,
    follow_and_unfollow_mark_the_customer,
    connecting_shows_the_setup_and_never_the_secrets,
    wrong_credentials_are_refused_and_nothing_is_stored,
    a_disabled_channel_records_nothing_and_a_deleted_one_is_gone,
    a_file_of_any_type_is_served_as_a_download_never_in_place,
    a_body_without_destination_is_accepted_as_older_platforms_send_it,
);

async fn a_line_message_becomes_a_chat_and_the_answer_leaves_on_its_reply_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    app.line.set_profile(madoguchi_fakes::FakeProfile::new("Ucustomer1", "Hanako"));

    let chat_id = first_chat(&app, &admin, &channel, "Ucustomer1", "reply-1").await;
    let stored = messages(&app, &admin, &chat_id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0]["direction"].as_str(), stored[0]["text"].as_str()), (Some("INBOUND"), Some("こんにちは")));
    let named = eventually(|| async {
        let chats = chats(&app, &admin).await;
        (chats[0]["endUser"]["displayName"] == "Hanako").then_some(chats)
    })
    .await;
    assert_eq!(named[0]["status"], "NEW");
    assert_eq!(named[0]["unreadCount"], 1);

    assert_eq!(claim(&app, &admin, &chat_id).await["data"]["claimChat"]["status"], "IN_PROGRESS");
    let sent = send(&app, &admin, &chat_id, "お問い合わせありがとうございます").await;
    assert_eq!(sent["data"]["sendMessage"]["deliveryMethod"], "REPLY", "{sent}");

    let replied =
        eventually(|| async { Some(app.line.replied("reply-1")).filter(|messages| !messages.is_empty()) }).await;
    assert_eq!(replied, vec![json!({"type": "text", "text": "お問い合わせありがとうございます"})]);
    let states = eventually(|| async {
        let states = delivery_states(&app, &admin, &chat_id).await;
        (states[0].1 == "SENT").then_some(states)
    })
    .await;
    assert_eq!(states.len(), 1);
    let calls = app.line.requests_to("/v2/bot/message/reply");
    assert_eq!(calls.len(), 1, "exactly one reply call");
    assert_eq!(calls[0].header("authorization"), Some(format!("Bearer {}", channel.access_token).as_str()));
}

async fn bad_signatures_bodies_and_channels_get_clear_errors_and_store_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let body = serde_json::to_vec(
        &json!({"destination": channel.bot_user_id, "events": [text_event("Ux", "m1", "hi", "r1")]}),
    )
    .unwrap();
    let sign = |bytes: &[u8]| madoguchi_channels::line::signature::sign(CHANNEL_SECRET.as_bytes(), bytes);

    assert_eq!(app.deliver_line_raw(&channel.id, &body, None).await, 401);
    let wrong = madoguchi_channels::line::signature::sign(b"another secret", &body);
    assert_eq!(app.deliver_line_raw(&channel.id, &body, Some(&wrong)).await, 401);
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert_eq!(app.deliver_line_raw(&channel.id, &tampered, Some(&sign(&body))).await, 401);
    let malformed = b"{\"destination\": \"U1\", \"events\": [{]";
    assert_eq!(app.deliver_line_raw(&channel.id, malformed, Some(&sign(malformed))).await, 400);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(app.deliver_line_raw(&unknown, &body, Some(&sign(&body))).await, 404);
    assert_eq!(app.deliver_line_raw("not-a-channel", &body, Some(&sign(&body))).await, 404);
    let too_big = vec![b' '; madoguchi_webhooks::MAX_WEBHOOK_BYTES + 1];
    assert_eq!(app.deliver_line_raw(&channel.id, &too_big, Some(&sign(&too_big))).await, 413);
    assert!(chats(&app, &admin).await.is_empty(), "nothing was stored");

    // LINE's connection check: an empty list of events.
    let check = serde_json::to_vec(&json!({"destination": channel.bot_user_id, "events": []})).unwrap();
    assert_eq!(app.deliver_line_raw(&channel.id, &check, Some(&sign(&check))).await, 200);
    // An unknown event type is kept, never a 5xx.
    let unknown_event = json!({"type": "somethingNew", "timestamp": 1, "webhookEventId": "01NEW", "source": {"type": "user", "userId": "Ux"}, "mode": "active"});
    assert_eq!(app.deliver_line(&channel, vec![unknown_event]).await, 200);
}

async fn a_redelivered_event_is_stored_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let event = text_event("Uonce", "m1", "only once", "r1");
    let mut redelivered = event.clone();
    redelivered["deliveryContext"]["isRedelivery"] = json!(true);
    for body in [vec![event.clone()], vec![redelivered], vec![event]] {
        assert_eq!(app.deliver_line(&channel, body).await, 200);
    }
    let chats = chats(&app, &admin).await;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["unreadCount"], 1);
    assert_eq!(messages(&app, &admin, chats[0]["id"].as_str().unwrap()).await.len(), 1);
}

async fn replies_wait_unsent_and_leave_joined_on_the_next_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let chat_id = first_chat(&app, &admin, &channel, "Uwait", "reply-1").await;
    claim(&app, &admin, &chat_id).await;

    send(&app, &admin, &chat_id, "first").await;
    eventually(|| async { Some(()).filter(|_| !app.line.replied("reply-1").is_empty()) }).await;
    send(&app, &admin, &chat_id, "second").await;
    send(&app, &admin, &chat_id, "third").await;
    let waiting = eventually(|| async {
        let states = delivery_states(&app, &admin, &chat_id).await;
        (states.iter().filter(|(_, state)| state == "UNSENT").count() == 2).then_some(states)
    })
    .await;
    assert_eq!(waiting[0], ("first".to_owned(), "SENT".to_owned()));

    // The customer writes again: the waiting texts leave on the new token, joined.
    assert_eq!(app.deliver_line(&channel, vec![text_event("Uwait", "m2", "still there?", "reply-2")]).await, 200);
    let replied =
        eventually(|| async { Some(app.line.replied("reply-2")).filter(|messages| !messages.is_empty()) }).await;
    assert_eq!(replied, vec![json!({"type": "text", "text": "second\nthird"})]);
    eventually(|| async {
        let states = delivery_states(&app, &admin, &chat_id).await;
        states.iter().all(|(_, state)| state == "SENT").then_some(())
    })
    .await;
    assert!(app.line.requests_to("/v2/bot/message/push").is_empty(), "reply mode never pushes");
}

async fn a_reply_whose_answer_was_lost_is_unconfirmed_and_never_sent_again(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let chat_id = first_chat(&app, &admin, &channel, "Ulost", "reply-1").await;
    claim(&app, &admin, &chat_id).await;

    // LINE takes the reply, but its answer never arrives (a 500 after the fact).
    app.line.fail_next_after_taking_effect("/v2/bot/message/reply", 500);
    send(&app, &admin, &chat_id, "did this arrive?").await;
    let states = eventually(|| async {
        let states = delivery_states(&app, &admin, &chat_id).await;
        states.iter().any(|(_, state)| state == "UNCONFIRMED").then_some(states)
    })
    .await;
    assert_eq!(states, vec![("did this arrive?".to_owned(), "UNCONFIRMED".to_owned())]);
    let shown = messages(&app, &admin, &chat_id).await;
    let outbound = shown.iter().find(|m| m["direction"] == "OUTBOUND").unwrap();
    assert!(outbound["deliveryError"].as_str().unwrap_or_default().contains("may or may not have reached"));
    assert_eq!(app.line.replied("reply-1").len(), 1, "LINE got it once");

    // A new token does not send it blindly again; a new answer does leave.
    assert_eq!(app.deliver_line(&channel, vec![text_event("Ulost", "m2", "yes it did", "reply-2")]).await, 200);
    send(&app, &admin, &chat_id, "good").await;
    let replied =
        eventually(|| async { Some(app.line.replied("reply-2")).filter(|messages| !messages.is_empty()) }).await;
    assert_eq!(replied, vec![json!({"type": "text", "text": "good"})]);
    assert_eq!(app.line.requests_to("/v2/bot/message/reply").len(), 2);
}

/// The channel's push usage this month, as the console shows it.
async fn push_usage(app: &TestApp, admin: &str, channel: &TestChannel) -> Value {
    let usage = app
        .graphql(
            Some(admin),
            "query($id: ID!) { channel(id: $id) { pushUsage { pushed limit month reconciledTotal } } }",
            json!({"id": channel.id}),
        )
        .await;
    usage["data"]["channel"]["pushUsage"].clone()
}

async fn pushes_carry_a_stable_retry_key_and_count_against_the_plan(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "PUSH", "FREE").await;
    let chat_id = first_chat(&app, &admin, &channel, "Upush", "reply-1").await;
    claim(&app, &admin, &chat_id).await;

    // LINE fails once with a 500: the retry carries the same retry key.
    app.line.fail_next("/v2/bot/message/push", 500, json!({"message": "An error occurred"}), None);
    let sent = send(&app, &admin, &chat_id, "pushed").await;
    assert_eq!(sent["data"]["sendMessage"]["deliveryMethod"], "PUSH", "{sent}");
    eventually(|| async { Some(()).filter(|_| app.line.pushed_to("Upush").len() == 1) }).await;
    let calls = app.line.requests_to("/v2/bot/message/push");
    assert_eq!(calls.len(), 2, "one failure, one success");
    let keys: Vec<_> = calls.iter().map(|call| call.header("x-line-retry-key").unwrap().to_owned()).collect();
    assert_eq!(keys[0], keys[1], "the retry key is chosen once");
    eventually(|| async { (delivery_states(&app, &admin, &chat_id).await[0].1 == "SENT").then_some(()) }).await;

    let usage = push_usage(&app, &admin, &channel).await;
    assert_eq!(usage["pushed"], 1, "{usage}");
    assert_eq!(usage["limit"], 200);
    let reconciled =
        eventually(|| async { push_usage(&app, &admin, &channel).await["reconciledTotal"].as_i64() }).await;
    assert_eq!(reconciled, 1, "LINE's own count, read after the push");
    let now = app
        .graphql(
            Some(&admin),
            "mutation($id: ID!) { reconcilePushUsage(channelId: $id) { reconciledTotal pushed } }",
            json!({"id": channel.id}),
        )
        .await;
    assert_eq!(now["data"]["reconcilePushUsage"], json!({"reconciledTotal": 1, "pushed": 1}), "{now}");

    // The free plan's 200 are used up: the next push is refused before it is sent.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    madoguchi_entity::push_usage::Entity::update_many()
        .col_expr(madoguchi_entity::push_usage::Column::Pushed, Expr::value(200))
        .filter(madoguchi_entity::push_usage::Column::ChannelId.eq(uuid::Uuid::parse_str(&channel.id).unwrap()))
        .exec(app.core.db())
        .await
        .unwrap();
    let refused = send(&app, &admin, &chat_id, "one too many").await;
    assert_eq!(error_code(&refused), "RESOURCE_EXHAUSTED");
    assert_eq!(delivery_states(&app, &admin, &chat_id).await.len(), 1, "the refused message was not stored");

    // A 4xx from LINE is final, and LINE's message reaches the agent.
    madoguchi_entity::push_usage::Entity::update_many()
        .col_expr(madoguchi_entity::push_usage::Column::Pushed, Expr::value(5))
        .exec(app.core.db())
        .await
        .unwrap();
    app.line.fail_next("/v2/bot/message/push", 400, json!({"message": "The request body has 1 error(s)", "details": [{"message": "May not be empty", "property": "messages[0].text"}]}), None);
    send(&app, &admin, &chat_id, "refused by LINE").await;
    let failed = eventually(|| async {
        let all = messages(&app, &admin, &chat_id).await;
        all.into_iter().find(|m| m["text"] == "refused by LINE" && m["deliveryState"] == "FAILED")
    })
    .await;
    assert!(failed["deliveryError"].as_str().unwrap().contains("The request body has 1 error(s)"), "{failed}");
    // The push LINE refused is given back to the month's allowance.
    let usage = push_usage(&app, &admin, &channel).await;
    assert_eq!(usage["pushed"], 5, "{usage}");
}

/// LINE's count of the month is asked for, and its answer is slow; a push
/// and a second reading come and go meanwhile. The late answer, older than
/// the second, must not replace it (a stalled worker is the same case).
async fn a_quota_reading_that_comes_back_late_never_replaces_a_newer_one(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "PUSH", "FREE").await;
    let chat_id = first_chat(&app, &admin, &channel, "Ulate", "reply-1").await;
    claim(&app, &admin, &chat_id).await;
    let consumption = "/v2/bot/message/quota/consumption";
    let reconcile = || {
        app.graphql(
            Some(&admin),
            "mutation($id: ID!) { reconcilePushUsage(channelId: $id) { reconciledTotal } }",
            json!({"id": channel.id}),
        )
    };

    app.line.delay_next(consumption, std::time::Duration::from_secs(3));
    let slow = reconcile();
    let meanwhile = async {
        // LINE has the slow call (and answers it with 0) before the push.
        eventually(|| async { Some(()).filter(|_| !app.line.requests_to(consumption).is_empty()) }).await;
        send(&app, &admin, &chat_id, "pushed meanwhile").await;
        eventually(|| async { Some(()).filter(|_| app.line.pushed_to("Ulate").len() == 1) }).await;
        let newer = reconcile().await;
        assert_eq!(newer["data"]["reconcilePushUsage"]["reconciledTotal"], 1, "{newer}");
    };
    let (slow, ()) = tokio::join!(slow, meanwhile);
    assert!(slow["errors"].is_null(), "{slow}");
    assert_eq!(push_usage(&app, &admin, &channel).await["reconciledTotal"], 1, "the newer reading stands");
}

async fn auto_mode_replies_when_it_can_and_pushes_otherwise(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "AUTO", "LIGHT").await;
    let chat_id = first_chat(&app, &admin, &channel, "Uauto", "reply-1").await;
    claim(&app, &admin, &chat_id).await;

    let first = send(&app, &admin, &chat_id, "while the token is fresh").await;
    assert_eq!(first["data"]["sendMessage"]["deliveryMethod"], "REPLY", "{first}");
    eventually(|| async { Some(()).filter(|_| !app.line.replied("reply-1").is_empty()) }).await;
    let second = send(&app, &admin, &chat_id, "after the token was used").await;
    assert_eq!(second["data"]["sendMessage"]["deliveryMethod"], "PUSH", "{second}");
    eventually(|| async { Some(()).filter(|_| app.line.pushed_to("Uauto").len() == 1) }).await;

    // A fresh token left unused past the reply window (by the server's
    // clock) is not trusted: the answer is pushed.
    assert_eq!(app.deliver_line(&channel, vec![text_event("Uauto", "m2", "again", "reply-2")]).await, 200);
    app.clock.advance(chrono::Duration::seconds(app.settings.line.reply_window_seconds + 1));
    let late = send(&app, &admin, &chat_id, "after the window").await;
    assert_eq!(late["data"]["sendMessage"]["deliveryMethod"], "PUSH", "{late}");
    eventually(|| async { Some(()).filter(|_| app.line.pushed_to("Uauto").len() == 2) }).await;
    assert!(app.line.replied("reply-2").is_empty());
}

async fn media_is_fetched_once_line_has_prepared_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7u8; 2048]].concat();
    app.line.set_content("img1", jpeg.clone(), "image/jpeg", 2);
    let oversized = vec![0u8; 10 * 1024 * 1024 + 1];
    app.line.set_content("img2", oversized, "image/jpeg", 0);
    assert_eq!(
        app.deliver_line(&channel, vec![image_event("Umedia", "img1", "r1"), image_event("Umedia", "img2", "r2")])
            .await,
        200
    );
    let chat_id = chats(&app, &admin).await[0]["id"].as_str().unwrap().to_owned();

    let attachments = eventually(|| async {
        let all = messages(&app, &admin, &chat_id).await;
        let statuses: Vec<_> = all.iter().map(|m| m["attachments"][0].clone()).collect();
        statuses.iter().all(|a| a["status"] != "PENDING").then_some(statuses)
    })
    .await;
    assert_eq!(attachments[0]["status"], "READY");
    assert_eq!(attachments[0]["sizeBytes"], jpeg.len());
    assert_eq!(attachments[0]["contentType"], "image/jpeg");
    assert_eq!(attachments[1]["status"], "FAILED", "over SPEC.md's 10 MB image limit");
    assert!(app.line.requests_to("/v2/bot/message/img1/content").len() >= 3, "asked again while not ready");
}

async fn a_crash_after_acknowledgement_loses_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    // LINE is slow to prepare the image and the profile endpoint is down, so
    // the follow-up work is still queued when the process dies.
    app.line.set_content("img-crash", [&[0xFF, 0xD8, 0xFF, 0xE0][..], b"jpeg"].concat(), "image/jpeg", 3);
    for _ in 0..2 {
        app.line.fail_next("/v2/bot/profile", 503, json!({"message": "down"}), Some(1));
    }
    app.line.set_profile(madoguchi_fakes::FakeProfile::new("Ucrash", "Taro"));
    assert_eq!(app.deliver_line(&channel, vec![image_event("Ucrash", "img-crash", "r1")]).await, 200);
    let leftovers = app.crash().await;

    let app = leftovers.restart().await;
    let admin = app.login_admin().await;
    let chat = eventually(|| async {
        let chats = chats(&app, &admin).await;
        chats.into_iter().find(|chat| chat["endUser"]["displayName"] == "Taro")
    })
    .await;
    let chat_id = chat["id"].as_str().unwrap();
    let ready = eventually(|| async {
        let all = messages(&app, &admin, chat_id).await;
        (all[0]["attachments"][0]["status"] == "READY").then_some(all)
    })
    .await;
    assert_eq!(ready.len(), 1, "the message is there exactly once");
    assert_eq!(app.deliver_line(&channel, vec![image_event("Ucrash", "img-crash", "r1")]).await, 200);
    assert_eq!(messages(&app, &admin, chat_id).await.len(), 1, "LINE's redelivery after the crash adds nothing");
}

async fn follow_and_unfollow_mark_the_customer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let chat_id = first_chat(&app, &admin, &channel, "Ufollow", "r1").await;
    assert_eq!(app.deliver_line(&channel, vec![follow_event("Ufollow", "01UNFOLLOW", false)]).await, 200);
    assert_eq!(chats(&app, &admin).await[0]["endUser"]["unfollowed"], true);
    claim(&app, &admin, &chat_id).await;
    let refused = send(&app, &admin, &chat_id, "are you there?").await;
    assert_eq!(error_code(&refused), "FAILED_PRECONDITION");
    assert_eq!(app.deliver_line(&channel, vec![follow_event("Ufollow", "01FOLLOW", true)]).await, 200);
    assert_eq!(chats(&app, &admin).await[0]["endUser"]["unfollowed"], false);
}

async fn connecting_shows_the_setup_and_never_the_secrets(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "STANDARD").await;
    let response = app
        .graphql(
            Some(&admin),
            "query($id: ID!) { channel(id: $id) { webhookUrl status line { channelSecret accessToken basicId friendLink friendQrSvg friendQrPng addFriendButtonHtml setupSteps plan } pushUsage { limit } } }",
            json!({"id": channel.id}),
        )
        .await;
    let found = &response["data"]["channel"];
    assert_eq!(found["webhookUrl"], format!("https://madoguchi.test/webhooks/line/{}", channel.id), "{response}");
    let text = response.to_string();
    assert!(!text.contains(CHANNEL_SECRET) && !text.contains(&channel.access_token), "secrets never come back");
    assert_eq!(found["line"]["channelSecret"], "••••••••cdef");
    let basic = found["line"]["basicId"].as_str().unwrap();
    assert_eq!(found["line"]["friendLink"], format!("https://line.me/R/ti/p/%40{}", &basic[1..]));
    assert!(found["line"]["friendQrSvg"].as_str().unwrap().contains("<svg"));
    assert!(found["line"]["friendQrPng"].as_str().unwrap().starts_with("data:image/png;base64,"));
    assert!(found["line"]["addFriendButtonHtml"].as_str().unwrap().contains("line.me/R/ti/p"));
    assert!(found["line"]["setupSteps"].as_array().unwrap().len() >= 3);
    assert_eq!(found["pushUsage"]["limit"], 30_000);

    // At rest the secrets are sealed, not stored as text.
    use sea_orm::EntityTrait;
    let row = madoguchi_entity::channels::Entity::find_by_id(uuid::Uuid::parse_str(&channel.id).unwrap())
        .one(app.core.db())
        .await
        .unwrap()
        .unwrap();
    let sealed = row.line_channel_secret.unwrap();
    assert!(!sealed.windows(8).any(|window| window == &CHANNEL_SECRET.as_bytes()[..8]));
}

async fn wrong_credentials_are_refused_and_nothing_is_stored(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let department =
        app.graphql(Some(&admin), "mutation { createDepartment(name: \"Support\") { id } }", json!({})).await;
    let department_id = department["data"]["createDepartment"]["id"].clone();
    let create = |secret: &str, token: &str| json!({"input": {"name": "x", "channelId": "1234567890", "channelSecret": secret, "channelAccessToken": token, "departmentId": department_id, "mode": "REPLY", "plan": "FREE"}});
    let mutation = "mutation($input: CreateLineChannelInput!) { createLineChannel(input: $input) { id } }";
    let unknown_token = app.graphql(Some(&admin), mutation, create(CHANNEL_SECRET, "not-a-token-line-knows")).await;
    assert_eq!(error_code(&unknown_token), "INVALID_ARGUMENT");
    assert!(unknown_token["errors"][0]["message"].as_str().unwrap().contains("LINE rejected"));
    let bad_secret = app.graphql(Some(&admin), mutation, create("short", "whatever")).await;
    assert_eq!(error_code(&bad_secret), "INVALID_ARGUMENT");
    let channels = app.graphql(Some(&admin), "{ channels { id } }", json!({})).await;
    assert_eq!(channels["data"]["channels"], json!([]));
}

async fn a_disabled_channel_records_nothing_and_a_deleted_one_is_gone(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let set_status = |status: &'static str| app.set_channel_status(&admin, &channel.id, status);
    assert_eq!(set_status("DISABLED").await["data"]["setChannelStatus"]["status"], "DISABLED");
    assert_eq!(app.deliver_line(&channel, vec![text_event("Uoff", "m1", "hello?", "r1")]).await, 200);
    assert!(chats(&app, &admin).await.is_empty(), "a disabled channel records nothing");

    set_status("ACTIVE").await;
    let chat_id = first_chat(&app, &admin, &channel, "Uon", "r2").await;
    assert_eq!(set_status("DELETED").await["data"]["setChannelStatus"]["status"], "DELETED");
    assert_eq!(app.deliver_line(&channel, vec![text_event("Uon", "m3", "gone?", "r3")]).await, 404);
    assert_eq!(messages(&app, &admin, &chat_id).await.len(), 1, "chats stay readable");
    let claimed = claim(&app, &admin, &chat_id).await;
    assert_eq!(error_code(&claimed), "FAILED_PRECONDITION");
    assert_eq!(error_code(&set_status("ACTIVE").await), "FAILED_PRECONDITION", "deleting is final");
}

on_both_backends!(an_image_is_sent_from_our_media_url_and_media_downloads_need_the_signed_link);

async fn an_image_is_sent_from_our_media_url_and_media_downloads_need_the_signed_link(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let inbound_jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], b"customer photo"].concat();
    app.line.set_content("photo1", inbound_jpeg.clone(), "image/jpeg", 0);
    assert_eq!(app.deliver_line(&channel, vec![image_event("Uimage", "photo1", "reply-1")]).await, 200);
    let chat_id = chats(&app, &admin).await[0]["id"].as_str().unwrap().to_owned();

    // The agent downloads the customer's photo through a signed link.
    let path = first_attachment_path(&app, &admin, &chat_id).await;
    let path = path.as_str();
    let downloaded = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert_eq!(downloaded.headers()["content-type"], "image/jpeg");
    assert_eq!(downloaded.headers()["content-disposition"], "inline");
    assert_eq!(downloaded.headers()["x-content-type-options"], "nosniff");
    assert_eq!(downloaded.bytes().await.unwrap().as_ref(), inbound_jpeg.as_slice());
    let mut forged = path.to_owned();
    forged.replace_range(forged.len() - 3.., "AAA");
    assert_eq!(app.client.get(app.url(&forged)).send().await.unwrap().status(), 404);

    // The agent answers with an image: LINE gets our expiring URL.
    claim(&app, &admin, &chat_id).await;
    let png = [&b"\x89PNG\r\n\x1a\n"[..], b"agent picture"].concat();
    let operations = json!({"query": "mutation($id: ID!, $image: Upload!) { sendImage(chatId: $id, image: $image) { kind deliveryMethod } }", "variables": {"id": chat_id, "image": null}});
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.image"]}).to_string())
        .part("0", reqwest::multipart::Part::bytes(png.clone()).file_name("answer.png").mime_str("image/png").unwrap());
    let sent: Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["data"]["sendImage"], json!({"kind": "IMAGE", "deliveryMethod": "REPLY"}), "{sent}");
    let replied =
        eventually(|| async { Some(app.line.replied("reply-1")).filter(|messages| !messages.is_empty()) }).await;
    assert_eq!(replied[0]["type"], "image");
    let original = replied[0]["originalContentUrl"].as_str().unwrap();
    let served =
        app.client.get(app.url(original.strip_prefix("https://madoguchi.test").unwrap())).send().await.unwrap();
    assert_eq!(served.bytes().await.unwrap().as_ref(), png.as_slice());

    let not_an_image = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.image"]}).to_string())
        .part("0", reqwest::multipart::Part::bytes(b"GIF89a...".to_vec()).file_name("x.gif"));
    let refused: Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .multipart(not_an_image)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&refused), "INVALID_ARGUMENT");
}

async fn a_file_of_any_type_is_served_as_a_download_never_in_place(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let html = b"<html><script>fetch('/graphql')</script></html>".to_vec();
    app.line.set_content("file1", html.clone(), "text/html", 0);
    let event = json!({
        "type": "message", "mode": "active", "timestamp": 1_790_000_000_000i64,
        "webhookEventId": "01EVENTfile1", "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": "Ufile"}, "replyToken": "r-file",
        "message": {"id": "file1", "type": "file", "fileName": "請求書 <1>.html", "fileSize": html.len()}
    });
    assert_eq!(app.deliver_line(&channel, vec![event]).await, 200);
    let chat_id = chats(&app, &admin).await[0]["id"].as_str().unwrap().to_owned();
    let path = first_attachment_path(&app, &admin, &chat_id).await;
    let path = path.as_str();
    let downloaded = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    let headers = downloaded.headers().clone();
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\""), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8%20%3C1%3E.html"), "{disposition}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "default-src 'none'; sandbox");
    assert_eq!(downloaded.bytes().await.unwrap().as_ref(), html.as_slice());
}

async fn a_body_without_destination_is_accepted_as_older_platforms_send_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let body =
        serde_json::to_vec(&json!({"events": [text_event("Uold", "m-old", "from an old platform", "r-old")]})).unwrap();
    let signature = madoguchi_channels::line::signature::sign(CHANNEL_SECRET.as_bytes(), &body);
    assert_eq!(app.deliver_line_raw(&channel.id, &body, Some(&signature)).await, 200);
    let chats = chats(&app, &admin).await;
    assert_eq!(chats.len(), 1, "{chats:?}");
    assert_eq!(chats[0]["lastMessagePreview"], "from an old platform");
    // A destination that is not a string is still malformed.
    let body = br#"{"destination": 7, "events": []}"#;
    let signature = madoguchi_channels::line::signature::sign(CHANNEL_SECRET.as_bytes(), body);
    assert_eq!(app.deliver_line_raw(&channel.id, body, Some(&signature)).await, 400);
}

/// A server keeps the channels webhooks arrive for a moment; a channel
/// disabled through another server sharing the PostgreSQL database stops
/// recording on this one within that moment, not when this one restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_disabled_on_another_replica_stops_recording_here_too() {
    let Some(app) = spawn_app(Backend::Postgres).await else { return };
    let replica = app.spawn_replica().await;
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    // The replica reads (and keeps) the channel as it takes this one.
    first_chat(&replica, &admin, &channel, "Ubefore", "r-before").await;
    let disabled = app.set_channel_status(&admin, &channel.id, "DISABLED").await;
    assert_eq!(disabled["data"]["setChannelStatus"]["status"], "DISABLED", "{disabled}");
    let started = std::time::Instant::now();
    let mut sent = 0;
    // Each try is a new customer: recorded while the replica still holds the
    // channel as it was, ignored once it reads it again.
    eventually(|| {
        sent += 1;
        let user = format!("Uafter{sent}");
        let event = text_event(&user, &format!("after-{sent}"), "still there?", &format!("r-after-{sent}"));
        let (replica, channel, admin) = (&replica, &channel, &admin);
        async move {
            let before = chats(replica, admin).await.len();
            assert_eq!(replica.deliver_line(channel, vec![event]).await, 200);
            (chats(replica, admin).await.len() == before).then_some(())
        }
    })
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    replica.stop().await.unwrap();
    app.stop().await.unwrap();
}
