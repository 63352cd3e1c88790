//! The end-to-end test harness: starts the real application on port 0 with a
//! fresh database (a SQLite file, or a new PostgreSQL database) and talks to
//! it over real HTTP, WebSocket and gRPC connections.
//!
//! PostgreSQL comes from `MADOGUCHI_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Without it, PostgreSQL
//! tests are skipped locally and fail under `CI=true`.

pub mod bench;
pub mod browser;
pub mod graphql_ws;
pub mod line;
pub mod wechat;

use std::net::SocketAddr;
use std::sync::OnceLock;

use madoguchi_core::Core;
use madoguchi_core::clock::ManualClock;
use madoguchi_core::secrets::Secret;
use madoguchi_server::{Application, Settings};
use sea_orm::sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// Returns the PostgreSQL server URL, or `None` when none answers (a
/// failure under `CI=true`).
pub async fn postgres_admin_url() -> Option<String> {
    static CHECKED: OnceLock<bool> = OnceLock::new();
    let url = std::env::var("MADOGUCHI_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let reachable = match CHECKED.get() {
        Some(reachable) => *reachable,
        None => {
            let reachable = PgConnection::connect(&url).await.is_ok();
            *CHECKED.get_or_init(|| reachable)
        }
    };
    if reachable {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("PostgreSQL is not reachable at {url}; under CI=true that is a failure, not a skip");
    }
    eprintln!("skipping: PostgreSQL is not reachable at {url}");
    None
}

/// `url` naming database `name` instead, its parameters (`?sslmode=…`,
/// `?host=/var/run/postgresql`) kept.
fn with_database(url: &str, name: &str) -> String {
    let (address, parameters) = url.split_once('?').map_or((url, None), |(address, query)| (address, Some(query)));
    let server = address.rsplit_once('/').map_or(address, |(server, _)| server);
    match parameters {
        Some(parameters) => format!("{server}/{name}?{parameters}"),
        None => format!("{server}/{name}"),
    }
}

/// A fresh database for one test, dropped afterwards.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates an empty database; `None` when PostgreSQL is wanted but absent.
    pub async fn create(backend: Backend, dir: &std::path::Path) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                Some(Self { url: format!("sqlite://{}?mode=rwc", dir.join("madoguchi.db").display()), postgres: None })
            }
            Backend::Postgres => {
                let admin = postgres_admin_url().await?;
                let name = format!("madoguchi_test_{}", uuid::Uuid::new_v4().simple());
                let mut connection = PgConnection::connect(&admin).await.expect("connect to postgres");
                connection
                    .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create test database");
                Some(Self { url: with_database(&admin, &name), postgres: Some((admin, name)) })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take() {
            // Drop runs outside any runtime guarantee: use a thread of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                runtime.block_on(async {
                    let mut connection = PgConnection::connect(&admin).await.ok()?;
                    connection.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await.ok()
                })
            })
            .join();
        }
    }
}

/// A running application.
#[derive(Debug)]
pub struct TestApp {
    /// The fake LINE API this application talks to.
    pub line: std::sync::Arc<madoguchi_fakes::FakeLine>,
    /// The fake WeChat API this application talks to.
    pub wechat: std::sync::Arc<madoguchi_fakes::FakeWechat>,
    /// The application's clock: the system's, until a test moves it ahead
    /// (`clock.advance(…)`) to skip a session's lifetime or a rate window.
    pub clock: std::sync::Arc<ManualClock>,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    /// The metrics listener (`/metrics`), apart from `http`.
    pub metrics: SocketAddr,
    pub core: Core,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub backend: Backend,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub database: TestDatabase,
    pub dir: tempfile::TempDir,
}

/// Settings for a test server on loopback with port 0.
pub fn test_settings(database_url: &str, dir: &std::path::Path) -> Settings {
    Settings {
        database_url: database_url.to_owned(),
        database_max_connections: 5,
        data_dir: dir.to_path_buf(),
        http_addr: ([127, 0, 0, 1], 0).into(),
        grpc_addr: ([127, 0, 0, 1], 0).into(),
        metrics_addr: ([127, 0, 0, 1], 0).into(),
        master_key: Some(Secret::new("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into())),
        bootstrap_admin_password: Some(Secret::new(ADMIN_PASSWORD.into())),
        bootstrap_portal_name: "acme".into(),
        bootstrap_organization_name: "Acme".into(),
        shutdown_grace_seconds: 5,
        public_base_url: "https://madoguchi.test".into(),
        line: madoguchi_server::settings::LineSettings { reply_window_seconds: 50, ..Default::default() },
        job_lease_seconds: 2,
        ..Settings::default()
    }
}

/// Starts the application on `backend`; `None` when PostgreSQL is absent
/// outside CI.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the application after letting the test change its settings.
pub async fn spawn_app_with(backend: Backend, change: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = TestDatabase::create(backend, dir.path()).await?;
    let fakes = Fakes {
        line: std::sync::Arc::new(madoguchi_fakes::FakeLine::start().await),
        wechat: std::sync::Arc::new(madoguchi_fakes::FakeWechat::start().await),
    };
    let mut settings = test_settings(&database.url, dir.path());
    settings.line.api_base = fakes.line.api_base().to_string();
    settings.line.data_base = fakes.line.data_base().to_string();
    settings.wechat.api_base = fakes.wechat.base_url().to_string();
    settings.wechat.outbound_ips = vec!["203.0.113.7".into()];
    change(&mut settings);
    let clock = std::sync::Arc::new(ManualClock::following_system());
    Some(start(settings, clock, backend, database, dir, fakes).await)
}

/// Starts another server on a database an application elsewhere (another
/// process) created and migrated: a replica with fakes of its own.
pub async fn spawn_replica_on(backend: Backend, database_url: &str, change: impl FnOnce(&mut Settings)) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = TestDatabase { url: database_url.to_owned(), postgres: None };
    let fakes = Fakes {
        line: std::sync::Arc::new(madoguchi_fakes::FakeLine::start().await),
        wechat: std::sync::Arc::new(madoguchi_fakes::FakeWechat::start().await),
    };
    let mut settings = test_settings(database_url, dir.path());
    change(&mut settings);
    let clock = std::sync::Arc::new(ManualClock::following_system());
    start(settings, clock, backend, database, dir, fakes).await
}

/// The fake providers an application talks to; they outlive its crashes
/// and are shared with its replicas.
#[derive(Clone, Debug)]
struct Fakes {
    line: std::sync::Arc<madoguchi_fakes::FakeLine>,
    wechat: std::sync::Arc<madoguchi_fakes::FakeWechat>,
}

/// What outlives a crashed application: its database, files and fakes.
#[derive(Debug)]
pub struct Leftovers {
    settings: Settings,
    clock: std::sync::Arc<ManualClock>,
    backend: Backend,
    database: TestDatabase,
    dir: tempfile::TempDir,
    fakes: Fakes,
}

impl Leftovers {
    /// Starts the application again on the same database.
    pub async fn restart(self) -> TestApp {
        start(self.settings, self.clock, self.backend, self.database, self.dir, self.fakes).await
    }
}

async fn start(
    settings: Settings,
    clock: std::sync::Arc<ManualClock>,
    backend: Backend,
    database: TestDatabase,
    dir: tempfile::TempDir,
    fakes: Fakes,
) -> TestApp {
    let application = Application::build(settings.clone(), clock.clone()).await.expect("application builds");
    let (http, grpc, core) = (application.http_addr(), application.grpc_addr(), application.core().clone());
    let metrics = application.metrics_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        line: fakes.line,
        wechat: fakes.wechat,
        clock,
        http,
        grpc,
        metrics,
        core,
        client: reqwest::Client::new(),
        settings,
        backend,
        stop: Some(stop),
        server: Some(server),
        database,
        dir,
    }
}

impl TestApp {
    /// Kills the application at once, as a crash would: no draining, no
    /// graceful anything. Returns what is needed to start it again.
    pub async fn crash(mut self) -> Leftovers {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        let database = std::mem::replace(&mut self.database, TestDatabase { url: String::new(), postgres: None });
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temporary directory"));
        Leftovers {
            settings: self.settings.clone(),
            clock: self.clock.clone(),
            backend: self.backend,
            database,
            dir,
            fakes: self.fakes(),
        }
    }

    /// Starts a second server process on the same database (PostgreSQL).
    pub async fn spawn_replica(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut settings = self.settings.clone();
        settings.data_dir = dir.path().to_path_buf();
        let database = TestDatabase { url: self.database.url.clone(), postgres: None };
        start(settings, self.clock.clone(), self.backend, database, dir, self.fakes()).await
    }

    fn fakes(&self) -> Fakes {
        Fakes { line: self.line.clone(), wechat: self.wechat.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Posts a GraphQL operation and returns the whole response body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self.client.post(self.url("/graphql")).json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("graphql request").json().await.expect("graphql json")
    }

    /// Sets a channel's status (`ACTIVE`, `DISABLED`, `DELETED`) as
    /// `token`'s agent; returns the whole response body.
    pub async fn set_channel_status(&self, token: &str, channel_id: &str, status: &str) -> Value {
        self.graphql(
            Some(token),
            "mutation($id: ID!, $status: ChannelStatus!) { setChannelStatus(id: $id, status: $status) { status } }",
            json!({"id": channel_id, "status": status}),
        )
        .await
    }

    /// Logs in and returns the session token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let response = self
            .graphql(
                None,
                "mutation($input: LoginInput!) { login(input: $input) { token } }",
                json!({"input": {"email": email, "password": password}}),
            )
            .await;
        response["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("login failed: {response}")).to_owned()
    }

    pub async fn login_admin(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates an agent with `role` (as the admin `admin`) and returns its
    /// session token.
    pub async fn create_agent_token(&self, admin: &str, role: &str) -> String {
        let email = format!("agent-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "a long first password";
        let created = self
            .graphql(
                Some(admin),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
                json!({"input": {"email": email, "name": "Someone", "role": role, "password": password}}),
            )
            .await;
        assert!(created["errors"].is_null(), "{created}");
        self.login(&email, password).await
    }

    /// Sends an image in a chat with GraphQL's multipart upload; returns the
    /// message's id.
    pub async fn send_image(&self, token: &str, chat_id: &str, bytes: Vec<u8>, content_type: &str) -> String {
        let sent = self.send_files(token, "sendImage", chat_id, &[("image", bytes, content_type)]).await;
        sent["data"]["sendImage"]["id"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned()
    }

    /// Calls `mutation` (`sendImage`, `sendVoice`, `sendVideo`) on a chat
    /// with `files` as its `Upload` arguments, in GraphQL's multipart
    /// request; returns the whole response.
    pub async fn send_files(
        &self,
        token: &str,
        mutation: &str,
        chat_id: &str,
        files: &[(&str, Vec<u8>, &str)],
    ) -> Value {
        let parameters: String = files.iter().map(|(name, _, _)| format!(", ${name}: Upload!")).collect();
        let arguments: String = files.iter().map(|(name, _, _)| format!(", {name}: ${name}")).collect();
        let mut variables = json!({"id": chat_id});
        let mut map = serde_json::Map::new();
        for (index, (name, _, _)) in files.iter().enumerate() {
            variables[*name] = Value::Null;
            map.insert(index.to_string(), json!([format!("variables.{name}")]));
        }
        let query = format!(
            "mutation($id: ID!{parameters}) {{ {mutation}(chatId: $id{arguments}) {{ id kind deliveryState }} }}"
        );
        let mut form = reqwest::multipart::Form::new()
            .text("operations", json!({"query": query, "variables": variables}).to_string())
            .text("map", Value::Object(map).to_string());
        for (index, (name, bytes, content_type)) in files.iter().enumerate() {
            let part =
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()).mime_str(content_type);
            form = form.part(index.to_string(), part.expect("a type"));
        }
        let request = self.client.post(self.url("/graphql")).bearer_auth(token).multipart(form);
        request.send().await.expect("upload").json().await.expect("a JSON answer")
    }

    /// Opens a gRPC channel to the application.
    pub async fn grpc_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.grpc))
            .expect("grpc endpoint")
            .connect()
            .await
            .expect("grpc connects")
    }

    /// Asks the application to stop and waits until it has drained.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.begin_stop();
        self.wait_stopped().await
    }

    /// Sends the stop signal without waiting.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until the server task has returned.
    pub async fn wait_stopped(&mut self) -> anyhow::Result<()> {
        match self.server.take() {
            Some(server) => server.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Returns the `extensions.code` of the first error of a GraphQL response.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {response}"))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_test_database_url_keeps_the_servers_parameters() {
        let server = "postgres://postgres@127.0.0.1:5432";
        assert_eq!(with_database(&format!("{server}/postgres"), "t1"), format!("{server}/t1"));
        assert_eq!(
            with_database(&format!("{server}/postgres?sslmode=disable"), "t1"),
            format!("{server}/t1?sslmode=disable")
        );
        // A socket directory in the parameters holds slashes of its own.
        assert_eq!(
            with_database("postgres://postgres@localhost/postgres?host=/var/run/postgresql", "t1"),
            "postgres://postgres@localhost/t1?host=/var/run/postgresql"
        );
    }
}
