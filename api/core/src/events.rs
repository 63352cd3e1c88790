//! The append-only event log.
//!
//! Every state change appends its event in the same transaction. Each
//! organization has its own cursor (`seq`), advanced by `UPDATE … RETURNING`
//! on the organization row: the row lock orders concurrent writers, so the
//! cursor has no gaps and grows in commit order, and a reader that has seen
//! `seq = n` has seen everything before it.
//!
//! Readers always read from the table. An in-process `watch` per
//! organization only wakes them (it holds one number, so a slow reader costs
//! nothing and misses nothing); with PostgreSQL, a `pg_notify` sent after
//! the commit (coalesced per organization) carries the wake-up to the other
//! server processes.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use madoguchi_entity::{events, organizations};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

use crate::error::{Error, Result};
use crate::ids::{ChannelId, ChatId, OrganizationId};

/// The PostgreSQL notification channel carrying `organization:seq` wake-ups.
pub const POSTGRES_CHANNEL: &str = "madoguchi_events";

/// How often a waiting reader looks at the table even without a wake-up, in
/// case a notification was lost (a listener reconnecting, say).
const SAFETY_POLL: Duration = Duration::from_secs(5);

/// How many events a reader takes from the table at once.
const READ_BATCH: u64 = 200;
/// How many events a shared tail keeps for followers that are momentarily
/// slower than it; one further behind reads the table instead.
const TAIL_RING: usize = 1024;

/// How long announcements to other replicas are gathered before they go.
const ANNOUNCE_COALESCING: Duration = Duration::from_millis(2);

/// How many events one insert statement carries.
const INSERT_CHUNK: usize = 500;

/// Which kinds of events a follower wants: exact kinds (`ticket.created`)
/// or prefixes ending in a dot (`ticket.`); empty wants every kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindFilter(Vec<String>);

impl KindFilter {
    /// At most 32 entries of lower-case letters, digits, `_` and `.`.
    pub fn parse(kinds: &[String]) -> Result<Self> {
        if kinds.len() > 32 {
            return Err(Error::invalid_argument("at most 32 kinds"));
        }
        for kind in kinds {
            let well_formed = !kind.is_empty()
                && kind.len() <= 64
                && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
            if !well_formed {
                return Err(Error::invalid_argument(format!("{kind:?} is not an event kind or prefix")));
            }
        }
        Ok(Self(kinds.to_vec()))
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|wanted| if wanted.ends_with('.') { kind.starts_with(wanted.as_str()) } else { kind == wanted })
    }
}

/// Whether an event changes who may do what: sessions and streams check
/// their caller again after one (see [`EventLog::identity_changes`]).
pub(crate) fn is_identity_kind(kind: &str) -> bool {
    kind.starts_with("agent.") || kind.starts_with("api_key.") || kind.starts_with("organization.")
}

/// Whether an event changes a channel or its organization: what webhook
/// intake reads of a channel on every delivery.
pub(crate) fn is_configuration_kind(kind: &str) -> bool {
    kind.starts_with("channel.") || kind.starts_with("organization.")
}

/// The notification payload: `organization:seq`, with `:identity` when the
/// events it announces change who may do what.
fn notification(organization_id: OrganizationId, seq: i64, identity: bool) -> String {
    if identity { format!("{organization_id}:{seq}:identity") } else { format!("{organization_id}:{seq}") }
}

/// An event as read from the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub organization_id: OrganizationId,
    pub seq: i64,
    pub kind: String,
    pub channel_id: Option<ChannelId>,
    pub chat_id: Option<ChatId>,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// An event about to be appended.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub kind: &'static str,
    pub channel_id: Option<ChannelId>,
    pub chat_id: Option<ChatId>,
    pub payload: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl NewEvent {
    /// Returns an event of `kind` with a payload and no channel or chat.
    pub fn new(kind: &'static str, payload: serde_json::Value, at: DateTime<Utc>) -> Self {
        Self { kind, channel_id: None, chat_id: None, payload, at }
    }

    pub fn in_channel(mut self, channel_id: ChannelId) -> Self {
        self.channel_id = Some(channel_id);
        self
    }

    pub fn in_chat(mut self, chat_id: ChatId) -> Self {
        self.chat_id = Some(chat_id);
        self
    }
}

/// A stream of events, boxed for the adapters.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event>> + Send>>;

/// Appends to and reads from the event log; wakes readers.
#[derive(Debug)]
pub struct EventLog {
    db: DatabaseConnection,
    wakers: Mutex<HashMap<OrganizationId, watch::Sender<i64>>>,
    /// Advanced whenever an identity event commits, here or (through the
    /// PostgreSQL notification, or the shared tail reading it from the log
    /// when the notification was lost) on another replica.
    identity: watch::Sender<u64>,
    /// The newest `seq` per organization that `identity` was advanced for,
    /// so an identity event seen both ways wakes sessions once.
    identity_seen: Mutex<HashMap<OrganizationId, i64>>,
    /// Committed heads to announce to the other replicas (PostgreSQL),
    /// coalesced by [`EventLog::notify_postgres`].
    announcements: mpsc::UnboundedSender<Announcement>,
    pending_announcements: Mutex<Option<mpsc::UnboundedReceiver<Announcement>>>,
    /// Each organization's shared tail in this process, while it has followers.
    tails: Mutex<HashMap<OrganizationId, Tail>>,
    /// Advanced whenever a channel or organization event commits in this
    /// process: what [`crate::channels::ReceivingChannels`] caches is stale.
    configuration: std::sync::atomic::AtomicU64,
}

/// Counts what is open on `/metrics`: `event_log_followers` (GraphQL
/// subscriptions and gRPC streams reading the log) and `event_log_tails`
/// (shared tails running), for as long as this value lives.
#[derive(Debug)]
struct Open(&'static str);

impl Open {
    fn follower() -> Self {
        Self::new("event_log_followers")
    }

    fn tail() -> Self {
        Self::new("event_log_tails")
    }

    fn new(name: &'static str) -> Self {
        metrics::gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

/// Records how far behind the head a follower was when it passed an event
/// on: `event_log_follower_lag` (events), a summary over every follower.
fn record_lag(events_behind: i64) {
    metrics::histogram!("event_log_follower_lag").record(Ord::max(events_behind, 0) as f64);
}

/// One organization's shared tail: a single task reads the log after each
/// wake-up (or safety poll) and broadcasts what it read to every live
/// follower, so a commit costs one query however many follow it, and idle
/// followers cost none. Followers behind it catch up from the table first.
#[derive(Clone, Debug)]
struct Tail {
    events: broadcast::Sender<Arc<Event>>,
    /// The newest `seq` the tail has broadcast (or started after).
    position: watch::Receiver<i64>,
}

/// A committed head of one organization's log, for other replicas.
#[derive(Clone, Copy, Debug)]
struct Announcement {
    organization_id: OrganizationId,
    seq: i64,
    identity: bool,
}

impl EventLog {
    pub fn new(db: DatabaseConnection) -> Self {
        let (announcements, pending) = mpsc::unbounded_channel();
        Self {
            db,
            wakers: Mutex::new(HashMap::new()),
            identity: watch::channel(0).0,
            identity_seen: Mutex::new(HashMap::new()),
            configuration: std::sync::atomic::AtomicU64::new(0),
            announcements,
            pending_announcements: Mutex::new(Some(pending)),
            tails: Mutex::new(HashMap::new()),
        }
    }

    /// Appends a transaction's events of one organization, in order: one
    /// counter advance for all of them and one multi-row insert. Called at
    /// commit, after every other
    /// write of the transaction, so the organization row is always the last
    /// lock a writer takes (one lock order, no deadlocks against it) and is
    /// held only for the end of the transaction. Returns the newest cursor.
    pub(crate) async fn append_all(
        &self,
        tx: &DatabaseTransaction,
        organization_id: OrganizationId,
        events: Vec<NewEvent>,
    ) -> Result<i64> {
        if tx.get_database_backend() == DbBackend::Postgres && !events.is_empty() && events.len() <= INSERT_CHUNK {
            return append_in_one_statement(tx, organization_id, events).await;
        }
        let count = events.len() as i64;
        let advance = Query::update()
            .table("organizations")
            .value("event_seq", Expr::col("event_seq").add(count))
            .and_where(Expr::col("id").eq(organization_id.uuid()))
            .returning(Query::returning().column("event_seq"))
            .to_owned();
        let last: i64 =
            tx.query_one(&advance).await?.ok_or_else(|| Error::not_found("organization"))?.try_get("", "event_seq")?;
        let rows: Vec<events::ActiveModel> = events
            .into_iter()
            .zip(last - count + 1..)
            .map(|(event, seq)| events::ActiveModel {
                organization_id: Set(organization_id.uuid()),
                seq: Set(seq),
                kind: Set(event.kind.to_owned()),
                channel_id: Set(event.channel_id.map(Into::into)),
                chat_id: Set(event.chat_id.map(Into::into)),
                payload: Set(event.payload),
                created_at: Set(event.at),
                ..Default::default()
            })
            .collect();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            // Well under SQLite's limit on bound parameters per statement.
            let chunk: Vec<_> = rows.by_ref().take(INSERT_CHUNK).collect();
            events::Entity::insert_many(chunk).exec_without_returning(tx).await?;
        }
        Ok(last)
    }

    fn sender(&self, organization_id: OrganizationId) -> watch::Sender<i64> {
        let mut wakers = self.wakers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        wakers.entry(organization_id).or_insert_with(|| watch::channel(0).0).clone()
    }

    /// Wakes the readers of an organization: an event up to `seq` is committed.
    pub fn wake(&self, organization_id: OrganizationId, seq: i64) {
        self.sender(organization_id).send_if_modified(|latest| {
            let newer = seq > *latest;
            if newer {
                *latest = seq;
            }
            newer
        });
    }

    /// Tells long-lived sessions and streams that an agent, an API key or an
    /// organization changed: each checks its caller again (one lookup per
    /// session per change, none while nothing changes).
    pub fn wake_identity(&self) {
        // An organization may have been disabled: channels read before are stale.
        self.configuration_changed();
        self.identity.send_modify(|generation| *generation += 1);
    }

    /// Like [`Self::wake_identity`], for an identity change in the
    /// organization's log at `seq` (or up to it): only once per change,
    /// however many ways it is heard of (this process's commit, another
    /// replica's notification, the shared tail reading the log).
    pub(crate) fn identity_changed(&self, organization_id: OrganizationId, seq: i64) {
        let newer = {
            let mut seen = self.identity_seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let last = seen.entry(organization_id).or_insert(0);
            let newer = seq > *last;
            *last = Ord::max(*last, seq);
            newer
        };
        if newer {
            self.wake_identity();
        }
    }

    /// Wakes every follower of every organization, to read the log again.
    fn wake_all(&self) {
        let wakers = self.wakers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for sender in wakers.values() {
            sender.send_modify(|_| {});
        }
    }

    /// Returns a receiver that changes after every identity change.
    /// How many times channels or organizations changed in this process.
    pub(crate) fn configuration_generation(&self) -> u64 {
        self.configuration.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Marks what was read of channels and organizations before as stale.
    pub(crate) fn configuration_changed(&self) {
        self.configuration.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn identity_changes(&self) -> watch::Receiver<u64> {
        self.identity.subscribe()
    }

    /// Returns a receiver that changes whenever the organization's log grows.
    pub fn watch(&self, organization_id: OrganizationId) -> watch::Receiver<i64> {
        self.sender(organization_id).subscribe()
    }

    /// Returns the organization's current cursor: the `seq` of its newest event.
    pub async fn head(&self, organization_id: OrganizationId) -> Result<i64> {
        let organization = organizations::Entity::find_by_id(organization_id.uuid())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("organization"))?;
        Ok(organization.event_seq)
    }

    /// Returns up to `limit` events after the cursor `after`, oldest first.
    pub async fn read_after(&self, organization_id: OrganizationId, after: i64, limit: u64) -> Result<Vec<Event>> {
        let rows = events::Entity::find()
            .filter(events::Column::OrganizationId.eq(organization_id.uuid()))
            .filter(events::Column::Seq.gt(after))
            .order_by_asc(events::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Event::from).collect())
    }

    /// Returns every event after `after`, then each new one as it is
    /// committed, forever. Behind the head it reads the table, in batches;
    /// at the head it takes the organization's shared tail's broadcast
    /// ([`Tail`]). A follower that falls behind the broadcast (lagged) reads
    /// the table again: nothing is lost, and nothing is buffered beyond one
    /// batch and the broadcast's ring.
    pub fn follow(self: &Arc<Self>, organization_id: OrganizationId, after: i64) -> EventStream {
        let log = Arc::clone(self);
        let open = Open::follower();
        Box::pin(async_stream::try_stream! {
            let _open = open;
            let mut cursor = after;
            loop {
                // Subscribed before reading how far the tail is, so nothing it
                // broadcasts from then on is missed.
                // Futures that query the database are boxed while they run,
                // so an idle follower's state (waiting on `live`) stays small.
                let (mut live, position) = Box::pin(log.tail(organization_id)).await?;
                // Catch up from the table to where the tail is.
                loop {
                    if cursor >= *position.borrow() {
                        break;
                    }
                    let batch = Box::pin(log.read_after(organization_id, cursor, READ_BATCH)).await?;
                    if batch.is_empty() {
                        break;
                    }
                    for event in batch {
                        cursor = event.seq;
                        record_lag(*position.borrow() - cursor);
                        yield event;
                    }
                }
                // Live: the tail's events, in order, once each.
                loop {
                    match live.recv().await {
                        Ok(event) if event.seq <= cursor => {}
                        Ok(event) if event.seq == cursor + 1 => {
                            cursor = event.seq;
                            // What the tail has broadcast that this one has not read yet.
                            record_lag(live.len() as i64);
                            yield Event::clone(&event);
                        }
                        // A gap, lagging behind the ring, or the tail gone:
                        // read the table again.
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => {
                            break;
                        }
                    }
                }
            }
        })
    }

    /// Subscribes to the organization's shared tail, starting it (at the
    /// log's head) if it is not running.
    async fn tail(
        self: &Arc<Self>,
        organization_id: OrganizationId,
    ) -> Result<(broadcast::Receiver<Arc<Event>>, watch::Receiver<i64>)> {
        if let Some(subscribed) = self.subscribe_tail(organization_id) {
            return Ok(subscribed);
        }
        let head = self.head(organization_id).await?;
        let mut tails = self.tails.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tail = tails.entry(organization_id).or_insert_with(|| {
            let (events, _) = broadcast::channel(TAIL_RING);
            let (moved, position) = watch::channel(head);
            tokio::spawn(Arc::clone(self).run_tail(organization_id, events.clone(), moved, head));
            Tail { events, position }
        });
        Ok((tail.events.subscribe(), tail.position.clone()))
    }

    fn subscribe_tail(
        &self,
        organization_id: OrganizationId,
    ) -> Option<(broadcast::Receiver<Arc<Event>>, watch::Receiver<i64>)> {
        let tails = self.tails.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tails.get(&organization_id).map(|tail| (tail.events.subscribe(), tail.position.clone()))
    }

    /// The shared tail's task: reads after each wake-up, broadcasts, and ends
    /// once nobody follows (decided under the map's lock, so a follower never
    /// subscribes to a tail that is ending).
    async fn run_tail(
        self: Arc<Self>,
        organization_id: OrganizationId,
        events: broadcast::Sender<Arc<Event>>,
        moved: watch::Sender<i64>,
        mut cursor: i64,
    ) {
        let _open = Open::tail();
        let mut waker = self.watch(organization_id);
        loop {
            {
                let mut tails = self.tails.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if events.receiver_count() == 0 {
                    tails.remove(&organization_id);
                    return;
                }
            }
            waker.borrow_and_update();
            let batch = match self.read_after(organization_id, cursor, READ_BATCH).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(organization = %organization_id, error = ?error.cause(), "cannot read the event log");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = waker.changed() => {}
                    _ = tokio::time::sleep(SAFETY_POLL) => {}
                }
                continue;
            }
            for event in batch {
                cursor = event.seq;
                // The log, not the notification, is the source of truth: an
                // identity change whose notification was lost still ends the
                // sessions and streams it revokes, by the next safety poll.
                if is_identity_kind(&event.kind) {
                    self.identity_changed(organization_id, event.seq);
                }
                let _ = events.send(Arc::new(event));
            }
            moved.send_replace(cursor);
        }
    }

    /// Like [`Self::follow`], starting after `after` or, when it is absent,
    /// at the newest event (only what happens from now on).
    pub async fn follow_from(
        self: &Arc<Self>,
        organization_id: OrganizationId,
        after: Option<i64>,
    ) -> Result<EventStream> {
        let after = match after {
            Some(cursor) if cursor < 0 => return Err(Error::invalid_argument("malformed cursor")),
            Some(cursor) => cursor,
            None => self.head(organization_id).await?,
        };
        Ok(self.follow(organization_id, after))
    }

    /// Tells the other replicas (PostgreSQL) that the organization's log
    /// reached `seq`, after the commit: sent by [`Self::notify_postgres`],
    /// coalesced, outside any transaction, so notifying never serialises
    /// commits. A lost announcement costs a reader at most one safety poll:
    /// the log is the source of truth.
    pub fn announce(&self, organization_id: OrganizationId, seq: i64, identity: bool) {
        if self.db.get_database_backend() == DbBackend::Postgres {
            let _ = self.announcements.send(Announcement { organization_id, seq, identity });
        }
    }

    /// Sends the announcements until the task is dropped: whatever arrived
    /// within a couple of milliseconds of the first goes out as one
    /// notification per organization (its newest head).
    pub async fn notify_postgres(self: Arc<Self>) {
        let Some(mut pending) = self.pending_announcements.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        while let Some(first) = pending.recv().await {
            tokio::time::sleep(ANNOUNCE_COALESCING).await;
            let mut heads: HashMap<OrganizationId, (i64, bool)> = HashMap::new();
            let mut add = |announcement: Announcement| {
                let head = heads.entry(announcement.organization_id).or_insert((0, false));
                head.0 = Ord::max(head.0, announcement.seq);
                head.1 |= announcement.identity;
            };
            add(first);
            while let Ok(next) = pending.try_recv() {
                add(next);
            }
            for (organization_id, (seq, identity)) in heads {
                let sent = self
                    .db
                    .execute_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT pg_notify($1, $2)",
                        [POSTGRES_CHANNEL.into(), notification(organization_id, seq, identity).into()],
                    ))
                    .await;
                if let Err(error) = sent {
                    tracing::warn!(%error, "cannot notify other replicas; they will poll");
                }
            }
        }
    }

    /// Listens for other processes' wake-ups on PostgreSQL until the task is
    /// dropped; reconnects after errors.
    pub async fn listen_postgres(self: Arc<Self>, pool: sea_orm::sqlx::PgPool) {
        loop {
            let mut resync = true;
            let error = match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(mut listener) => match listener.listen(POSTGRES_CHANNEL).await {
                    // What was announced while not listening (at start, or
                    // while reconnecting) is not lost: every follower reads
                    // the log again and every stream checks its caller again.
                    Ok(()) => loop {
                        if std::mem::take(&mut resync) {
                            self.wake_all();
                            self.wake_identity();
                        }
                        match listener.recv().await {
                            Ok(notification) => self.wake_from_notification(notification.payload()),
                            Err(error) => break error,
                        }
                    },
                    Err(error) => error,
                },
                Err(error) => error,
            };
            tracing::warn!(%error, "event listener lost its postgres connection; reconnecting");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn wake_from_notification(&self, payload: &str) {
        let mut parts = payload.split(':');
        let parsed = (|| {
            let organization_id = OrganizationId::parse(parts.next()?).ok()?;
            let seq = parts.next()?.parse().ok()?;
            let identity = match parts.next() {
                None => false,
                Some("identity") => true,
                Some(_) => return None,
            };
            Some((organization_id, seq, identity))
        })();
        match parsed {
            Some((organization_id, seq, identity)) => {
                self.wake(organization_id, seq);
                if identity {
                    self.identity_changed(organization_id, seq);
                }
            }
            None => tracing::warn!(payload, "ignoring a malformed event notification"),
        }
    }
}

/// Advances the organization's cursor and inserts its events in one
/// statement (PostgreSQL): the organization row, the lock every writer of
/// the organization queues on, is then held for one round trip less — from
/// this statement to the commit, not from the advance through the insert.
async fn append_in_one_statement(
    tx: &DatabaseTransaction,
    organization_id: OrganizationId,
    events: Vec<NewEvent>,
) -> Result<i64> {
    const COLUMNS: usize = 6;
    let count = events.len() as i64;
    let mut sql = String::from(
        "WITH advanced AS (UPDATE organizations SET event_seq = event_seq + $1 WHERE id = $2 RETURNING event_seq) \
         INSERT INTO events (organization_id, seq, kind, channel_id, chat_id, payload, created_at) \
         SELECT $2, advanced.event_seq - $1 + new.ordinal, new.kind, new.channel_id, new.chat_id, new.payload, new.created_at \
         FROM advanced, (VALUES ",
    );
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(2 + COLUMNS * events.len());
    values.push(count.into());
    values.push(organization_id.uuid().into());
    for (ordinal, event) in (1_i64..).zip(events) {
        let first = values.len() + 1;
        if ordinal > 1 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}::bigint, ${}::text, ${}::uuid, ${}::uuid, ${}::jsonb, ${}::timestamptz)",
            first,
            first + 1,
            first + 2,
            first + 3,
            first + 4,
            first + 5
        ));
        values.push(ordinal.into());
        values.push(event.kind.into());
        values.push(event.channel_id.map(|id| id.uuid()).into());
        values.push(event.chat_id.map(|id| id.uuid()).into());
        values.push(event.payload.into());
        values.push(event.at.into());
    }
    sql.push_str(") AS new (ordinal, kind, channel_id, chat_id, payload, created_at) RETURNING seq");
    let rows = tx.query_all_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
    let mut last: Option<i64> = None;
    for row in rows {
        let seq: i64 = row.try_get("", "seq")?;
        last = Some(last.map_or(seq, |last| std::cmp::max(last, seq)));
    }
    last.ok_or_else(|| Error::not_found("organization"))
}

impl From<events::Model> for Event {
    fn from(row: events::Model) -> Self {
        Self {
            organization_id: row.organization_id.into(),
            seq: row.seq,
            kind: row.kind,
            channel_id: row.channel_id.map(Into::into),
            chat_id: row.chat_id.map(Into::into),
            payload: row.payload,
            created_at: row.created_at,
        }
    }
}

#[cfg(test)]
mod kind_filter_tests {
    use super::*;

    #[test]
    fn kind_filters_match_kinds_and_dotted_prefixes() {
        let filter = KindFilter::parse(&["ticket.".into(), "chat.converted".into()]).unwrap();
        assert!(filter.matches("ticket.created") && filter.matches("chat.converted"));
        assert!(
            !filter.matches("chat.converted_again")
                && !filter.matches("tickets.created")
                && !filter.matches("message.created")
        );
        assert!(KindFilter::parse(&[]).unwrap().matches("anything"));
        assert!(KindFilter::parse(&["Ticket.*".into()]).is_err());
        assert!(KindFilter::parse(&[String::new()]).is_err());
    }
}

#[cfg(test)]
mod tail_tests {
    use futures::StreamExt;

    use super::*;
    use crate::secrets::MasterKey;
    use crate::{Core, CoreConfig};

    async fn core(dir: &std::path::Path) -> (Core, OrganizationId) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!("sqlite://{}?mode=rwc", dir.join("events.db").display());
        let core = Core::open(CoreConfig::new(url, MasterKey::generate())).await.unwrap();
        let organization = organizations::Entity::find().one(core.db()).await.unwrap();
        let id = match organization {
            Some(organization) => organization.id.into(),
            None => {
                let (organization, _) = core
                    .organizations()
                    .create(crate::organizations::CreateOrganization {
                        name: crate::organizations::Name::parse("Acme").unwrap(),
                        portal_name: crate::organizations::PortalName::parse("acme").unwrap(),
                        admin_email: crate::auth::Email::parse("admin@acme.example").unwrap(),
                        admin_name: crate::organizations::Name::parse("Admin").unwrap(),
                        admin_password: crate::auth::Password::parse("a long enough password").unwrap(),
                    })
                    .await
                    .unwrap();
                organization.id
            }
        };
        (core, id)
    }

    async fn append(core: &Core, organization_id: OrganizationId, count: usize) {
        let mut write = core.write().await.unwrap();
        for n in 0..count {
            write
                .append(organization_id, NewEvent::new("test.appended", serde_json::json!({"n": n}), core.now()))
                .await
                .unwrap();
        }
        write.commit().await.unwrap();
    }

    fn tails(core: &Core) -> usize {
        core.events().tails.lock().unwrap().len()
    }

    async fn next_seqs(stream: &mut EventStream, count: usize) -> Vec<i64> {
        let mut seqs = Vec::with_capacity(count);
        while seqs.len() < count {
            let event = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("an event in time");
            seqs.push(event.unwrap().unwrap().seq);
        }
        seqs
    }

    #[tokio::test]
    async fn followers_share_one_tail_and_each_gets_every_event_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (core, organization_id) = core(dir.path()).await;
        let head = core.events().head(organization_id).await.unwrap();
        let mut followers: Vec<EventStream> = (0..20).map(|_| core.events().follow(organization_id, head)).collect();
        // A follower subscribes to the tail when first polled.
        append(&core, organization_id, 3).await;
        let expected: Vec<i64> = (head + 1..=head + 3).collect();
        for follower in &mut followers {
            assert_eq!(next_seqs(follower, 3).await, expected);
        }
        assert_eq!(tails(&core), 1, "one tail for the organization, however many follow");

        // One that starts behind catches up from the table, then goes live.
        let mut late = core.events().follow(organization_id, head);
        append(&core, organization_id, 2).await;
        assert_eq!(next_seqs(&mut late, 5).await, (head + 1..=head + 5).collect::<Vec<_>>());
        assert_eq!(next_seqs(&mut followers[0], 2).await, vec![head + 4, head + 5]);
    }

    #[tokio::test]
    async fn a_follower_that_falls_behind_the_ring_reads_the_table_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (core, organization_id) = core(dir.path()).await;
        let head = core.events().head(organization_id).await.unwrap();
        let mut slow = core.events().follow(organization_id, head);
        let mut fast = core.events().follow(organization_id, head);
        append(&core, organization_id, 1).await;
        assert_eq!(next_seqs(&mut slow, 1).await, vec![head + 1]);
        // Far more than the ring holds, while `slow` reads nothing.
        let many = TAIL_RING * 2 + 10;
        for _ in 0..(many / 100) {
            append(&core, organization_id, 100).await;
        }
        append(&core, organization_id, many % 100).await;
        let all: Vec<i64> = (head + 1..=head + 1 + many as i64).collect();
        assert_eq!(next_seqs(&mut fast, all.len()).await, all);
        assert_eq!(next_seqs(&mut slow, many).await, all[1..].to_vec());
    }

    #[tokio::test]
    async fn the_tail_ends_when_nobody_follows() {
        let dir = tempfile::tempdir().unwrap();
        let (core, organization_id) = core(dir.path()).await;
        let head = core.events().head(organization_id).await.unwrap();
        let mut follower = core.events().follow(organization_id, head);
        append(&core, organization_id, 1).await;
        next_seqs(&mut follower, 1).await;
        assert_eq!(tails(&core), 1);
        drop(follower);
        // The tail notices at its next wake-up.
        append(&core, organization_id, 1).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tails(&core) > 0 {
            assert!(tokio::time::Instant::now() < deadline, "the tail did not end");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
