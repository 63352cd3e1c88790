//! Customer-service messages (`/cgi-bin/message/custom/send`): the JSON
//! bodies WeChat documents, checked against WxJava's published assertions
//! (`vectors/wechat-outbound.txt`).

use serde::Serialize;

/// One customer-service message to one consumer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomMessage {
    /// The consumer's OpenID.
    pub touser: String,
    #[serde(flatten)]
    pub body: CustomBody,
}

/// What a customer-service message carries; `msgtype` names it and a field
/// of the same name holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "msgtype", rename_all = "lowercase")]
pub enum CustomBody {
    Text { text: Text },
    Image { image: Media },
    Voice { voice: Media },
    Video { video: Video },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Text {
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Media {
    pub media_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Video {
    pub media_id: String,
    pub thumb_media_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl CustomMessage {
    pub fn text(touser: impl Into<String>, content: impl Into<String>) -> Self {
        Self { touser: touser.into(), body: CustomBody::Text { text: Text { content: content.into() } } }
    }

    pub fn image(touser: impl Into<String>, media_id: impl Into<String>) -> Self {
        Self { touser: touser.into(), body: CustomBody::Image { image: Media { media_id: media_id.into() } } }
    }

    pub fn voice(touser: impl Into<String>, media_id: impl Into<String>) -> Self {
        Self { touser: touser.into(), body: CustomBody::Voice { voice: Media { media_id: media_id.into() } } }
    }

    pub fn video(touser: impl Into<String>, video: Video) -> Self {
        Self { touser: touser.into(), body: CustomBody::Video { video } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected JSON of one of WxJava's `test…Reply` cases.
    fn published(case: &str) -> String {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/wechat-outbound.txt"));
        let start = text.find(&format!("public void {case}()")).unwrap_or_else(|| panic!("{case} is in the vectors"));
        let after = &text[start..];
        let open = after.find("toJson(),").expect("an assertion") + "toJson(),".len();
        let quoted = after[open..].trim_start();
        let end = quoted.find("\");").expect("the end of the string");
        quoted[1..end].replace("\\\"", "\"")
    }

    #[test]
    fn bodies_match_wxjava_byte_for_byte() {
        let video = Video {
            media_id: "MEDIA_ID".into(),
            thumb_media_id: "MEDIA_ID".into(),
            title: Some("TITLE".into()),
            description: Some("DESCRIPTION".into()),
        };
        let cases = [
            ("testTextReply", CustomMessage::text("OPENID", "sfsfdsdf")),
            ("testImageReply", CustomMessage::image("OPENID", "MEDIA_ID")),
            ("testVoiceReply", CustomMessage::voice("OPENID", "MEDIA_ID")),
            ("testVideoReply", CustomMessage::video("OPENID", video)),
        ];
        for (case, message) in cases {
            assert_eq!(serde_json::to_string(&message).unwrap(), published(case), "{case}");
        }
    }
}
