//! The providers consumers write from. Each is a plug-in of two halves: a
//! webhook parser that yields neutral [`crate::intake::InboundEvent`]s, and a
//! delivery strategy with the jobs that send. Everything else is shared.

pub mod line;
pub mod wechat;

use madoguchi_entity::channels;

use crate::ids::{AttachmentId, EndUserId};
use crate::jobs::JobKind;
use crate::kinds::ChannelKind;

/// The job that fetches a new consumer's profile, where the provider has one
/// (WeChat stopped giving nicknames and pictures to accounts in 2021).
pub(crate) fn profile_job(channel: &channels::Model, end_user_id: EndUserId) -> Option<JobKind> {
    match ChannelKind::parse(&channel.kind).ok()? {
        ChannelKind::Line => Some(JobKind::LineFetchProfile { end_user_id }),
        ChannelKind::Wechat | ChannelKind::Partner => None,
    }
}

/// The job that downloads a consumer's media into blob storage.
pub(crate) fn media_job(channel: &channels::Model, attachment_id: AttachmentId) -> Option<JobKind> {
    match ChannelKind::parse(&channel.kind).ok()? {
        ChannelKind::Line => Some(JobKind::LineDownloadContent { attachment_id }),
        ChannelKind::Wechat => Some(JobKind::WechatDownloadMedia { attachment_id }),
        ChannelKind::Partner => None,
    }
}
