//! Settings: defaults, then an optional TOML file, then `MADOGUCHI_*`
//! environment variables (`MADOGUCHI_DATABASE_URL=postgres://…` switches
//! from the embedded SQLite file to PostgreSQL).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use madoguchi_core::secrets::Secret;
use serde::{Deserialize, Serialize};

/// Every setting of the server.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://data/madoguchi.db?mode=rwc` (the default) or `postgres://…`.
    pub database_url: String,
    pub database_max_connections: u32,
    /// Where the SQLite file, the generated master key and blobs live.
    pub data_dir: PathBuf,
    /// HTTP: GraphQL, its WebSocket, webhooks, probes and metrics.
    pub http_addr: SocketAddr,
    /// gRPC for partner systems.
    pub grpc_addr: SocketAddr,
    /// Prometheus `/metrics`, apart from the public listener.
    pub metrics_addr: SocketAddr,
    /// The address LINE and WeChat reach us at; webhook URLs are built from it.
    pub public_base_url: String,
    /// Base64 of 32 bytes. Unset: generated once into `data_dir/master.key`.
    /// Several replicas must share one: set it explicitly in production.
    #[serde(skip_serializing)]
    pub master_key: Option<Secret<String>>,
    /// Minutes a session token lives.
    pub session_minutes: i64,
    pub token_issuer: String,
    pub token_audience: String,
    pub graphql_introspection: bool,
    /// Whether `GET /graphql` serves the GraphiQL page (switch off in
    /// production if wanted; its assets are built into the binary).
    pub graphiql: bool,
    pub graphql_max_depth: usize,
    pub graphql_max_complexity: usize,
    pub graphql_max_aliases: usize,
    /// Largest request body accepted on `/graphql` (room for a 10 MB image
    /// upload); webhooks have their own 1 MB limit.
    pub body_limit_bytes: usize,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_grace_seconds: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter such as `info` or `madoguchi=debug,info`; `RUST_LOG` wins.
    pub log_level: String,
    /// First start on an empty database: the organization and admin created.
    pub bootstrap_organization_name: String,
    pub bootstrap_portal_name: String,
    pub bootstrap_admin_email: String,
    /// Unset: a password is generated and printed once on standard error.
    #[serde(skip_serializing)]
    pub bootstrap_admin_password: Option<Secret<String>>,
    /// The platform operator's key (at least 32 characters) for the gRPC
    /// `PlatformService`; unset, organizations are provisioned only on the
    /// command line. Never valid for a tenant's own operations.
    #[serde(skip_serializing)]
    pub platform_operator_key: Option<Secret<String>>,
    /// LINE's settings (`[line]`; `MADOGUCHI_LINE_*` in the environment).
    pub line: LineSettings,
    /// WeChat's settings (`[wechat]`; `MADOGUCHI_WECHAT_*` in the environment).
    pub wechat: WechatSettings,
    /// Job workers in this process (deliveries, media, profiles).
    pub job_workers: usize,
    /// Seconds a claimed job stays reserved unless its worker renews it (it
    /// does, every third of this): a crashed worker's job is taken over after
    /// at most this long.
    pub job_lease_seconds: i64,
    /// Most webhook events that share one intake transaction (group commit);
    /// `1` gives every delivery a transaction of its own.
    pub intake_batch_events: usize,
    /// Where to export traces over OTLP/gRPC (`http://collector:4317`); off
    /// when unset. One span per HTTP request, gRPC call and job.
    pub otlp_endpoint: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://data/madoguchi.db?mode=rwc".into(),
            database_max_connections: 10,
            data_dir: "data".into(),
            http_addr: ([127, 0, 0, 1], 8080).into(),
            grpc_addr: ([127, 0, 0, 1], 50051).into(),
            metrics_addr: ([127, 0, 0, 1], 9464).into(),
            public_base_url: "http://localhost:8080".into(),
            master_key: None,
            session_minutes: 12 * 60,
            token_issuer: "madoguchi".into(),
            token_audience: "madoguchi-agents".into(),
            graphql_introspection: true,
            graphiql: true,
            graphql_max_depth: 12,
            graphql_max_complexity: 5_000,
            graphql_max_aliases: 30,
            body_limit_bytes: 11 * 1024 * 1024,
            shutdown_grace_seconds: 10,
            log_format: "text".into(),
            log_level: "info".into(),
            bootstrap_organization_name: "My Company".into(),
            bootstrap_portal_name: "default".into(),
            bootstrap_admin_email: "admin@example.com".into(),
            bootstrap_admin_password: None,
            platform_operator_key: None,
            line: LineSettings::default(),
            wechat: WechatSettings::default(),
            job_workers: 2,
            job_lease_seconds: 30,
            intake_batch_events: 256,
            otlp_endpoint: None,
        }
    }
}

/// The LINE provider's settings, the `[line]` table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineSettings {
    /// LINE's API hosts; tests point them at a fake.
    pub api_base: String,
    pub data_base: String,
    /// Seconds a LINE reply token is trusted after its message arrived (LINE
    /// says about a minute; the seed products 30 seconds).
    pub reply_window_seconds: i64,
}

impl Default for LineSettings {
    fn default() -> Self {
        Self {
            api_base: "https://api.line.me".into(),
            data_base: "https://api-data.line.me".into(),
            reply_window_seconds: 30,
        }
    }
}

/// The WeChat provider's settings, the `[wechat]` table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatSettings {
    /// WeChat's API host; tests point it at a fake.
    pub api_base: String,
    /// The addresses this server calls WeChat from, shown to admins to put
    /// on the account's IP allow-list (WeChat refuses others with 40164).
    pub outbound_ips: Vec<String>,
}

impl Default for WechatSettings {
    fn default() -> Self {
        Self { api_base: "https://api.weixin.qq.com".into(), outbound_ips: Vec::new() }
    }
}

/// The providers' tables: `MADOGUCHI_LINE_API_BASE` is `[line] api_base`.
const PROVIDER_TABLES: &[&str] = &["line", "wechat"];

/// Maps an environment key (prefix removed) to its setting: a provider's
/// `line_api_base` to `line.api_base`, everything else as it is.
fn setting_key(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    for table in PROVIDER_TABLES {
        if let Some(rest) = key.strip_prefix(table).and_then(|rest| rest.strip_prefix('_')) {
            return format!("{table}.{rest}");
        }
    }
    key
}

impl Settings {
    /// Loads the settings: defaults, then `file` (or `madoguchi.toml` if it
    /// exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(file) => figment = figment.merge(Toml::file_exact(file)),
            None => figment = figment.merge(Toml::file("madoguchi.toml")),
        }
        let env = Env::prefixed("MADOGUCHI_").ignore(&["config"]).map(|key| setting_key(key.as_str()).into());
        figment.merge(env).extract().map_err(Box::new)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_the_file_which_overrides_the_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "madoguchi.toml",
                "database_url = \"sqlite://file.db\"\nhttp_addr = \"127.0.0.1:9000\"\n",
            )?;
            jail.set_env("MADOGUCHI_DATABASE_URL", "postgres://db/madoguchi");
            let settings = Settings::load(None).map_err(|error| *error)?;
            assert_eq!(settings.database_url, "postgres://db/madoguchi");
            assert_eq!(settings.http_addr.port(), 9000);
            assert_eq!(settings.grpc_addr.port(), 50051);
            Ok(())
        });
    }

    #[test]
    fn provider_settings_group_in_a_table_and_keep_their_environment_names() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("madoguchi.toml", "[line]\nreply_window_seconds = 45\napi_base = \"http://file\"\n")?;
            jail.set_env("MADOGUCHI_LINE_API_BASE", "http://127.0.0.1:9/");
            let settings = Settings::load(None).map_err(|error| *error)?;
            assert_eq!(settings.line.api_base, "http://127.0.0.1:9/");
            assert_eq!(settings.line.reply_window_seconds, 45);
            assert_eq!(settings.line.data_base, "https://api-data.line.me");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.create_file("madoguchi.toml", "[line]\nreply_windw_seconds = 45\n")?;
            assert!(Settings::load(None).is_err(), "a typo inside a table is an error too");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_setting_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("madoguchi.toml", "databse_url = \"typo\"\n")?;
            assert!(Settings::load(None).is_err());
            Ok(())
        });
    }
}
