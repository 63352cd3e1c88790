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
//! one writer anyway; several on PostgreSQL, so one batch's statements
//! overlap another's commit). There is no long-lived task: a delivery that
//! finds fewer writers than allowed starts one, which takes whatever waits,
//! batch after batch, and ends when nothing does. A batch runs in a task of
//! its own, so a webhook request that is dropped midway (the provider hung
//! up) does not cut short a transaction others wait on.

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use futures::FutureExt;
use madoguchi_entity::channels;
use tokio::sync::oneshot;

use crate::Core;
use crate::error::{Error, Result};
use crate::intake::InboundEvent;

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
}

#[derive(Debug, Default)]
struct State {
    waiting: Vec<(Delivery, Answer)>,
    /// Batch tasks running; each takes whatever is waiting when it is done.
    writers: usize,
}

impl GroupCommit {
    pub(crate) fn new(max_events: usize, max_writers: usize) -> Self {
        Self { state: Mutex::default(), max_events: max_events.max(1), max_writers: max_writers.max(1) }
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
            state.waiting.push((delivery, answer));
            let start = state.writers < self.max_writers;
            state.writers += usize::from(start);
            start
        };
        if start {
            tokio::spawn(write_batches(core.clone()));
        }
        answered.await.map_err(|_| Error::internal("the intake batch ended without an answer"))?
    }

    /// Takes the next batch, or retires its writer when nothing waits.
    fn next_batch(&self) -> Option<Vec<(Delivery, Answer)>> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.waiting.is_empty() {
            state.writers -= 1;
            return None;
        }
        let mut events = 0;
        let take = state
            .waiting
            .iter()
            .take_while(|(delivery, _)| {
                let first = events == 0;
                events += delivery.events.len().max(1);
                first || events <= self.max_events
            })
            .count();
        Some(state.waiting.drain(..take).collect())
    }
}

/// Writes batches until nothing waits.
async fn write_batches(core: Core) {
    while let Some(batch) = core.group_commit().next_batch() {
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
