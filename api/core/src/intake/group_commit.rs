//! Group commit for webhook intake: deliveries that arrive while intake
//! transactions are under way share the next one — one `BEGIN`, one advance
//! of each organization's event counter, one multi-row insert of the events,
//! one commit (one fsync on PostgreSQL) — and each is answered only once
//! that transaction has committed.
//!
//! A shared transaction stores its deliveries set-based, so every lock it
//! takes follows one order whatever it holds: receipts sorted, end users
//! sorted, chats in id order, organizations last (at commit). Two batches
//! holding the same customers' chats or the same redelivered events wait
//! for each other, never in a cycle. A delivery with a follow, an unfollow
//! or an unsend is stored event by event, so it runs in a transaction of its
//! own rather than interleave its locks with others'. A transaction that
//! loses a race on PostgreSQL is run again as a whole; one that fails
//! otherwise (a bug, a constraint) is split, each delivery then committing
//! or failing by itself, so one refused delivery fails alone. Nothing
//! changes for exactly-once: every event's receipt is inserted in the same
//! transaction as its effects, and two deliveries of one event in one batch
//! meet the receipt the first wrote.
//!
//! Batches are written by a few tasks at a time (one on SQLite, which has
//! one writer anyway; up to four on PostgreSQL), and an organization's
//! deliveries by one of them at a time. Every intake transaction of an
//! organization advances its event counter, so two of them commit one
//! after the other whatever else they overlap: two writers of one
//! organization only split its deliveries into smaller batches that queue
//! on that row (measured on PostgreSQL, one organization, 64 concurrent:
//! 2,900 ev/s with four writers, 3,600 with one). Writers of different
//! organizations run side by side.
//!
//! There is no long-lived task: a delivery for an organization no writer
//! holds starts one (while fewer than allowed run), which takes what waits
//! for organizations no other writer holds, batch after batch, and ends
//! when nothing is left for it. A batch runs in a task of its own, so a
//! webhook request that is dropped midway (the provider hung up) does not
//! cut short a transaction others wait on. Writers run on a thread of their
//! own ([`super::writer_thread`]).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use futures::FutureExt;
use madoguchi_entity::channels;
use tokio::sync::oneshot;

use crate::Core;
use crate::error::{Error, Result};
use crate::intake::InboundEvent;
use crate::intake::writer_thread::WriterThread;

/// How many events of a delivery were new and how many seen before.
pub(crate) type Counts = (usize, usize);

/// One webhook delivery.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) channel: channels::Model,
    /// Sorted by consumer (see [`crate::intake::Intake::record`]).
    pub(crate) events: Vec<InboundEvent>,
}

impl Delivery {
    /// Whether this delivery can share a transaction with others: every one
    /// of its events is stored set-based.
    pub(crate) fn shares_transactions(&self) -> bool {
        self.events.iter().all(crate::intake::stored_set_based)
    }
}

type Answer = oneshot::Sender<Result<Counts>>;

/// The deliveries waiting for the next transaction.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    /// At most this many events share one transaction (a delivery is never
    /// split: one larger than this runs alone); `1` turns sharing off.
    max_events: usize,
    /// At most this many batches are written at once.
    max_writers: usize,
    /// Where writers run; `None`: on the caller's runtime.
    thread: Option<WriterThread>,
}

#[derive(Debug, Default)]
struct State {
    waiting: Vec<(Delivery, Answer)>,
    /// Batch tasks running; each takes what waits when it is done.
    writers: usize,
    /// The organizations whose deliveries a writer is storing now.
    held: HashSet<uuid::Uuid>,
}

impl State {
    /// Whether a delivery waits that no writer's organization holds back.
    fn free_work(&self) -> bool {
        self.waiting.iter().any(|(delivery, _)| !self.held.contains(&delivery.channel.organization_id))
    }
}

impl GroupCommit {
    pub(crate) fn new(max_events: usize, max_writers: usize) -> Self {
        Self { state: Mutex::default(), max_events: max_events.max(1), max_writers: max_writers.max(1), thread: None }
    }

    /// Writes batches on `thread`.
    pub(crate) fn on(self, thread: WriterThread) -> Self {
        Self { thread: Some(thread), ..self }
    }

    /// The connections batches are written on, when they have their own
    /// (PostgreSQL).
    pub(crate) fn db(&self) -> Option<&sea_orm::DatabaseConnection> {
        self.thread.as_ref().and_then(WriterThread::db)
    }

    /// Whether deliveries share transactions at all.
    pub(crate) fn shares(&self) -> bool {
        self.max_events > 1
    }

    /// Queues a delivery for the next shared transaction and waits until it
    /// is committed (or has failed).
    pub(crate) async fn submit(&self, core: &Core, delivery: Delivery) -> Result<Counts> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let organization = delivery.channel.organization_id;
            state.waiting.push((delivery, answer));
            // A writer holding the organization takes it when it is done.
            let start = state.writers < self.max_writers && !state.held.contains(&organization);
            state.writers += usize::from(start);
            start
        };
        if start {
            match &self.thread {
                Some(thread) => thread.spawn(write_batches(core.clone())),
                None => drop(tokio::spawn(write_batches(core.clone()))),
            }
        }
        answered.await.map_err(|_| Error::internal("the intake batch ended without an answer"))?
    }

    /// Takes the next batch for a writer that has just released
    /// `released` (the organizations of its last batch): the waiting
    /// deliveries of organizations no other writer holds, in arrival order,
    /// up to `max_events`; their organizations are then this writer's.
    /// Retires the writer when nothing is left for it.
    fn next_batch(&self, released: &[uuid::Uuid]) -> Option<Vec<(Delivery, Answer)>> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for organization in released {
            state.held.remove(organization);
        }
        if !state.free_work() {
            state.writers -= 1;
            return None;
        }
        let mut events = 0;
        let mut batch = Vec::new();
        let mut kept = Vec::with_capacity(state.waiting.len());
        let mut taking = true;
        for (delivery, answer) in std::mem::take(&mut state.waiting) {
            let size = delivery.events.len().max(1);
            let fits = batch.is_empty() || events + size <= self.max_events;
            if taking && fits && !state.held.contains(&delivery.channel.organization_id) {
                events += size;
                batch.push((delivery, answer));
            } else {
                // Past the first that does not fit, the rest wait their
                // turn, so no delivery is passed over twice.
                taking &= fits;
                kept.push((delivery, answer));
            }
        }
        state.waiting = kept;
        for (delivery, _) in &batch {
            state.held.insert(delivery.channel.organization_id);
        }
        Some(batch)
    }
}

/// Writes batches until nothing is left for this writer.
async fn write_batches(core: Core) {
    let mut held = Vec::new();
    while let Some(batch) = core.group_commit().next_batch(&held) {
        held = batch.iter().map(|(delivery, _)| delivery.channel.organization_id).collect();
        held.sort_unstable();
        held.dedup();
        // A panic answers its batch with an error (the senders are dropped)
        // and leaves this writer running for the next.
        if AssertUnwindSafe(write(&core, batch)).catch_unwind().await.is_err() {
            tracing::error!("an intake batch panicked; its deliveries were answered with an error");
        }
    }
}

async fn write(core: &Core, mut batch: Vec<(Delivery, Answer)>) {
    // One lock order across batches and replicas: channels, then consumers.
    batch.sort_by(|(a, _), (b, _)| {
        (a.channel.id, a.events.first().and_then(|event| event.consumer.as_deref()))
            .cmp(&(b.channel.id, b.events.first().and_then(|event| event.consumer.as_deref())))
    });
    let (shared, alone): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(delivery, _)| delivery.shares_transactions());
    let intake = core.intake();
    if !shared.is_empty() {
        let (deliveries, answers): (Vec<Delivery>, Vec<Answer>) = shared.into_iter().unzip();
        record_transaction(&deliveries);
        match core.retrying(|| intake.store_set(&deliveries)).await {
            Ok(counts) => {
                for (answer, counts) in answers.into_iter().zip(counts) {
                    let _ = answer.send(Ok(counts));
                }
            }
            Err(error) if deliveries.len() == 1 => {
                let _ = answers.into_iter().next().map(|answer| answer.send(Err(error)));
            }
            Err(error) => {
                tracing::warn!(deliveries = deliveries.len(), cause = ?error.cause(), %error, "a shared intake transaction failed; committing its deliveries one by one");
                for (delivery, answer) in deliveries.iter().zip(answers) {
                    let _ = answer.send(intake.store_alone(delivery).await);
                }
            }
        }
    }
    for (delivery, answer) in alone {
        record_transaction(std::slice::from_ref(&delivery));
        let _ = answer.send(intake.store_alone(&delivery).await);
    }
}

/// Counts what one intake transaction carries.
fn record_transaction(deliveries: &[Delivery]) {
    metrics::histogram!("intake_batch_deliveries").record(deliveries.len() as f64);
    metrics::histogram!("intake_batch_events")
        .record(deliveries.iter().map(|delivery| delivery.events.len()).sum::<usize>() as f64);
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    /// A delivery of one event to a channel of `organization`.
    fn delivery(organization: uuid::Uuid, events: usize) -> (Delivery, Answer) {
        let now = Utc::now();
        let channel = channels::Model {
            id: uuid::Uuid::now_v7(),
            organization_id: organization,
            kind: "LINE".into(),
            name: "channel".into(),
            department_id: uuid::Uuid::now_v7(),
            brand_id: None,
            status: "ACTIVE".into(),
            icon_blob_key: None,
            line_channel_id: None,
            line_bot_user_id: None,
            line_basic_id: None,
            line_mode: None,
            line_plan: None,
            wechat_original_id: None,
            wechat_app_id: None,
            line_channel_secret: None,
            line_access_token: None,
            wechat_app_secret: None,
            wechat_token: None,
            wechat_encoding_aes_key: None,
            wechat_previous_encoding_aes_key: None,
            auto_ticket_after_secs: None,
            missed_close_after_secs: None,
            idle_close_after_secs: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let event = InboundEvent {
            provider_event_id: uuid::Uuid::now_v7().to_string(),
            event_type: "message".into(),
            raw: serde_json::Value::Null,
            consumer: None,
            reply_token: None,
            kind: crate::intake::InboundKind::Other,
        };
        (Delivery { channel, events: vec![event; events] }, oneshot::channel().0)
    }

    fn organizations(batch: &[(Delivery, Answer)]) -> Vec<uuid::Uuid> {
        batch.iter().map(|(delivery, _)| delivery.channel.organization_id).collect()
    }

    #[test]
    fn an_organization_is_written_by_one_writer_at_a_time() {
        let (a, b, c) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let group = GroupCommit::new(256, 4);
        let wait = |organization| group.state.lock().unwrap().waiting.push(delivery(organization, 1));
        group.state.lock().unwrap().writers = 2;
        wait(a);
        wait(b);
        wait(a);
        // The first writer takes every organization nobody holds.
        let first = group.next_batch(&[]).unwrap();
        assert_eq!(organizations(&first), [a, b, a]);
        // Meanwhile: the second writer takes c, never a or b.
        wait(a);
        wait(c);
        let second = group.next_batch(&[]).unwrap();
        assert_eq!(organizations(&second), [c]);
        // With only held organizations' deliveries left, a writer retires…
        assert!(group.next_batch(&[c]).is_none());
        assert_eq!(group.state.lock().unwrap().writers, 1);
        // …and the one holding them takes them once it is done.
        let third = group.next_batch(&[a, b]).unwrap();
        assert_eq!(organizations(&third), [a]);
        assert!(group.next_batch(&[a]).is_none());
        let state = group.state.lock().unwrap();
        assert!(state.waiting.is_empty() && state.held.is_empty() && state.writers == 0);
    }

    #[test]
    fn a_batch_stops_at_the_first_delivery_that_does_not_fit() {
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let group = GroupCommit::new(4, 1);
        group.state.lock().unwrap().writers = 1;
        for (organization, events) in [(a, 3), (b, 2), (a, 1), (b, 6)] {
            group.state.lock().unwrap().waiting.push(delivery(organization, events));
        }
        // 3 fit; 3 + 2 does not, so the 1 behind it waits too (arrival order).
        assert_eq!(organizations(&group.next_batch(&[]).unwrap()), [a]);
        assert_eq!(organizations(&group.next_batch(&[a]).unwrap()), [b, a]);
        // One larger than a batch still goes, alone.
        assert_eq!(organizations(&group.next_batch(&[a, b]).unwrap()), [b]);
        assert!(group.next_batch(&[b]).is_none());
    }
}
