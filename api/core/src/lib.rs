//! Madoguchi's core: the platform itself, behind every surface.
//!
//! GraphQL, gRPC and the webhooks are thin adapters over the use cases here;
//! a rule that lives in an adapter is a bug, because the other surfaces would
//! miss it. This crate knows nothing of axum, tonic, prost or async-graphql.
//!
//! # Layout
//! - [`error`]: the one error type and its codes.
//! - [`ids`], [`clock`], [`secrets`]: typed ids, time, secrets in memory and at rest.
//! - [`db`]: connecting, migrating, write transactions.
//! - [`events`]: the append-only event log that subscriptions and streams read.
//! - [`auth`]: callers, permissions, tokens, passwords, API key format.
//! - [`organizations`], [`agents`], [`api_keys`]: tenancy and identity use cases.
//! - [`platform`]: provisioning organizations, for whoever runs the platform.
//! - [`tickets`]: tickets made from chats, reached by one rule across a helpdesk link.
//! - [`helpdesk`]: ZSC keys, the chat side's link to a helpdesk portal, its rule and department mapping.
//! - [`channels`], [`chats`], [`contacts`]: channels, the agent workspace, customers.
//! - [`intake`]: provider-neutral inbound events → receipt, end user, chat, message, jobs.
//! - [`delivery`]: outbound messages → delivery jobs → states; one strategy per provider.
//! - [`providers`]: what is each provider's own (LINE: webhook parsing, reply/push, quota, its jobs).
//! - [`rate_limits`]: attempts counted in the database (sign-ins, passcodes).
//! - [`jobs`], [`blobs`], [`media`]: the durable typed work queue with fenced leases, media storage and links.
//! - [`kinds`]: the enumerated values (statuses, kinds, modes).
//!
//! Use cases are reached through [`Core`]: `core.agents().create(&caller, command)`.

pub mod agents;
pub mod api_keys;
pub mod auth;
pub mod blobs;
pub mod bounds;
pub mod channels;
pub mod chats;
pub mod clock;
pub mod contacts;
pub mod db;
pub mod delivery;
pub mod error;
pub mod events;
pub mod helpdesk;
pub mod ids;
pub mod intake;
pub mod jobs;
pub mod kinds;
pub mod media;
pub mod once_per_key;
pub mod organizations;
pub mod platform;
pub mod providers;
pub(crate) mod rate_limits;
pub mod secrets;
pub mod submissions;
pub mod tickets;
pub mod timers;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use madoguchi_channels::line::client::{LineClient, LineEndpoints};
use madoguchi_channels::wechat::client::{WechatClient, WechatEndpoints};
use madoguchi_entity::jobs as job_rows;
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::Notify;

pub use error::{Error, ErrorCode, Result};

/// How many times a transaction that lost a race is run in all.
const TRANSACTION_ATTEMPTS: u64 = 5;

use crate::auth::{Email, Password, TokenSettings, Tokens};
use crate::blobs::{BlobStore, DirectoryBlobStore};
use crate::clock::{Clock, SystemClock};
use crate::db::Write;
use crate::events::EventLog;
use crate::organizations::{CreateOrganization, Name, PortalName};
use crate::secrets::{MasterKey, Secret, SecretBox};

/// Everything the core needs to start.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// `sqlite://…?mode=rwc` or `postgres://…`.
    pub database_url: String,
    pub max_connections: u32,
    pub master_key: MasterKey,
    pub tokens: TokenSettings,
    pub clock: Arc<dyn Clock>,
    /// How LINE and WeChat reach this server; webhook and media URLs start so.
    pub public_base_url: String,
    /// Where media is kept.
    pub blob_dir: PathBuf,
    /// LINE's API hosts.
    pub line_endpoints: LineEndpoints,
    /// How long a LINE reply token is trusted after its message arrived.
    pub reply_window: chrono::Duration,
    /// WeChat's API host.
    pub wechat_endpoints: WechatEndpoints,
    /// The addresses this platform calls WeChat from, shown to admins for
    /// the account's IP allow-list.
    pub outbound_ips: Vec<String>,
    /// The platform operator's key for provisioning over gRPC; `None`
    /// leaves provisioning to the command line.
    pub operator_key: Option<platform::OperatorKeyDigest>,
    /// How many job workers this process runs.
    pub job_workers: usize,
    /// How long a claimed job stays reserved without its worker renewing it.
    pub job_lease: chrono::Duration,
    /// Most webhook events that share one intake transaction (see
    /// [`intake::group_commit`]); `1` commits every delivery alone.
    pub intake_batch_events: usize,
}

impl CoreConfig {
    pub fn new(database_url: impl Into<String>, master_key: MasterKey) -> Self {
        Self {
            database_url: database_url.into(),
            max_connections: 10,
            master_key,
            tokens: TokenSettings::default(),
            clock: Arc::new(SystemClock),
            public_base_url: "http://localhost:8080".into(),
            blob_dir: PathBuf::from("data/blobs"),
            line_endpoints: LineEndpoints::production(),
            reply_window: chrono::Duration::seconds(30),
            wechat_endpoints: WechatEndpoints::production(),
            outbound_ips: Vec::new(),
            operator_key: None,
            job_workers: 2,
            job_lease: chrono::Duration::seconds(30),
            intake_batch_events: 256,
        }
    }
}

/// The platform. Cheap to clone; share one per process.
#[derive(Clone, Debug)]
pub struct Core {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: DatabaseConnection,
    /// Where write transactions run: on SQLite a connection of its own
    /// (see [`db::connect_writer`]); on PostgreSQL the pool.
    writer: DatabaseConnection,
    events: Arc<EventLog>,
    secrets: SecretBox,
    tokens: Tokens,
    clock: Arc<dyn Clock>,
    blobs: Arc<dyn BlobStore>,
    line: LineClient,
    wechat: WechatClient,
    outbound_ips: Vec<String>,
    operator_key: Option<platform::OperatorKeyDigest>,
    job_waker: Notify,
    public_base_url: String,
    reply_window: chrono::Duration,
    job_workers: usize,
    job_lease: chrono::Duration,
    media_key: [u8; 32],
    writers: db::Writers,
    group_commit: intake::GroupCommit,
    receiving_channels: channels::ReceivingChannels,
    chat_snapshots: chats::ChatSnapshots,
}

impl Core {
    /// Connects to the database and brings its schema up to date.
    pub async fn open(config: CoreConfig) -> Result<Self> {
        let db = db::connect(&config.database_url, config.max_connections).await?;
        db::migrate(&db).await?;
        let events = Arc::new(EventLog::new(db.clone()));
        let backend = db.get_database_backend();
        let writer = match backend {
            DbBackend::Sqlite => db::connect_writer(&config.database_url).await?,
            _ => db.clone(),
        };
        // SQLite has one writer; on PostgreSQL a few batches of different
        // organizations commit side by side (one writer per organization at
        // a time: see `group_commit`), each on a connection of its own.
        let max_writers =
            if backend == DbBackend::Sqlite { 1 } else { (config.max_connections as usize / 2).clamp(1, 4) };
        let mut group_commit = intake::GroupCommit::new(config.intake_batch_events, max_writers);
        if group_commit.shares() {
            let thread =
                intake::writer_thread::WriterThread::start(backend, &config.database_url, max_writers as u32).await?;
            group_commit = group_commit.on(thread);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("madoguchi/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::internal)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                writer,
                events,
                secrets: SecretBox::new(&config.master_key),
                tokens: Tokens::new(&config.master_key, config.tokens),
                clock: config.clock,
                blobs: Arc::new(DirectoryBlobStore::new(config.blob_dir)),
                line: LineClient::new(http.clone(), config.line_endpoints),
                wechat: WechatClient::new(http, config.wechat_endpoints),
                outbound_ips: config.outbound_ips,
                operator_key: config.operator_key,
                job_waker: Notify::new(),
                public_base_url: config.public_base_url.trim_end_matches('/').to_owned(),
                reply_window: config.reply_window,
                job_workers: config.job_workers,
                job_lease: config.job_lease,
                media_key: config.master_key.derive("madoguchi media urls v1"),
                writers: db::Writers::default(),
                receiving_channels: channels::ReceivingChannels::default(),
                group_commit,
                chat_snapshots: chats::chat_snapshots(),
            }),
        })
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn backend(&self) -> DbBackend {
        self.inner.db.get_database_backend()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The clock everything time-dependent reads (session and WebSocket
    /// expiry, reply windows, quotas, timers); tests move a manual one.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Returns the event log.
    pub fn events(&self) -> &Arc<EventLog> {
        &self.inner.events
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.inner.secrets
    }

    pub(crate) fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// Runs `transaction` again when it lost a race with another one (a
    /// serialization failure or a deadlock on PostgreSQL), a few times with a
    /// short random pause, before giving up with `UNAVAILABLE`. The closure
    /// must run its whole transaction each time.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut transaction: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt: u64 = 1;
        loop {
            match transaction().await {
                Err(error) if error.is_transient() && attempt < TRANSACTION_ATTEMPTS => {
                    tracing::debug!(attempt, cause = ?error.cause(), "a transaction lost a race; running it again");
                    let pause = rand::random_range(1..=20 * attempt);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    attempt += 1;
                }
                Err(error) if error.is_transient() => {
                    tracing::warn!(attempt, cause = ?error.cause(), "a transaction kept losing races; giving up");
                    return Err(error);
                }
                other => return other,
            }
        }
    }

    /// Begins a write transaction whose events wake readers on commit.
    pub(crate) async fn write(&self) -> Result<Write<'_>> {
        self.write_on(&self.inner.writer).await
    }

    /// Runs `statement` in a write transaction of its own and returns the
    /// rows it changed: for a lone write that would otherwise run on a
    /// reader's connection. On SQLite it then queues with this process's
    /// other writers ([`db::Writers`]) instead of waiting in SQLite's busy
    /// handler, which sleeps between tries (up to 100 ms each) and, while
    /// intake keeps the writer busy, can miss the lock try after try.
    pub(crate) async fn write_alone(&self, statement: impl sea_orm::QueryTrait) -> Result<u64> {
        use sea_orm::ConnectionTrait;
        let write = self.write().await?;
        let statement = statement.build(write.get_database_backend());
        let changed = write.execute_raw(statement).await?.rows_affected();
        write.commit().await?;
        Ok(changed)
    }

    /// Begins an intake transaction: on the batch writers' own connections
    /// when they have them (see [`intake::writer_thread`]), else as
    /// [`Core::write`].
    pub(crate) async fn intake_write(&self) -> Result<Write<'_>> {
        self.write_on(self.inner.group_commit.db().unwrap_or(&self.inner.writer)).await
    }

    async fn write_on<'c>(&'c self, db: &'c DatabaseConnection) -> Result<Write<'c>> {
        Write::begin(db, &self.inner.events, &self.inner.job_waker, &self.inner.writers).await
    }

    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.inner.blobs
    }

    pub(crate) fn line(&self) -> &LineClient {
        &self.inner.line
    }

    pub(crate) fn wechat(&self) -> &WechatClient {
        &self.inner.wechat
    }

    /// The addresses this platform calls providers from.
    pub fn outbound_ips(&self) -> &[String] {
        &self.inner.outbound_ips
    }

    pub(crate) fn operator_key(&self) -> Option<&platform::OperatorKeyDigest> {
        self.inner.operator_key.as_ref()
    }

    /// The helpdesk integration: ZSC keys, the link, its rule and mapping.
    pub fn helpdesk(&self) -> helpdesk::Helpdesk<'_> {
        helpdesk::Helpdesk::new(self)
    }

    /// Tickets: converting chats, reading, searching, moving them.
    pub fn tickets(&self) -> tickets::Tickets<'_> {
        tickets::Tickets::new(self)
    }

    /// Provisioning organizations, for whoever runs the platform.
    pub fn platform(&self) -> platform::Platform<'_> {
        platform::Platform::new(self)
    }

    pub(crate) fn job_waker(&self) -> &Notify {
        &self.inner.job_waker
    }

    pub fn public_base_url(&self) -> &str {
        &self.inner.public_base_url
    }

    pub(crate) fn media_key(&self) -> [u8; 32] {
        self.inner.media_key
    }

    pub fn media(&self) -> media::MediaLinks<'_> {
        media::MediaLinks::new(self)
    }

    pub(crate) fn job_lease(&self) -> chrono::Duration {
        self.inner.job_lease
    }

    pub(crate) fn reply_window(&self) -> chrono::Duration {
        self.inner.reply_window
    }

    pub fn channels(&self) -> channels::Channels<'_> {
        channels::Channels::new(self)
    }

    pub fn chats(&self) -> chats::Chats<'_> {
        chats::Chats::new(self)
    }

    pub fn contacts(&self) -> contacts::Contacts<'_> {
        contacts::Contacts::new(self)
    }

    pub fn jobs(&self) -> jobs::Jobs<'_> {
        jobs::Jobs::new(self)
    }

    /// LINE's webhook (the provider module).
    pub fn line_inbound(&self) -> providers::line::LineInbound<'_> {
        providers::line::LineInbound::new(self)
    }

    /// WeChat's callback URL: verification and messages.
    pub fn wechat_inbound(&self) -> providers::wechat::WechatInbound<'_> {
        providers::wechat::WechatInbound::new(self)
    }

    /// Chats loaded once per event for every subscriber of this process.
    pub(crate) fn chat_snapshots(&self) -> &chats::ChatSnapshots {
        &self.inner.chat_snapshots
    }

    /// Webhook deliveries waiting to share the next intake transaction.
    pub(crate) fn receiving_channels(&self) -> &channels::ReceivingChannels {
        &self.inner.receiving_channels
    }

    pub(crate) fn group_commit(&self) -> &intake::GroupCommit {
        &self.inner.group_commit
    }

    /// The provider-neutral intake that providers' webhooks record through.
    pub(crate) fn intake(&self) -> intake::Intake<'_> {
        intake::Intake::new(self)
    }

    /// The provider-neutral outbound pipeline.
    pub(crate) fn delivery(&self) -> delivery::Delivery<'_> {
        delivery::Delivery::new(self, None)
    }

    /// Runs one claimed job and returns what became of it; its writes are
    /// fenced by `lease`. An error is retried by the worker within the
    /// kind's policy.
    pub(crate) async fn run_job(
        &self,
        job: &job_rows::Model,
        kind: &jobs::JobKind,
        lease: &jobs::Lease,
    ) -> Result<jobs::Outcome> {
        let outbound = providers::line::LineOutbound::fenced(self, lease);
        let policy = kind.retry_policy();
        match kind {
            jobs::JobKind::LineReply { chat_id } => outbound.run_reply(job, *chat_id, policy).await,
            jobs::JobKind::LinePush { message_id } => outbound.run_push(job, *message_id, policy).await,
            jobs::JobKind::LineFetchProfile { end_user_id } => {
                outbound.run_fetch_profile(job, *end_user_id, policy).await
            }
            jobs::JobKind::LineDownloadContent { attachment_id } => {
                outbound.run_download_content(job, *attachment_id, policy).await
            }
            jobs::JobKind::LineReconcileQuota { channel_id } => {
                outbound.run_reconcile_quota(job, *channel_id, policy).await
            }
            jobs::JobKind::WechatSend { message_id, allowance_month } => {
                let wechat = providers::wechat::WechatOutbound::fenced(self, lease);
                wechat.run_send(job, *message_id, allowance_month.as_deref(), policy).await
            }
            jobs::JobKind::WechatDownloadMedia { attachment_id } => {
                let wechat = providers::wechat::WechatOutbound::fenced(self, lease);
                wechat.run_download_media(job, *attachment_id, policy).await
            }
            jobs::JobKind::ChatCloseMissed { chat_id } => {
                timers::run(self, lease, timers::Timer::CloseMissed, *chat_id).await
            }
            jobs::JobKind::ChatCloseIdle { chat_id } => {
                timers::run(self, lease, timers::Timer::CloseIdle, *chat_id).await
            }
            jobs::JobKind::ChatAutoTicket { chat_id } => {
                timers::run(self, lease, timers::Timer::AutoTicket, *chat_id).await
            }
            jobs::JobKind::ChatConvert { chat_id, from, to, attended, by_timer } => {
                let number = self.tickets().convert_window(lease, *chat_id, (*from, *to), *attended, *by_timer).await?;
                tracing::info!(chat = %chat_id, ticket = ?number, "ended a ticket window");
                Ok(jobs::Outcome::Done)
            }
            jobs::JobKind::PasscodeExpire { passcode_id } => self.contacts().expire_passcode(lease, *passcode_id).await,
        }
    }

    pub fn submissions(&self) -> submissions::Submissions<'_> {
        submissions::Submissions::new(self)
    }

    pub fn organizations(&self) -> organizations::Organizations<'_> {
        organizations::Organizations::new(self)
    }

    pub fn agents(&self) -> agents::Agents<'_> {
        agents::Agents::new(self)
    }

    pub fn api_keys(&self) -> api_keys::ApiKeys<'_> {
        api_keys::ApiKeys::new(self)
    }

    /// Checks that a caller authenticated earlier still holds: the agent is
    /// active with the same role and session version, the API key is not
    /// revoked. Long-lived streams ask after every identity change.
    pub async fn still_authorized(&self, caller: &auth::Caller) -> Result<()> {
        match caller {
            auth::Caller::Agent(agent) => self.agents().still_valid(agent).await,
            auth::Caller::ApiKey(key) => self.api_keys().still_valid(key).await,
            auth::Caller::Operator { .. } => Ok(()),
        }
    }

    /// Ends `stream` with `UNAUTHENTICATED` as soon as `caller` no longer
    /// holds (see [`Self::still_authorized`]): checked when it starts and
    /// after every identity change, never while nothing changes.
    pub fn while_authorized(&self, caller: auth::Caller, stream: events::EventStream) -> events::EventStream {
        use futures::StreamExt;
        let core = self.clone();
        Box::pin(async_stream::try_stream! {
            let mut identity = core.events().identity_changes();
            identity.borrow_and_update();
            core.still_authorized(&caller).await?;
            let mut stream = stream;
            loop {
                let next = tokio::select! {
                    biased;
                    changed = identity.changed() => changed.is_ok().then_some(None),
                    event = stream.next() => event.map(Some),
                };
                match next {
                    // An identity changed; `None` when the core itself is gone.
                    Some(None) => core.still_authorized(&caller).await?,
                    Some(Some(event)) => yield event?,
                    None => break,
                }
            }
        })
    }

    /// Follows the organization's whole event log from `after` (or from now),
    /// for admins and `events:read` keys only, ending with `UNAUTHENTICATED`
    /// when the caller stops holding. Every surface streams the log through
    /// here.
    pub async fn follow_organization_log(
        &self,
        caller: &auth::Caller,
        after: Option<i64>,
    ) -> Result<events::EventStream> {
        caller.require(auth::Permission::FollowOrganizationLog)?;
        let events = self.events().follow_from(caller.organization_id(), after).await?;
        Ok(self.while_authorized(caller.clone(), events))
    }

    /// Checks that the database answers.
    pub async fn ready(&self) -> Result<()> {
        self.inner.db.ping().await.map_err(|error| Error::unavailable("database unavailable").with_source(error))
    }

    /// Starts the background work: job workers, on SQLite the WAL's
    /// checkpointer, and on PostgreSQL the wake-up listener. Returns the
    /// tasks to abort on shutdown; an aborted job is claimed again once its
    /// lease runs out, and every job is safe to run twice.
    pub fn spawn_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for number in 0..self.inner.job_workers {
            let core = self.clone();
            let worker = format!("{}-{number}", uuid::Uuid::new_v4().simple());
            tasks.push(tokio::spawn(async move { core.jobs().run_worker(worker, std::future::pending()).await }));
        }
        let core = self.clone();
        tasks.push(tokio::spawn(async move { core.jobs().observe_queue(std::time::Duration::from_secs(10)).await }));
        if self.backend() == DbBackend::Sqlite {
            let core = self.clone();
            tasks.push(tokio::spawn(async move { core.inner.writers.checkpoint_after_writes(&core.inner.db).await }));
        }
        if self.backend() == DbBackend::Postgres {
            let pool = self.inner.db.get_postgres_connection_pool().clone();
            tasks.push(tokio::spawn(Arc::clone(&self.inner.events).listen_postgres(pool)));
            tasks.push(tokio::spawn(Arc::clone(&self.inner.events).notify_postgres()));
        }
        tasks
    }

    /// On an empty database, creates the first organization and its admin.
    /// Returns what was created, with the password if one was generated.
    pub async fn bootstrap(&self, first: FirstOrganization) -> Result<Option<Bootstrapped>> {
        if self.organizations().count().await? > 0 {
            return Ok(None);
        }
        let generated = first.admin_password.is_none();
        let password = first
            .admin_password
            .map(|password| password.expose().clone())
            .unwrap_or_else(|| auth::random_string(auth::ALPHANUMERIC, 20));
        let command = CreateOrganization {
            name: Name::parse(&first.organization_name)?,
            portal_name: PortalName::parse(&first.portal_name)?,
            admin_email: Email::parse(&first.admin_email)?,
            admin_name: Name::parse("Administrator")?,
            admin_password: Password::parse(&password)?,
        };
        let (organization, _) = self.organizations().create(command.clone()).await?;
        Ok(Some(Bootstrapped {
            portal_name: organization.portal_name,
            admin_email: command.admin_email.to_string(),
            generated_password: generated.then(|| Secret::new(password)),
        }))
    }
}

/// The first organization and admin, from the settings.
#[derive(Clone, Debug)]
pub struct FirstOrganization {
    pub organization_name: String,
    pub portal_name: String,
    pub admin_email: String,
    /// `None` generates a password, returned once.
    pub admin_password: Option<Secret<String>>,
}

/// What [`Core::bootstrap`] created.
#[derive(Clone, Debug)]
pub struct Bootstrapped {
    pub portal_name: String,
    pub admin_email: String,
    pub generated_password: Option<Secret<String>>,
}
