//! Helpers for LINE tests: connecting a channel through the API against the
//! fake LINE, and delivering signed webhook events.

use madoguchi_fakes::FakeBotInfo;
use serde_json::{Value, json};

use crate::TestApp;

/// The channel secret every test channel uses.
pub const CHANNEL_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A LINE channel connected in a test.
#[derive(Debug, Clone)]
pub struct TestChannel {
    pub id: String,
    pub access_token: String,
    pub bot_user_id: String,
}

/// Returns a text message event from `user`, with a reply token and a
/// webhook event id.
pub fn text_event(user: &str, message_id: &str, text: &str, reply_token: &str) -> Value {
    json!({
        "type": "message",
        "mode": "active",
        "timestamp": 1_790_000_000_000i64,
        "webhookEventId": format!("01EVENT{message_id}"),
        "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": user},
        "replyToken": reply_token,
        "message": {"id": message_id, "type": "text", "quoteToken": "q", "text": text}
    })
}

/// Returns an image message event (content from LINE).
pub fn image_event(user: &str, message_id: &str, reply_token: &str) -> Value {
    json!({
        "type": "message",
        "mode": "active",
        "timestamp": 1_790_000_000_000i64,
        "webhookEventId": format!("01EVENT{message_id}"),
        "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": user},
        "replyToken": reply_token,
        "message": {"id": message_id, "type": "image", "quoteToken": "q", "contentProvider": {"type": "line"}}
    })
}

/// Returns a follow or unfollow event.
pub fn follow_event(user: &str, event_id: &str, follow: bool) -> Value {
    let mut event = json!({
        "type": if follow { "follow" } else { "unfollow" },
        "mode": "active",
        "timestamp": 1_790_000_000_000i64,
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": user},
    });
    if follow {
        event["replyToken"] = json!(format!("follow-{event_id}"));
        event["follow"] = json!({"isUnblocked": false});
    }
    event
}

impl TestApp {
    /// Connects a LINE channel through GraphQL (as `token`'s agent) in a new
    /// department, with the fake LINE knowing its access token.
    pub async fn create_line_channel(&self, token: &str, mode: &str, plan: &str) -> TestChannel {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let access_token = format!("access-{suffix}");
        let bot_user_id = format!("U{}", &suffix[..32]);
        self.line.add_channel(&access_token, FakeBotInfo::new(&bot_user_id, "Acme Support"));
        let department = self
            .graphql(
                Some(token),
                "mutation($name: String!) { createDepartment(name: $name) { id } }",
                json!({"name": format!("Dept {suffix}")}),
            )
            .await;
        let department_id =
            department["data"]["createDepartment"]["id"].as_str().unwrap_or_else(|| panic!("{department}")).to_owned();
        let created = self
            .graphql(
                Some(token),
                "mutation($input: CreateLineChannelInput!) { createLineChannel(input: $input) { id webhookUrl } }",
                json!({"input": {
                    "name": "Acme on LINE", "channelId": "1234567890", "channelSecret": CHANNEL_SECRET,
                    "channelAccessToken": access_token, "departmentId": department_id, "mode": mode, "plan": plan
                }}),
            )
            .await;
        let id = created["data"]["createLineChannel"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
        TestChannel { id, access_token, bot_user_id }
    }

    /// Posts a webhook body signed with the channel secret; returns the status.
    pub async fn deliver_line(&self, channel: &TestChannel, events: Vec<Value>) -> u16 {
        for event in &events {
            if let Some(token) = event["replyToken"].as_str() {
                self.line.issue_reply_token(token);
            }
        }
        let body = serde_json::to_vec(&json!({"destination": channel.bot_user_id, "events": events})).unwrap();
        let signature = madoguchi_channels::line::signature::sign(CHANNEL_SECRET.as_bytes(), &body);
        self.deliver_line_raw(&channel.id, &body, Some(&signature)).await
    }

    /// Posts raw bytes to a channel's webhook with an optional signature.
    pub async fn deliver_line_raw(&self, channel_id: &str, body: &[u8], signature: Option<&str>) -> u16 {
        let mut request = self
            .client
            .post(self.url(&format!("/webhooks/line/{channel_id}")))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-line-signature", signature);
        }
        request.send().await.expect("webhook request").status().as_u16()
    }
}

/// Polls `check` until it returns `Some`, for at most 30 seconds (generous:
/// only a failing test waits that long, and CI machines are busy).
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
