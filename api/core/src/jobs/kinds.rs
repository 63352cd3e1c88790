//! Every kind of job, with its typed payload and its retry policy. A job is
//! stored as a kind string and a JSON payload; decoding turns the pair back
//! into a [`JobKind`], and a pair that does not decode ends the job as
//! failed instead of being retried forever.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::ids::{AttachmentId, ChannelId, ChatId, EndUserId, MessageId};

/// A job's kind and payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all_fields = "camelCase")]
pub enum JobKind {
    /// Sends a chat's waiting reply messages on a fresh reply token.
    #[serde(rename = "line.reply")]
    LineReply { chat_id: ChatId },
    /// Pushes one message, with the retry key chosen when it was queued.
    #[serde(rename = "line.push")]
    LinePush { message_id: MessageId },
    /// Fetches a consumer's display name and picture.
    #[serde(rename = "line.fetch_profile")]
    LineFetchProfile { end_user_id: EndUserId },
    /// Downloads a consumer's media into blob storage.
    #[serde(rename = "line.download_content")]
    LineDownloadContent { attachment_id: AttachmentId },
    /// Compares our push count with LINE's own.
    #[serde(rename = "line.reconcile_quota")]
    LineReconcileQuota { channel_id: ChannelId },
    /// Sends one customer-service message; `allowance_month` names the
    /// month (China time) whose outside-the-window allowance it took, given
    /// back if it is never delivered.
    #[serde(rename = "wechat.send")]
    WechatSend {
        message_id: MessageId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        allowance_month: Option<String>,
    },
    /// Downloads a consumer's media into blob storage.
    #[serde(rename = "wechat.download_media")]
    WechatDownloadMedia { attachment_id: AttachmentId },
    /// Closes a chat no agent answered, once the channel's missed-chat
    /// window has passed since it opened.
    #[serde(rename = "chat.close_missed")]
    ChatCloseMissed { chat_id: ChatId },
    /// Closes a claimed chat once the channel's idle time has passed since
    /// its last message, from either side.
    #[serde(rename = "chat.close_idle")]
    ChatCloseIdle { chat_id: ChatId },
    /// Ends a chat's ticket window once the channel's auto-ticket time has
    /// passed since the window's first customer message.
    #[serde(rename = "chat.auto_ticket")]
    ChatAutoTicket { chat_id: ChatId },
    /// Turns one ended ticket window (its messages from `from` to `to`) into
    /// a ticket, if the rules say so: whether an agent answered in it, and
    /// whether the auto-ticket timer ended it (or the chat's completion).
    #[serde(rename = "chat.convert")]
    ChatConvert { chat_id: ChatId, from: DateTime<Utc>, to: DateTime<Utc>, attended: bool, by_timer: bool },
    /// Frees an unused passcode's code once it has expired.
    #[serde(rename = "passcode.expire")]
    PasscodeExpire { passcode_id: uuid::Uuid },
}

/// How a kind of job is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all; after the last the job ends as failed.
    pub max_attempts: i32,
    /// The first retry's delay; each next one doubles, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// The longest a provider's `Retry-After` may postpone the job.
    pub retry_after_ceiling: Duration,
}

impl RetryPolicy {
    /// Returns the delay before the retry after attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: i32) -> Duration {
        let doublings = attempt.clamp(1, 30) - 1;
        let delay = self.first_delay.num_milliseconds().saturating_mul(1i64 << doublings.min(40));
        Duration::milliseconds(delay.min(self.max_delay.num_milliseconds()))
    }

    /// Returns how long to wait when the provider asked for `retry_after`.
    pub fn honour_retry_after(&self, retry_after: std::time::Duration, attempt: i32) -> Duration {
        let asked = Duration::from_std(retry_after).unwrap_or(self.retry_after_ceiling);
        asked.min(self.retry_after_ceiling).max(self.backoff(attempt).min(Duration::seconds(1)))
    }
}

const STANDARD: RetryPolicy = RetryPolicy {
    max_attempts: 10,
    first_delay: Duration::seconds(1),
    max_delay: Duration::minutes(10),
    retry_after_ceiling: Duration::minutes(10),
};

impl JobKind {
    /// The stored kind string.
    pub fn name(&self) -> &'static str {
        match self {
            Self::LineReply { .. } => "line.reply",
            Self::LinePush { .. } => "line.push",
            Self::LineFetchProfile { .. } => "line.fetch_profile",
            Self::LineDownloadContent { .. } => "line.download_content",
            Self::LineReconcileQuota { .. } => "line.reconcile_quota",
            Self::WechatSend { .. } => "wechat.send",
            Self::WechatDownloadMedia { .. } => "wechat.download_media",
            Self::ChatCloseMissed { .. } => "chat.close_missed",
            Self::ChatCloseIdle { .. } => "chat.close_idle",
            Self::ChatAutoTicket { .. } => "chat.auto_ticket",
            Self::ChatConvert { .. } => "chat.convert",
            Self::PasscodeExpire { .. } => "passcode.expire",
        }
    }

    /// The stored payload.
    pub fn payload(&self) -> serde_json::Value {
        let mut tagged = serde_json::to_value(self).expect("a job kind always serialises");
        tagged.get_mut("payload").map(serde_json::Value::take).unwrap_or(serde_json::Value::Null)
    }

    /// Decodes a stored kind and payload; the error says what is wrong.
    pub fn decode(kind: &str, payload: &serde_json::Value) -> Result<Self, String> {
        let tagged = serde_json::json!({"kind": kind, "payload": payload});
        serde_json::from_value(tagged).map_err(|error| format!("cannot decode a {kind:?} job: {error}"))
    }

    /// How this kind is retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        match self {
            // A push carries its retry key: retrying is safe, for a while.
            Self::LinePush { .. } => RetryPolicy { max_attempts: 8, ..STANDARD },
            // LINE prepares video and audio for a while before it serves them.
            Self::LineDownloadContent { .. } => {
                RetryPolicy { max_attempts: 40, max_delay: Duration::seconds(30), ..STANDARD }
            }
            Self::LineReconcileQuota { .. } => RetryPolicy { max_attempts: 5, ..STANDARD },
            // A reply retries quickly while another reply of the chat is in
            // flight; its token expires within a minute anyway.
            Self::LineReply { .. } => {
                RetryPolicy { max_attempts: 30, first_delay: Duration::milliseconds(200), ..STANDARD }
            }
            Self::LineFetchProfile { .. }
            | Self::WechatDownloadMedia { .. }
            | Self::ChatCloseMissed { .. }
            | Self::ChatCloseIdle { .. }
            | Self::ChatAutoTicket { .. }
            | Self::ChatConvert { .. }
            | Self::PasscodeExpire { .. } => STANDARD,
            // Nothing makes a customer-service message idempotent: only
            // failures that had no effect are retried.
            Self::WechatSend { .. } => RetryPolicy { max_attempts: 8, ..STANDARD },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_stored_form() {
        let kinds = [
            JobKind::LineReply { chat_id: ChatId::generate() },
            JobKind::LinePush { message_id: MessageId::generate() },
            JobKind::LineFetchProfile { end_user_id: EndUserId::generate() },
            JobKind::LineDownloadContent { attachment_id: AttachmentId::generate() },
            JobKind::LineReconcileQuota { channel_id: ChannelId::generate() },
            JobKind::WechatSend { message_id: MessageId::generate(), allowance_month: None },
            JobKind::WechatSend { message_id: MessageId::generate(), allowance_month: Some("2026-12".into()) },
            JobKind::WechatDownloadMedia { attachment_id: AttachmentId::generate() },
            JobKind::ChatCloseMissed { chat_id: ChatId::generate() },
            JobKind::ChatCloseIdle { chat_id: ChatId::generate() },
            JobKind::ChatAutoTicket { chat_id: ChatId::generate() },
            JobKind::ChatConvert {
                chat_id: ChatId::generate(),
                from: "2026-12-01T10:00:00.123456Z".parse().unwrap(),
                to: "2026-12-01T11:00:00Z".parse().unwrap(),
                attended: true,
                by_timer: false,
            },
            JobKind::PasscodeExpire { passcode_id: uuid::Uuid::now_v7() },
        ];
        for kind in kinds {
            assert_eq!(JobKind::decode(kind.name(), &kind.payload()), Ok(kind.clone()));
        }
    }

    #[test]
    fn payloads_keep_the_stored_field_names() {
        let chat_id = ChatId::generate();
        let payload = JobKind::LineReply { chat_id }.payload();
        assert_eq!(payload, serde_json::json!({"chatId": chat_id}));
    }

    #[test]
    fn a_malformed_or_unknown_job_does_not_decode() {
        assert!(JobKind::decode("line.reply", &serde_json::json!({"chatId": "not a uuid"})).is_err());
        assert!(JobKind::decode("line.reply", &serde_json::json!({})).is_err());
        assert!(JobKind::decode("no.such_kind", &serde_json::json!({})).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_retry_after_is_capped() {
        assert_eq!(STANDARD.backoff(1), Duration::seconds(1));
        assert_eq!(STANDARD.backoff(4), Duration::seconds(8));
        assert_eq!(STANDARD.backoff(1_000), Duration::minutes(10));
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(STANDARD.honour_retry_after(day, 1), Duration::minutes(10));
        assert_eq!(STANDARD.honour_retry_after(std::time::Duration::from_secs(3), 1), Duration::seconds(3));
    }
}
