//! Media URLs: unguessable, expiring paths under `/media/` that serve an
//! attachment's bytes. Agents get one per attachment they may see (minutes);
//! LINE gets one per outbound image (days), since it fetches images when
//! the customer opens them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use madoguchi_entity::{attachments, channels, chats, messages};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::Core;
use crate::chats::{append_chat_message_event, load_message};
use crate::error::{Error, Result};
use crate::ids::AttachmentId;
use crate::jobs::{Lease, Outcome};
use crate::kinds::{AttachmentStatus, MessageKind};

/// Size limits for media, by kind (SPEC.md).
pub fn media_limit(kind: MessageKind) -> u64 {
    match kind {
        MessageKind::Image => 10 * 1024 * 1024,
        MessageKind::Audio | MessageKind::Video => 20 * 1024 * 1024,
        _ => 50 * 1024 * 1024,
    }
}

/// Media types accepted, by kind (SPEC.md; LINE sends audio as m4a,
/// WeChat voice as AMR or Speex).
pub(crate) fn media_type_allowed(kind: MessageKind, content_type: &str) -> bool {
    let content_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match kind {
        MessageKind::Image => matches!(content_type.as_str(), "image/jpeg" | "image/jpg" | "image/png"),
        MessageKind::Audio => {
            matches!(
                content_type.as_str(),
                "audio/ogg"
                    | "audio/x-m4a"
                    | "audio/m4a"
                    | "audio/mp4"
                    | "audio/aac"
                    | "audio/amr"
                    | "audio/speex"
                    | "audio/x-speex"
            )
        }
        MessageKind::Video => matches!(content_type.as_str(), "video/mp4" | "video/3gpp"),
        _ => true,
    }
}

/// What a media download job works on: the attachment, its message, chat
/// and channel.
pub(crate) struct DownloadTarget {
    pub attachment: attachments::Model,
    pub message: messages::Model,
    pub chat: chats::Model,
    pub channel: channels::Model,
}

/// Loads a download job's attachment with its message, chat and channel;
/// `None` when the attachment is gone.
pub(crate) async fn download_target(core: &Core, attachment_id: AttachmentId) -> Result<Option<DownloadTarget>> {
    let Some(attachment) = attachments::Entity::find_by_id(attachment_id.uuid()).one(core.db()).await? else {
        return Ok(None);
    };
    let message = messages::Entity::find_by_id(attachment.message_id)
        .one(core.db())
        .await?
        .ok_or_else(|| Error::not_found("message"))?;
    let (chat, channel) = crate::delivery::chat_and_channel(core.db(), message.chat_id).await?;
    Ok(Some(DownloadTarget { attachment, message, chat, channel }))
}

/// Records the outcome of downloading a consumer's media from its provider,
/// whichever provider: within the kind's size and type limits the bytes go
/// to blob storage and the attachment is `READY`, otherwise it is `FAILED`
/// with the reason; one `message.updated` event either way, in one
/// transaction fenced by the job's lease.
pub(crate) async fn record_download(
    core: &Core,
    lease: Option<&Lease>,
    chat: &chats::Model,
    attachment: &attachments::Model,
    fetched: std::result::Result<(Bytes, Option<String>), String>,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let kind = MessageKind::parse(&attachment.kind)?;
    let stored = match fetched {
        Ok((bytes, content_type)) => {
            let content_type = content_type.unwrap_or_else(|| "application/octet-stream".into());
            if bytes.len() as u64 > media_limit(kind) {
                Err(format!("{} bytes is over the {} limit", bytes.len(), kind.as_str().to_lowercase()))
            } else if !media_type_allowed(kind, &content_type) {
                Err(format!("{content_type} is not an accepted {} type", kind.as_str().to_lowercase()))
            } else {
                let key = format!("{}/attachments/{}", chat.organization_id, attachment.id);
                let size = bytes.len() as i64;
                core.blobs().put(&key, bytes).await?;
                Ok((key, content_type, size))
            }
        }
        Err(error) => Err(error),
    };
    let mut write = core.write().await?.fenced_by(lease);
    let mut update = attachments::Entity::update_many().filter(attachments::Column::Id.eq(attachment.id));
    update = match &stored {
        Ok((key, content_type, size)) => update
            .col_expr(attachments::Column::Status, Expr::value(AttachmentStatus::Ready.as_str()))
            .col_expr(attachments::Column::BlobKey, Expr::value(key.clone()))
            .col_expr(attachments::Column::ContentType, Expr::value(content_type.clone()))
            .col_expr(attachments::Column::SizeBytes, Expr::value(*size)),
        Err(error) => update
            .col_expr(attachments::Column::Status, Expr::value(AttachmentStatus::Failed.as_str()))
            .col_expr(attachments::Column::Error, Expr::value(error.clone())),
    };
    update.exec(&*write).await?;
    let message = load_message(&*write, attachment.message_id).await?;
    append_chat_message_event(&mut write, chat, "message.updated", &message, now).await?;
    write.commit().await?;
    Ok(match stored {
        Ok(_) => Outcome::Done,
        Err(error) => Outcome::Failed(error),
    })
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
