//! A channel's chat timers — the missed-chat close, the idle close and the
//! auto-ticket timer — as durable jobs.
//!
//! Each timer of a chat is one job, keyed `timer:{kind}:{chat}`. Whatever
//! changes a chat (a message from either side, a claim, a reopening) arms
//! its timers again in the same transaction: the job is queued, or moved to
//! the new deadline. A deadline is a function of the chat's row and its
//! channel's settings ([`Timer::deadline`]), so a timer that fires checks
//! the row again: it acts only when the chat is still due, with a
//! conditional update, and otherwise is queued again for the deadline the
//! row now gives — or ends, when the timer no longer applies. Jobs are
//! claimed by one worker across replicas and survive restarts.
//!
//! Closing a chat (by an agent, or by either close timer) and the
//! auto-ticket timer both end the chat's *ticket window*, the messages since
//! the first customer message after the last conversion; ending it queues a
//! `chat.convert` job in the same transaction, which makes the ticket if the
//! helpdesk link's rule says so ([`crate::tickets::Tickets::convert_window`]).

use chrono::{DateTime, Duration, Utc};
use madoguchi_entity::{channels, chats, helpdesk_links};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::Core;
use crate::db::Write;
use crate::error::{Error, Result};
use crate::ids::ChatId;
use crate::jobs::{JobKind, Lease, NewJob, Outcome};
use crate::kinds::{ChatStatus, CompletionReason, MissedCloseWindow};

/// The longest idle close a channel may set: 24 hours.
pub const MAX_IDLE_CLOSE_SECS: i64 = 24 * 60 * 60;
/// The longest auto-ticket time a channel may set: 30 days.
pub const MAX_AUTO_TICKET_SECS: i64 = 30 * 24 * 60 * 60;

/// A channel's chat timers; `None` is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelTimers {
    /// A ticket window becomes a ticket this long after its first customer
    /// message; a customer message after that starts the next one.
    pub auto_ticket_after_secs: Option<i64>,
    /// A chat no agent answered is closed this long after it opened.
    pub missed_close_after: Option<MissedCloseWindow>,
    /// A claimed chat is closed after this long with no message from
    /// either side (at most 24 hours).
    pub idle_close_after_secs: Option<i64>,
}

impl ChannelTimers {
    /// Checks the bounds: auto-ticket 1 minute to 30 days, idle close 1
    /// minute to 24 hours.
    pub fn new(
        auto_ticket_after_secs: Option<i64>,
        missed_close_after: Option<MissedCloseWindow>,
        idle_close_after_secs: Option<i64>,
    ) -> Result<Self> {
        if auto_ticket_after_secs.is_some_and(|secs| !(60..=MAX_AUTO_TICKET_SECS).contains(&secs)) {
            return Err(Error::invalid_argument("the auto-ticket time is 1 minute up to 30 days"));
        }
        if idle_close_after_secs.is_some_and(|secs| !(60..=MAX_IDLE_CLOSE_SECS).contains(&secs)) {
            return Err(Error::invalid_argument("the idle close is 1 minute up to 24 hours"));
        }
        Ok(Self { auto_ticket_after_secs, missed_close_after, idle_close_after_secs })
    }

    pub(crate) fn of(channel: &channels::Model) -> Self {
        Self {
            auto_ticket_after_secs: channel.auto_ticket_after_secs,
            missed_close_after: channel.missed_close_after_secs.and_then(MissedCloseWindow::from_seconds),
            idle_close_after_secs: channel.idle_close_after_secs,
        }
    }
}

/// A chat timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    CloseMissed,
    CloseIdle,
    AutoTicket,
}

impl Timer {
    const ALL: [Self; 3] = [Self::CloseMissed, Self::CloseIdle, Self::AutoTicket];

    fn job(self, chat_id: ChatId) -> JobKind {
        match self {
            Self::CloseMissed => JobKind::ChatCloseMissed { chat_id },
            Self::CloseIdle => JobKind::ChatCloseIdle { chat_id },
            Self::AutoTicket => JobKind::ChatAutoTicket { chat_id },
        }
    }

    /// When the timer is due for this chat, or `None` when it does not apply
    /// (the channel does not set it, or the chat is not in the state it
    /// watches).
    pub(crate) fn deadline(self, channel: &channels::Model, chat: &chats::Model) -> Option<DateTime<Utc>> {
        let completed = chat.status == ChatStatus::Completed.as_str();
        match self {
            // No agent has answered since the chat (re)opened.
            Self::CloseMissed => {
                let after = channel.missed_close_after_secs?;
                (!completed && !answered_since(chat, chat.opened_at)).then(|| chat.opened_at + Duration::seconds(after))
            }
            // A claimed chat, quiet on both sides.
            Self::CloseIdle => {
                let after = channel.idle_close_after_secs?;
                let quiet_since = [chat.last_message_at, chat.claimed_at].into_iter().flatten().max()?;
                (chat.status == ChatStatus::InProgress.as_str()).then(|| quiet_since + Duration::seconds(after))
            }
            Self::AutoTicket => {
                let after = channel.auto_ticket_after_secs?;
                chat.ticket_window_started_at.map(|started| started + Duration::seconds(after))
            }
        }
    }
}

/// Whether an agent wrote in the chat at or after `since`.
pub(crate) fn answered_since(chat: &chats::Model, since: DateTime<Utc>) -> bool {
    chat.last_agent_message_at.is_some_and(|at| at >= since)
}

/// Arms the chat's timers from its row as this transaction left it: each
/// timer that applies is queued or moved to its deadline. Call it in the
/// transaction of every change a deadline depends on.
pub(crate) async fn arm_in(
    write: &mut Write<'_>,
    channel: &channels::Model,
    chat_id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    if !has_timers(channel) {
        return Ok(());
    }
    let chat = chats::Entity::find_by_id(chat_id).one(&**write).await?.ok_or_else(|| Error::not_found("chat"))?;
    arm_for(write, channel, &chat, now).await
}

/// Whether any of the channel's timers is on.
pub(crate) fn has_timers(channel: &channels::Model) -> bool {
    channel.missed_close_after_secs.is_some()
        || channel.idle_close_after_secs.is_some()
        || channel.auto_ticket_after_secs.is_some()
}

/// [`arm_in`] for a chat row as this transaction leaves it.
pub(crate) async fn arm_for(
    write: &mut Write<'_>,
    channel: &channels::Model,
    chat: &chats::Model,
    now: DateTime<Utc>,
) -> Result<()> {
    if !has_timers(channel) {
        return Ok(());
    }
    let chat_id = chat.id;
    for timer in Timer::ALL {
        let Some(deadline) = timer.deadline(channel, chat) else { continue };
        let kind = timer.job(chat_id.into());
        let mut job = NewJob::new(kind.clone(), deadline);
        job.organization_id = Some(chat.organization_id.into());
        job.channel_id = Some(chat.channel_id.into());
        job.dedupe_key = Some(format!("timer:{}:{chat_id}", kind.name()));
        write.arm(job, now).await?;
    }
    Ok(())
}

/// Ends the chat's ticket window, if one is open, in the transaction that
/// completes the chat or fires its auto-ticket timer: queues the window's
/// conversion. `chat` is the row as read before this transaction's change.
pub(crate) async fn end_ticket_window_in(
    write: &mut Write<'_>,
    chat: &chats::Model,
    by_timer: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(from) = chat.ticket_window_started_at else { return Ok(false) };
    let ended = chats::Entity::update_many()
        .col_expr(chats::Column::TicketWindowStartedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(chats::Column::Id.eq(chat.id))
        .filter(chats::Column::TicketWindowStartedAt.eq(from))
        .exec(&**write)
        .await?;
    if ended.rows_affected != 1 {
        return Ok(false);
    }
    queue_conversion_in(write, chat, (from, now), answered_since(chat, from), by_timer, now).await?;
    Ok(true)
}

/// Queues the conversion of a chat's ended ticket window (its messages
/// from `window.0` to `window.1`), once per window start. Nothing is queued
/// when no conversion could come of it: completion converts only through a
/// helpdesk link.
pub(crate) async fn queue_conversion_in(
    write: &mut Write<'_>,
    chat: &chats::Model,
    window: (DateTime<Utc>, DateTime<Utc>),
    attended: bool,
    by_timer: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    if !by_timer {
        let linked = helpdesk_links::Entity::find()
            .filter(helpdesk_links::Column::OrganizationId.eq(chat.organization_id))
            .one(&**write)
            .await?
            .is_some();
        if !linked {
            return Ok(());
        }
    }
    let chat_id: ChatId = chat.id.into();
    let (from, to) = window;
    let mut job = NewJob::new(JobKind::ChatConvert { chat_id, from, to, attended, by_timer }, now);
    job.organization_id = Some(chat.organization_id.into());
    job.channel_id = Some(chat.channel_id.into());
    job.dedupe_key = Some(format!("chat.convert:{chat_id}:{}", from.timestamp_micros()));
    write.enqueue(job, now).await
}

/// Runs a timer that fired: acts if the chat is still due, is queued again
/// for the deadline its row now gives, or ends when it no longer applies.
pub(crate) async fn run(core: &Core, lease: &Lease, timer: Timer, chat_id: ChatId) -> Result<Outcome> {
    let Some(chat) = chats::Entity::find_by_id(chat_id.uuid()).one(core.db()).await? else {
        return Ok(Outcome::Done);
    };
    let Some(channel) = channels::Entity::find_by_id(chat.channel_id).one(core.db()).await? else {
        return Ok(Outcome::Done);
    };
    let now = core.now();
    let Some(deadline) = timer.deadline(&channel, &chat) else { return Ok(Outcome::Done) };
    if deadline > now {
        return Ok(Outcome::Later(deadline));
    }
    let mut write = core.write().await?.fenced_by(Some(lease));
    let acted = match timer {
        Timer::CloseMissed | Timer::CloseIdle => {
            let reason = if timer == Timer::CloseMissed { CompletionReason::Missed } else { CompletionReason::Idle };
            core.chats().complete_in(&mut write, &chat, reason, now).await?
        }
        Timer::AutoTicket => end_ticket_window_in(&mut write, &chat, true, now).await?,
    };
    if !acted {
        // The chat changed between the read and the update (a message, a
        // claim): look again now, from the row as it is.
        return Ok(Outcome::Later(now));
    }
    write.commit().await?;
    Ok(Outcome::Done)
}
