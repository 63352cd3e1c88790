//! Helpers for WeChat tests: connecting a channel through the API against
//! the fake WeChat, the callback XML of every message type, and delivering
//! callbacks signed (and encrypted) in each of WeChat's three modes.

use madoguchi_channels::wechat::crypto::{self, EncodingAesKey};
use serde_json::{Value, json};

use crate::TestApp;

/// The AppSecret every test account uses.
pub const APP_SECRET: &str = "fedcba9876543210fedcba9876543210";

/// A WeChat channel connected in a test, with the secrets WeChat's console
/// would hold.
#[derive(Debug, Clone)]
pub struct TestWechatChannel {
    pub id: String,
    pub app_id: String,
    pub original_id: String,
    pub token: String,
    pub encoding_aes_key: String,
    pub department_id: String,
}

/// How WeChat delivers to the account's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The XML as it is, signed.
    Plaintext,
    /// Both the plaintext fields and `Encrypt` in the body.
    Compatible,
    /// Only `Encrypt`.
    Secure,
}

pub const MODES: [Mode; 3] = [Mode::Plaintext, Mode::Compatible, Mode::Secure];

/// A callback's XML: `fields` after the common four, in order.
pub fn callback(from: &str, to: &str, create_time: i64, msg_type: &str, fields: &[(&str, &str)]) -> String {
    let mut xml = format!(
        "<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName>\
         <CreateTime>{create_time}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
    );
    for (name, value) in fields {
        xml.push_str(&format!("<{name}><![CDATA[{value}]]></{name}>"));
    }
    xml.push_str("</xml>");
    xml
}

/// A text message.
pub fn text_xml(channel: &TestWechatChannel, from: &str, msg_id: &str, content: &str) -> String {
    callback(from, &channel.original_id, now_seconds(), "text", &[("Content", content), ("MsgId", msg_id)])
}

/// The number of seconds since the epoch, as WeChat stamps callbacks.
pub fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

impl TestApp {
    /// Connects a WeChat channel through GraphQL (as `token`'s agent) in a
    /// new department, with the fake WeChat knowing its app.
    pub async fn create_wechat_channel(&self, token: &str) -> TestWechatChannel {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let app_id = format!("wx{}", &suffix[..16]);
        let original_id = format!("gh_{}", &suffix[16..28]);
        self.wechat.add_app(&app_id, APP_SECRET);
        let department = self
            .graphql(
                Some(token),
                "mutation($name: String!) { createDepartment(name: $name) { id } }",
                json!({"name": format!("WeChat {suffix}")}),
            )
            .await;
        let department_id =
            department["data"]["createDepartment"]["id"].as_str().unwrap_or_else(|| panic!("{department}")).to_owned();
        let created = self
            .graphql(
                Some(token),
                "mutation($input: CreateWechatChannelInput!) { createWechatChannel(input: $input) {
                    channel { id } token encodingAesKey } }",
                json!({"input": {
                    "name": "Acme on WeChat", "originalId": original_id, "appId": app_id,
                    "appSecret": APP_SECRET, "departmentId": department_id
                }}),
            )
            .await;
        let created = &created["data"]["createWechatChannel"];
        TestWechatChannel {
            id: created["channel"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned(),
            app_id,
            original_id,
            token: created["token"].as_str().expect("a token").to_owned(),
            encoding_aes_key: created["encodingAesKey"].as_str().expect("a key").to_owned(),
            department_id,
        }
    }

    /// Delivers `xml` as WeChat would in `mode`, signed with the channel's
    /// Token (and encrypted with its key); returns the status and body.
    pub async fn deliver_wechat(&self, channel: &TestWechatChannel, mode: Mode, xml: &str) -> (u16, String) {
        use madoguchi_core::clock::Clock;
        let key = EncodingAesKey::parse(&channel.encoding_aes_key).expect("the channel's key");
        // Stamped by the server's clock, which a test may have moved ahead.
        self.deliver_wechat_with(channel, mode, xml, &key, self.clock.now().timestamp()).await
    }

    /// [`Self::deliver_wechat`] with a given key and timestamp.
    pub async fn deliver_wechat_with(
        &self,
        channel: &TestWechatChannel,
        mode: Mode,
        xml: &str,
        key: &EncodingAesKey,
        timestamp: i64,
    ) -> (u16, String) {
        let timestamp = timestamp.to_string();
        let nonce = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let signature = crypto::signature(&[&channel.token, &timestamp, &nonce]);
        let mut query: Vec<(&str, String)> =
            vec![("signature", signature), ("timestamp", timestamp.clone()), ("nonce", nonce.clone())];
        let body = match mode {
            Mode::Plaintext => xml.to_owned(),
            Mode::Compatible | Mode::Secure => {
                let encrypted = crypto::encrypt(key, &channel.app_id, xml.as_bytes());
                let msg_signature = crypto::signature(&[&channel.token, &timestamp, &nonce, &encrypted]);
                query.push(("encrypt_type", "aes".into()));
                query.push(("msg_signature", msg_signature));
                let envelope = format!(
                    "<ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt>",
                    channel.original_id
                );
                if mode == Mode::Compatible {
                    // The plaintext fields beside the ciphertext — with a
                    // forged sender, so a test sees which copy is trusted.
                    xml.replacen("<xml>", &format!("<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"), 1).replacen(
                        "<FromUserName><![CDATA[",
                        "<FromUserName><![CDATA[forged-",
                        1,
                    )
                } else {
                    format!("<xml>{envelope}</xml>")
                }
            }
        };
        self.post_wechat(&channel.id, &query, body.into_bytes()).await
    }

    /// Posts raw bytes to a channel's callback URL with `query`.
    pub async fn post_wechat(&self, channel_id: &str, query: &[(&str, String)], body: Vec<u8>) -> (u16, String) {
        let response = self
            .client
            .post(self.url(&format!("/webhooks/wechat/{channel_id}")))
            .query(query)
            .header("content-type", "text/xml")
            .body(body)
            .send()
            .await
            .expect("callback request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Asks the callback URL to verify itself as WeChat's console does.
    pub async fn verify_wechat_url(&self, channel_id: &str, query: &[(&str, String)]) -> (u16, String) {
        let response = self
            .client
            .get(self.url(&format!("/webhooks/wechat/{channel_id}")))
            .query(query)
            .send()
            .await
            .expect("verification request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Returns the chat of `openid` on a channel, as an admin sees it.
    pub async fn wechat_chat(&self, token: &str, openid: &str) -> Option<Value> {
        let chats = self
            .graphql(
                Some(token),
                "query($id: String!) { chats(first: 5, filter: { customerId: $id }) { edges { node { id status
                    endUser { customerId unfollowed } sendWindow { state openUntil allowanceUsed allowanceLimit
                    allowanceResetsAt reason } } } } }",
                json!({"id": openid}),
            )
            .await;
        chats["data"]["chats"]["edges"].as_array().and_then(|edges| edges.first()).map(|edge| edge["node"].clone())
    }
}

/// The Python that has wechatpy (`scripts/ensure-wechatpy` installs it);
/// `None` when there is none, which is a failure under `CI=true`.
pub fn wechatpy() -> Option<std::path::PathBuf> {
    let candidates = [
        std::env::var("MADOGUCHI_TEST_WECHATPY").ok().map(std::path::PathBuf::from),
        std::env::var("HOME").ok().map(|home| std::path::Path::new(&home).join(".cache/madoguchi-wechatpy/bin/python")),
    ];
    if let Some(python) = candidates.into_iter().flatten().find(|path| path.exists()) {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("wechatpy is not installed; under CI=true that is a failure, not a skip");
    }
    eprintln!("skipping: wechatpy is not installed (run scripts/ensure-wechatpy, or scripts/test)");
    None
}

/// One callback as wechatpy signed (and encrypted) it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SignedCallback {
    pub mode: String,
    pub query: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

/// Has wechatpy sign and encrypt `messages` for `channel` in every mode,
/// and sign a URL verification.
pub fn sign_with_wechatpy(
    python: &std::path::Path,
    channel: &TestWechatChannel,
    timestamp: i64,
    messages: &[String],
) -> Vec<SignedCallback> {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/wechatpy/callbacks.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    let request = json!({
        "token": channel.token, "encoding_aes_key": channel.encoding_aes_key, "app_id": channel.app_id,
        "original_id": channel.original_id, "timestamp": timestamp, "messages": messages,
    });
    child.stdin.take().expect("stdin").write_all(request.to_string().as_bytes()).expect("a request");
    let output = child.wait_with_output().expect("python runs");
    assert!(output.status.success(), "callbacks.py failed");
    serde_json::from_slice(&output.stdout).expect("callbacks.py answers JSON")
}
