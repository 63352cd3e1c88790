//! Start-up as a library function: build (connect, migrate, bootstrap,
//! bind), then serve until told to stop, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use madoguchi_channels::line::client::LineEndpoints;
use madoguchi_channels::wechat::client::WechatEndpoints;
use madoguchi_core::auth::TokenSettings;
use madoguchi_core::clock::Clock;
use madoguchi_core::platform::OperatorKeyDigest;
use madoguchi_core::secrets::MasterKey;
use madoguchi_core::{Core, CoreConfig, FirstOrganization};
use madoguchi_graphql::{Limits, Schemas};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::{HttpState, RouterOptions, router};
use crate::settings::Settings;

/// A built server: connected, migrated, listening, not yet serving.
#[derive(Debug)]
pub struct Application {
    core: Core,
    settings: Settings,
    http_listener: TcpListener,
    grpc_listener: TcpListener,
    metrics_listener: TcpListener,
}

impl Application {
    /// Connects to the database, migrates it, creates the first organization
    /// on an empty database, and binds the listeners (port 0 picks a free
    /// port). Everything time-dependent reads `clock` (the system clock in
    /// production; tests move a manual one).
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        crate::telemetry::metrics();
        let core = open_core(&settings, clock).await?;
        bootstrap(&core, &settings).await?;
        let http_listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
        let grpc_listener = TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.grpc_addr))?;
        let metrics_listener = TcpListener::bind(settings.metrics_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.metrics_addr))?;
        Ok(Self { core, settings, http_listener, grpc_listener, metrics_listener })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener.local_addr().expect("a bound listener has an address")
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener.local_addr().expect("a bound listener has an address")
    }

    /// Where Prometheus scrapes `/metrics` (loopback unless configured).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener.local_addr().expect("a bound listener has an address")
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Serves HTTP and gRPC until `shutdown` resolves, then stops accepting,
    /// lets in-flight requests finish, closes WebSockets with 1001, and
    /// returns once everything has drained (or the grace period is over).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stopping = CancellationToken::new();
        let sessions = TaskTracker::new();
        let schemas = Schemas::build(
            self.core.clone(),
            Limits {
                max_depth: self.settings.graphql_max_depth,
                max_complexity: self.settings.graphql_max_complexity,
                max_aliases: self.settings.graphql_max_aliases,
                introspection: self.settings.graphql_introspection,
            },
        );
        let (http_addr, grpc_addr) = (self.http_addr(), self.grpc_addr());
        let state =
            HttpState { core: self.core.clone(), schemas, shutdown: stopping.clone(), sessions: sessions.clone() };
        let router = router(
            state,
            RouterOptions { body_limit: self.settings.body_limit_bytes, graphiql: self.settings.graphiql },
        );
        // The peer's address reaches handlers (sign-in limits per address).
        let http = axum::serve(self.http_listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(stopping.clone().cancelled_owned());
        let grpc_router = crate::panics::guard_grpc(madoguchi_grpc::routes(self.core.clone()).await?);
        let grpc =
            axum::serve(self.grpc_listener, grpc_router).with_graceful_shutdown(stopping.clone().cancelled_owned());
        let metrics = axum::serve(self.metrics_listener, crate::http::metrics_router())
            .with_graceful_shutdown(stopping.clone().cancelled_owned());
        // Aborted however this function ends, even when its future is dropped.
        let _background = AbortOnDrop(self.core.spawn_background());

        tracing::info!(http = %http_addr, grpc = %grpc_addr, "serving");
        let trigger = stopping.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: draining requests and connections");
            trigger.cancel();
        });
        let grace = Duration::from_secs(self.settings.shutdown_grace_seconds);
        let served = async {
            let (http, grpc, metrics) = tokio::join!(http.into_future(), grpc.into_future(), metrics.into_future());
            metrics.context("metrics server failed")?;
            sessions.close();
            sessions.wait().await;
            http.context("http server failed")?;
            grpc.context("grpc server failed")
        };
        tokio::pin!(served);
        let result = tokio::select! {
            result = &mut served => result,
            _ = async { stopping.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("grace period over; dropping what is left");
                Ok(())
            }
        };
        result
    }
}

/// Aborts its tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Opens the core with the settings' database and master key.
pub async fn open_core(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Core> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    }
    let master_key = master_key(settings)?;
    let mut config = CoreConfig::new(settings.database_url.clone(), master_key);
    config.clock = clock;
    config.max_connections = settings.database_max_connections;
    config.public_base_url = settings.public_base_url.clone();
    config.blob_dir = settings.data_dir.join("blobs");
    config.line_endpoints = LineEndpoints {
        api_base: settings.line.api_base.parse().context("line.api_base is not a URL")?,
        data_base: settings.line.data_base.parse().context("line.data_base is not a URL")?,
    };
    config.reply_window = chrono::Duration::seconds(settings.line.reply_window_seconds);
    config.wechat_endpoints =
        WechatEndpoints { api_base: settings.wechat.api_base.parse().context("wechat.api_base is not a URL")? };
    config.outbound_ips = settings.wechat.outbound_ips.clone();
    config.operator_key = match &settings.platform_operator_key {
        Some(key) => Some(OperatorKeyDigest::of(key).context("platform_operator_key")?),
        None => None,
    };
    config.job_workers = settings.job_workers;
    config.job_lease = chrono::Duration::seconds(settings.job_lease_seconds.max(1));
    config.intake_batch_events = settings.intake_batch_events.max(1);
    config.tokens = TokenSettings {
        issuer: settings.token_issuer.clone(),
        audience: settings.token_audience.clone(),
        lifetime: chrono::Duration::minutes(settings.session_minutes),
    };
    Ok(Core::open(config).await?)
}

/// Returns the configured master key, or the one in `data_dir/master.key`,
/// generating it on first start.
fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(key) = &settings.master_key {
        return Ok(MasterKey::from_base64(key.expose())?);
    }
    if settings.database_url.starts_with("postgres") {
        anyhow::bail!(
            "set master_key (MADOGUCHI_MASTER_KEY, base64 of 32 bytes, e.g. `openssl rand -base64 32`) when using \
             PostgreSQL: every replica sharing the database must seal secrets and sign sessions with the same key, \
             and a key generated into one replica's data_dir would differ from the others'"
        );
    }
    let path = settings.data_dir.join("master.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(MasterKey::from_base64(&text)?);
    }
    let key = MasterKey::generate();
    write_private(&path, key.to_base64().expose())?;
    tracing::warn!(path = %path.display(), "generated a master key; set MADOGUCHI_MASTER_KEY in production");
    Ok(key)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

async fn bootstrap(core: &Core, settings: &Settings) -> anyhow::Result<()> {
    let first = FirstOrganization {
        organization_name: settings.bootstrap_organization_name.clone(),
        portal_name: settings.bootstrap_portal_name.clone(),
        admin_email: settings.bootstrap_admin_email.clone(),
        admin_password: settings.bootstrap_admin_password.clone(),
    };
    if let Some(created) = core.bootstrap(first).await? {
        tracing::info!(portal = %created.portal_name, admin = %created.admin_email, "created the first organization");
        if let Some(password) = created.generated_password {
            // Printed once, to the terminal only: never to the logs.
            eprintln!(
                "\n  First admin created.\n  portal:   {}\n  email:    {}\n  password: {}\n  (shown once; change it after logging in)\n",
                created.portal_name,
                created.admin_email,
                password.expose()
            );
        }
    }
    Ok(())
}
