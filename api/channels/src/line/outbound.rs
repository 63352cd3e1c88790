//! Message objects sent to LINE in reply and push calls, in LINE's wire format.

use serde::{Deserialize, Serialize};

/// A message object as LINE expects it in `messages[]` of a reply or push call.
///
/// Serialized with a `type` tag and camelCase fields, e.g.
/// `{"type":"image","originalContentUrl":"https://…","previewImageUrl":"https://…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum OutboundMessage {
    /// A text bubble; LINE accepts at most [`MAX_TEXT_LENGTH`](crate::line::batching::MAX_TEXT_LENGTH)
    /// UTF-16 code units and rejects empty text.
    Text {
        /// The text shown to the user.
        text: String,
    },
    /// An image; both URLs must be HTTPS (LINE rejects anything else).
    #[serde(rename_all = "camelCase")]
    Image {
        /// URL of the full image (JPEG or PNG, at most 10 MB).
        original_content_url: String,
        /// URL of the preview shown in the chat (JPEG or PNG, at most 1 MB).
        preview_image_url: String,
    },
}

impl OutboundMessage {
    /// Returns a text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    /// Returns an image message.
    pub fn image(original_content_url: impl Into<String>, preview_image_url: impl Into<String>) -> Self {
        Self::Image { original_content_url: original_content_url.into(), preview_image_url: preview_image_url.into() }
    }

    /// Returns the text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text { text } => Some(text),
            Self::Image { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_text_message_has_lines_wire_format() {
        let json = serde_json::to_value(OutboundMessage::text("hello")).unwrap();

        assert_eq!(json, json!({"type": "text", "text": "hello"}));
    }

    #[test]
    fn an_image_message_has_lines_wire_format() {
        let message = OutboundMessage::image("https://example.com/a.jpg", "https://example.com/a-small.jpg");

        let json = serde_json::to_value(message).unwrap();

        assert_eq!(
            json,
            json!({
                "type": "image",
                "originalContentUrl": "https://example.com/a.jpg",
                "previewImageUrl": "https://example.com/a-small.jpg",
            })
        );
    }
}
