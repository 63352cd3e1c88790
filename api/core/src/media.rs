//! Media URLs: unguessable, expiring paths under `/media/` that serve an
//! attachment's bytes. Agents get one per attachment they may see (minutes);
//! LINE gets one per outbound image (days), since it fetches images when
//! the customer opens them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use madoguchi_entity::attachments;
use sea_orm::EntityTrait;

use crate::Core;
use crate::error::{Error, Result};
use crate::ids::AttachmentId;
use crate::kinds::{AttachmentStatus, MessageKind};

/// Size limits for media, by kind (SPEC.md).
pub fn media_limit(kind: MessageKind) -> u64 {
    match kind {
        MessageKind::Image => 10 * 1024 * 1024,
        MessageKind::Audio | MessageKind::Video => 20 * 1024 * 1024,
        _ => 50 * 1024 * 1024,
    }
}

/// Media types accepted, by kind (SPEC.md; LINE sends audio as m4a).
pub(crate) fn media_type_allowed(kind: MessageKind, content_type: &str) -> bool {
    let content_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match kind {
        MessageKind::Image => matches!(content_type.as_str(), "image/jpeg" | "image/jpg" | "image/png"),
        MessageKind::Audio => {
            matches!(content_type.as_str(), "audio/ogg" | "audio/x-m4a" | "audio/m4a" | "audio/mp4" | "audio/aac")
        }
        MessageKind::Video => matches!(content_type.as_str(), "video/mp4" | "video/3gpp"),
        _ => true,
    }
}

/// How long an agent's download link works.
pub const AGENT_LINK_LIFETIME: Duration = Duration::minutes(15);
/// How long LINE may fetch an image we sent.
pub const PROVIDER_LINK_LIFETIME: Duration = Duration::days(14);

const TAG_LEN: usize = 16;

/// Media bytes with their type.
#[derive(Clone, Debug)]
pub struct Media {
    pub bytes: Bytes,
    pub content_type: String,
    pub file_name: Option<String>,
    /// Whether a browser may show it in place: only the image, audio and
    /// video types the product accepts. Anything else (HTML, SVG, a PDF, …)
    /// is served as a download, so it can never run on the API's origin.
    pub inline: bool,
}

/// The types shown in place; every other type is served as an attachment.
const INLINE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "audio/ogg",
    "audio/x-m4a",
    "audio/m4a",
    "audio/mp4",
    "audio/aac",
    "video/mp4",
    "video/3gpp",
];

/// Returns whether media of `content_type` may be shown in place.
pub fn served_inline(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    INLINE_TYPES.contains(&essence.as_str())
}

/// Media URL use cases.
#[derive(Debug, Clone, Copy)]
pub struct MediaLinks<'a> {
    core: &'a Core,
}

impl<'a> MediaLinks<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Returns an agent's 15-minute download link for an attachment they
    /// were shown (so already allowed to see), or `None` while it is not
    /// ready. Computed, not looked up: listing many attachments costs no
    /// query per link.
    pub fn agent_url(&self, attachment: &crate::chats::Attachment) -> Option<String> {
        (attachment.status == AttachmentStatus::Ready)
            .then(|| self.url(attachment.id, self.core.now() + AGENT_LINK_LIFETIME))
    }

    /// Returns the URL serving an attachment until `expires_at`.
    pub(crate) fn url(&self, attachment_id: AttachmentId, expires_at: DateTime<Utc>) -> String {
        let mut token = Vec::with_capacity(16 + 8 + TAG_LEN);
        token.extend_from_slice(attachment_id.uuid().as_bytes());
        token.extend_from_slice(&expires_at.timestamp().to_be_bytes());
        let tag = self.tag(&token);
        token.extend_from_slice(&tag[..TAG_LEN]);
        format!("{}/media/{}", self.core.public_base_url(), URL_SAFE_NO_PAD.encode(token))
    }

    /// Returns the media a token names, if the token is genuine and unexpired.
    pub async fn open(&self, token: &str) -> Result<Media> {
        let gone = || Error::not_found("media");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| gone())?;
        if bytes.len() != 16 + 8 + TAG_LEN {
            return Err(gone());
        }
        let (signed, tag) = bytes.split_at(24);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_truncated_left(tag).map_err(|_| gone())?;
        let id = uuid::Uuid::from_slice(&signed[..16]).map_err(|_| gone())?;
        let expires = i64::from_be_bytes(signed[16..24].try_into().map_err(|_| gone())?);
        if expires < self.core.now().timestamp() {
            return Err(gone());
        }
        let attachment = attachments::Entity::find_by_id(id).one(self.core.db()).await?.ok_or_else(gone)?;
        let key = attachment.blob_key.ok_or_else(gone)?;
        let content_type = attachment.content_type.unwrap_or_else(|| "application/octet-stream".into());
        Ok(Media {
            bytes: self.core.blobs().get(&key).await?,
            inline: served_inline(&content_type),
            content_type,
            file_name: attachment.file_name,
        })
    }

    fn mac(&self) -> Hmac<sha2::Sha256> {
        <Hmac<sha2::Sha256>>::new_from_slice(&self.core.media_key()).expect("hmac accepts any key length")
    }

    fn tag(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::served_inline;

    #[test]
    fn only_accepted_media_types_are_shown_in_place() {
        assert!(served_inline("image/jpeg"));
        assert!(served_inline("IMAGE/PNG; charset=binary"));
        assert!(served_inline("video/mp4"));
        for other in ["text/html", "image/svg+xml", "application/pdf", "text/plain", "application/octet-stream", ""] {
            assert!(!served_inline(other), "{other}");
        }
    }
}
