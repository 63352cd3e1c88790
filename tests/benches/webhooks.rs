//! Benchmark: how fast the real server acknowledges signed LINE webhooks and
//! WeChat callbacks (secure mode: signed and encrypted), on SQLite and on
//! PostgreSQL, next to a floor — a bare axum handler that verifies the same
//! signatures (and decrypts the same ciphertext) and inserts one row into the
//! same kind of database.
//!
//! The server is measured twice for LINE: with group commit (deliveries that
//! arrive together share a transaction; the default) and with
//! `intake_batch_events = 1` (a transaction per delivery, as before it), at
//! 16 and 64 concurrent deliveries; its mean deliveries per transaction come
//! from its own `/metrics`.
//!
//! One more row per database sends the deliveries on a schedule,
//! `MADOGUCHI_BENCH_RATE` per second (default 1,000), whatever the answers,
//! so its p99 is the acknowledgement's at that load (timed from when each
//! was due, so a client falling behind cannot hide a slow server).
//!
//! A last PostgreSQL row spreads the deliveries over two server instances on
//! the same database (in this process: their own pools and batch writers).
//!
//! The servers and the floors run in this process; their clients send from
//! a process of their own (this binary run again with
//! `MADOGUCHI_BENCH_CHILD_DELIVERIES` set), one per pass, so that sending
//! and timing never wait for a turn on the runtime being measured.
//!
//! `cargo bench -p madoguchi-tests --bench webhooks [-- --quick]`.
//! `MADOGUCHI_BENCH_EVENTS` (default 2000, 200 with `--quick`) and
//! `MADOGUCHI_BENCH_CONCURRENCY` (default: 16 and 64) change the size.
#![allow(clippy::print_stdout)]

/// The server's allocator, as in the `madoguchi` binary (the floors here
/// and the clients' processes, this binary again, run on it too).
#[global_allocator]
static ALLOCATOR: madoguchi_server::Allocator = madoguchi_server::Allocator;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures::StreamExt;
use madoguchi_channels::line::signature::{sign, verify_signature};
use madoguchi_channels::wechat::crypto::{self, EncodingAesKey};
use madoguchi_channels::wechat::xml;
use madoguchi_tests::bench::{self, Pass};
use madoguchi_tests::line::{CHANNEL_SECRET, text_event};
use madoguchi_tests::wechat::{TestWechatChannel, text_xml};
use madoguchi_tests::{Backend, TestDatabase, spawn_app_with};
use sea_orm::sqlx::postgres::{PgPool, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use serde_json::{Value, json};

/// Events sent before measuring, so connections, caches and the pool are warm.
const WARMUP: usize = 100;
/// How many consumers the events come from.
const USERS: usize = 50;
/// Database pool size for the server and the floor alike (the server's
/// documented default).
const POOL: u32 = 10;

#[derive(Clone, Debug)]
struct Config {
    events: usize,
    concurrencies: Vec<usize>,
    /// Deliveries per second of the open-loop row.
    rate: usize,
}

impl Config {
    fn from_environment() -> Self {
        let quick = bench::quick();
        Self {
            events: bench::size("MADOGUCHI_BENCH_EVENTS", if quick { 200 } else { 2_000 }),
            concurrencies: match bench::size("MADOGUCHI_BENCH_CONCURRENCY", 0) {
                0 => vec![16, 64],
                one => vec![one],
            },
            rate: bench::size("MADOGUCHI_BENCH_RATE", 1_000),
        }
    }
}

/// Which provider's webhook is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provider {
    Line,
    Wechat,
}

/// A signed webhook body, prepared before the clock starts: LINE's
/// signature goes in a header, WeChat's in the query string.
#[derive(Clone)]
struct Delivery {
    body: Bytes,
    signature: Option<String>,
    query: String,
}

/// Returns one body per index in `range`, each with one text event from one
/// of `USERS` consumers and a unique message id and webhookEventId.
fn deliveries(destination: &str, range: std::ops::Range<usize>) -> Vec<Delivery> {
    range
        .map(|index| {
            let user = format!("U{:032x}", index % USERS);
            let event =
                text_event(&user, &format!("{index:012}"), &format!("message {index}"), &format!("reply-{index}"));
            let body = serde_json::to_vec(&json!({"destination": destination, "events": [event]})).expect("json body");
            let signature = sign(CHANNEL_SECRET.as_bytes(), &body);
            Delivery { body: body.into(), signature: Some(signature), query: String::new() }
        })
        .collect()
}

/// The WeChat account the floor pretends to be.
fn floor_wechat_channel() -> TestWechatChannel {
    TestWechatChannel {
        id: "floor".into(),
        app_id: "wx0123456789abcdef".into(),
        original_id: "gh_0123456789ab".into(),
        token: "floortoken".into(),
        encoding_aes_key: EncodingAesKey::generate().expose_text().to_owned(),
        department_id: String::new(),
    }
}

/// Returns one secure-mode callback per index in `range`: a text message
/// from one of `USERS` consumers with a unique MsgId, encrypted and signed.
fn wechat_deliveries(channel: &TestWechatChannel, range: std::ops::Range<usize>) -> Vec<Delivery> {
    let key = EncodingAesKey::parse(&channel.encoding_aes_key).expect("a key");
    let timestamp = chrono::Utc::now().timestamp().to_string();
    range
        .map(|index| {
            let user = format!("oUser{:028x}", index % USERS);
            let message = text_xml(channel, &user, &format!("{}", 7_000_000_000_000_000_000u64 + index as u64), &format!("message {index}"));
            let encrypted = crypto::encrypt(&key, &channel.app_id, message.as_bytes());
            let nonce = format!("{index:010}");
            let signature = crypto::signature(&[&channel.token, &timestamp, &nonce]);
            let msg_signature = crypto::signature(&[&channel.token, &timestamp, &nonce, &encrypted]);
            let body = format!(
                "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>",
                channel.original_id
            );
            let query = format!(
                "?signature={signature}&timestamp={timestamp}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_signature}"
            );
            Delivery { body: body.into(), signature: None, query }
        })
        .collect()
}

/// What one pass over a set of deliveries measured.
#[derive(Clone)]
struct Run {
    pass: Pass,
    failures: usize,
    /// The server's mean deliveries per intake transaction (`None` for the floor).
    mean_batch: Option<f64>,
}

/// How deliveries are sent: so many at a time, each as soon as one is
/// answered (closed loop: throughput), or at a fixed rate whatever the
/// answers (open loop: latency at a given load).
#[derive(Clone, Copy, Debug)]
enum Pace {
    Concurrent(usize),
    PerSecond(usize),
}

impl Pace {
    fn label(self) -> String {
        match self {
            Self::Concurrent(concurrency) => format!("c{concurrency}"),
            Self::PerSecond(rate) => format!("{rate}/s"),
        }
    }

    /// Reads back a [`Pace::label`].
    fn parse(label: &str) -> Self {
        match (label.strip_prefix('c'), label.strip_suffix("/s")) {
            (Some(concurrency), _) => Self::Concurrent(concurrency.parse().expect("a concurrency")),
            (_, Some(rate)) => Self::PerSecond(rate.parse().expect("a rate")),
            _ => panic!("not a pace: {label}"),
        }
    }
}

/// Set in a clients' process (this binary run again): the file holding the
/// deliveries to send, the URLs to spread them over and their pace.
const CHILD_DELIVERIES: &str = "MADOGUCHI_BENCH_CHILD_DELIVERIES";
const CHILD_URLS: &str = "MADOGUCHI_BENCH_CHILD_URLS";
const CHILD_PACE: &str = "MADOGUCHI_BENCH_CHILD_PACE";

/// Posts every delivery to `url` at `pace`, and times each.
async fn drive(url: &str, deliveries: &[Delivery], pace: Pace) -> Run {
    drive_spread(&[url.to_owned()], deliveries, pace).await
}

/// Posts the deliveries in turn to each of `urls` at `pace` from a clients'
/// process of their own (this binary run again), so that the clients never
/// take a turn on the runtime of the server (or the floor) they measure.
async fn drive_spread(urls: &[String], deliveries: &[Delivery], pace: Pace) -> Run {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    let rows: Vec<(&str, Option<&str>, &str)> = deliveries
        .iter()
        .map(|delivery| {
            let body = std::str::from_utf8(&delivery.body).expect("a UTF-8 body");
            (body, delivery.signature.as_deref(), delivery.query.as_str())
        })
        .collect();
    let mut writer = std::io::BufWriter::new(file.as_file());
    serde_json::to_writer(&mut writer, &rows).expect("the deliveries are written");
    std::io::Write::flush(&mut writer).expect("the deliveries are written");
    drop(writer);
    let output = tokio::process::Command::new(std::env::current_exe().expect("current executable"))
        .env(CHILD_DELIVERIES, file.path())
        .env(CHILD_URLS, urls.join(" "))
        .env(CHILD_PACE, pace.label())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .expect("the clients' process runs");
    assert!(output.status.success(), "the clients' process failed");
    let report = String::from_utf8(output.stdout).expect("a UTF-8 report");
    let mut numbers = report.split_whitespace().map(|number| number.parse::<u64>().expect("a number"));
    let failures = numbers.next().expect("failures") as usize;
    let wall = Duration::from_nanos(numbers.next().expect("wall time"));
    let latencies: Vec<Duration> = numbers.map(Duration::from_nanos).collect();
    assert_eq!(latencies.len(), deliveries.len(), "one latency per delivery");
    Run { pass: Pass::new(wall, latencies), failures, mean_batch: None }
}

/// The body of a clients' process: sends what [`drive_spread`] wrote, then
/// prints the failures, the wall time and every latency (nanoseconds).
async fn run_clients(path: String) {
    let file = std::fs::File::open(path).expect("the deliveries' file");
    let rows: Vec<(String, Option<String>, String)> =
        serde_json::from_reader(std::io::BufReader::new(file)).expect("the deliveries");
    let deliveries: Vec<Delivery> =
        rows.into_iter().map(|(body, signature, query)| Delivery { body: body.into(), signature, query }).collect();
    let urls: Vec<String> = std::env::var(CHILD_URLS).expect("child urls").split(' ').map(str::to_owned).collect();
    let pace = Pace::parse(&std::env::var(CHILD_PACE).expect("child pace"));
    let (wall, results) = send_all(&reqwest::Client::new(), &urls, &deliveries, pace).await;
    let failures = results.iter().filter(|(_, status)| *status != Some(200)).count();
    if let Some((_, status)) = results.iter().find(|(_, status)| *status != Some(200)) {
        eprintln!("first failure: {}", status.map_or("no response".to_owned(), |status| format!("HTTP {status}")));
    }
    let mut report = format!("{failures} {}", wall.as_nanos());
    for (latency, _) in &results {
        report.push_str(&format!(" {}", latency.as_nanos()));
    }
    println!("{report}");
}

/// Posts one delivery; its status, `None` when no answer came.
async fn post_delivery(client: reqwest::Client, url: String, delivery: &Delivery) -> Option<u16> {
    let mut request = client.post(format!("{url}{}", delivery.query)).body(delivery.body.clone());
    if let Some(signature) = &delivery.signature {
        request = request.header("content-type", "application/json").header("x-line-signature", signature);
    }
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    Some(status)
}

/// Posts the deliveries in turn to each of `urls` (one server instance
/// each) at `pace`, and times each: from its send in the closed loop, from
/// when it was due in the open one (a send that is late because the client
/// fell behind counts its wait). Returns the wall time and each delivery's
/// latency and status.
async fn send_all(
    client: &reqwest::Client,
    urls: &[String],
    deliveries: &[Delivery],
    pace: Pace,
) -> (Duration, Vec<(Duration, Option<u16>)>) {
    let started = Instant::now();
    let url = |index: usize| urls[index % urls.len()].clone();
    let results: Vec<(Duration, Option<u16>)> = match pace {
        Pace::Concurrent(concurrency) => {
            futures::stream::iter(deliveries.iter().enumerate())
                .map(|(index, delivery)| async move {
                    let sent = Instant::now();
                    let status = post_delivery(client.clone(), url(index), delivery).await;
                    (sent.elapsed(), status)
                })
                .buffer_unordered(concurrency)
                .collect()
                .await
        }
        Pace::PerSecond(rate) => {
            let mut sent = tokio::task::JoinSet::new();
            for (index, delivery) in deliveries.iter().enumerate() {
                let due = started + Duration::from_secs_f64(index as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let (client, url) = (client.clone(), url(index));
                let delivery = delivery.clone();
                sent.spawn(async move {
                    let status = post_delivery(client, url, &delivery).await;
                    (due.elapsed(), status)
                });
            }
            sent.join_all().await
        }
    };
    (started.elapsed(), results)
}

/// Measures two server instances on one PostgreSQL database, the
/// deliveries spread over both; `None` when PostgreSQL is absent.
async fn measure_two_instances(events: usize, pace: Pace) -> Option<Run> {
    let app = spawn_app_with(Backend::Postgres, |settings| settings.database_max_connections = POOL).await?;
    let replica = app.spawn_replica().await;
    let token = app.login_admin().await;
    let channel = app.create_line_channel(&token, "REPLY", "FREE").await;
    let path = format!("/webhooks/line/{}", channel.id);
    let urls = [app.url(&path), replica.url(&path)];
    drive_spread(&urls, &deliveries(&channel.bot_user_id, 0..WARMUP), pace).await;
    let run = drive_spread(&urls, &deliveries(&channel.bot_user_id, WARMUP..WARMUP + events), pace).await;
    replica.stop().await.expect("replica stops");
    app.stop().await.expect("server stops");
    Some(run)
}

/// The server's `intake_batch_deliveries` summary: (transactions, deliveries).
async fn intake_batches(client: &reqwest::Client, metrics: std::net::SocketAddr) -> (f64, f64) {
    let text =
        client.get(format!("http://{metrics}/metrics")).send().await.expect("metrics").text().await.expect("text");
    let value = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (value("intake_batch_deliveries_count"), value("intake_batch_deliveries_sum"))
}

/// Measures the real server, with group commit or with a transaction per
/// delivery; `None` when PostgreSQL is wanted but absent.
async fn measure_server(
    backend: Backend,
    provider: Provider,
    group_commit: bool,
    events: usize,
    pace: Pace,
) -> Option<Run> {
    let app = spawn_app_with(backend, |settings| {
        settings.database_max_connections = POOL;
        if !group_commit {
            settings.intake_batch_events = 1;
        }
    })
    .await?;
    let token = app.login_admin().await;
    let (url, warmup, measured) = match provider {
        Provider::Line => {
            let channel = app.create_line_channel(&token, "REPLY", "FREE").await;
            let url = app.url(&format!("/webhooks/line/{}", channel.id));
            let warmup = deliveries(&channel.bot_user_id, 0..WARMUP);
            (url, warmup, deliveries(&channel.bot_user_id, WARMUP..WARMUP + events))
        }
        Provider::Wechat => {
            let channel = app.create_wechat_channel(&token).await;
            let url = app.url(&format!("/webhooks/wechat/{}", channel.id));
            let warmup = wechat_deliveries(&channel, 0..WARMUP);
            (url, warmup, wechat_deliveries(&channel, WARMUP..WARMUP + events))
        }
    };
    let client = reqwest::Client::new();
    drive(&url, &warmup, pace).await;
    let before = intake_batches(&client, app.metrics).await;
    let mut run = drive(&url, &measured, pace).await;
    let after = intake_batches(&client, app.metrics).await;
    run.mean_batch = Some((after.1 - before.1) / (after.0 - before.0).max(1.0));
    app.stop().await.expect("server stops");
    Some(run)
}

/// The floor's database: one table of receipts, unique by event id.
#[derive(Clone)]
enum FloorDatabase {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl FloorDatabase {
    async fn connect(url: &str, backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .expect("sqlite url")
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(15));
                let pool =
                    SqlitePoolOptions::new().max_connections(POOL).connect_with(options).await.expect("sqlite pool");
                sea_orm::sqlx::query(
                    "CREATE TABLE receipts (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL)",
                )
                .execute(&pool)
                .await
                .expect("create table");
                Self::Sqlite(pool)
            }
            Backend::Postgres => {
                let pool = PgPoolOptions::new().max_connections(POOL).connect(url).await.expect("postgres pool");
                sea_orm::sqlx::query(
                    "CREATE TABLE receipts (id BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL)",
                )
                .execute(&pool)
                .await
                .expect("create table");
                Self::Postgres(pool)
            }
        }
    }

    async fn insert(&self, event_id: &str, body: &str) -> bool {
        let result = match self {
            Self::Sqlite(pool) => {
                sea_orm::sqlx::query("INSERT INTO receipts (event_id, body) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
                    .bind(event_id)
                    .bind(body)
                    .execute(pool)
                    .await
                    .map(drop)
            }
            Self::Postgres(pool) => {
                sea_orm::sqlx::query("INSERT INTO receipts (event_id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(event_id)
                    .bind(body)
                    .execute(pool)
                    .await
                    .map(drop)
            }
        };
        result.is_ok()
    }

    async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// The floor's state: its database and the secrets it verifies with.
#[derive(Clone)]
struct Floor {
    database: FloorDatabase,
    secret: Arc<[u8]>,
    wechat: Arc<TestWechatChannel>,
}

/// The floor's webhook: verify, find the event id, insert, answer.
async fn floor_webhook(State(floor): State<Floor>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers.get("x-line-signature").and_then(|value| value.to_str().ok()).unwrap_or_default();
    if verify_signature(&floor.secret, &body, signature).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(text) = std::str::from_utf8(&body) else { return StatusCode::BAD_REQUEST };
    let Ok(parsed) = serde_json::from_str::<Value>(text) else { return StatusCode::BAD_REQUEST };
    let Some(event_id) = parsed["events"][0]["webhookEventId"].as_str() else { return StatusCode::BAD_REQUEST };
    if floor.database.insert(event_id, text).await { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR }
}

/// The floor's WeChat callback: verify both signatures, decrypt, parse,
/// find the MsgId, insert, answer.
async fn floor_wechat(
    State(floor): State<Floor>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> StatusCode {
    let field = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let (timestamp, nonce) = (field("timestamp"), field("nonce"));
    let channel = &floor.wechat;
    if crypto::verify_signature(&channel.token, timestamp, nonce, field("signature")).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(outer) = xml::parse(&body) else { return StatusCode::BAD_REQUEST };
    let encrypted = outer.get("Encrypt").unwrap_or_default();
    if crypto::verify_msg_signature(&channel.token, timestamp, nonce, encrypted, field("msg_signature")).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let key = EncodingAesKey::parse(&channel.encoding_aes_key).expect("a key");
    let Ok(plain) = crypto::decrypt(&key, &channel.app_id, encrypted) else { return StatusCode::BAD_REQUEST };
    let Ok(fields) = xml::parse(&plain) else { return StatusCode::BAD_REQUEST };
    let Some(msg_id) = fields.get("MsgId") else { return StatusCode::BAD_REQUEST };
    let text = String::from_utf8_lossy(&plain);
    if floor.database.insert(msg_id, &text).await { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR }
}

/// Measures the floor on a fresh database of the same kind; `None` when
/// PostgreSQL is wanted but absent.
async fn measure_floor(backend: Backend, provider: Provider, events: usize, pace: Pace) -> Option<Run> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = TestDatabase::create(backend, dir.path()).await?;
    let pool = FloorDatabase::connect(&database.url, backend).await;
    let wechat = Arc::new(floor_wechat_channel());
    let floor = Floor { database: pool.clone(), secret: Arc::from(CHANNEL_SECRET.as_bytes()), wechat: wechat.clone() };
    let router = Router::new()
        .route("/webhooks/line/{channel_id}", post(floor_webhook))
        .route("/webhooks/wechat/{channel_id}", post(floor_wechat))
        .with_state(floor);
    let served = bench::Served::start(router).await;
    let address = served.address;
    let destination = "U00000000000000000000000000000000";
    let (url, warmup, measured) = match provider {
        Provider::Line => (
            format!("http://{address}/webhooks/line/floor"),
            deliveries(destination, 0..WARMUP),
            deliveries(destination, WARMUP..WARMUP + events),
        ),
        Provider::Wechat => (
            format!("http://{address}/webhooks/wechat/floor"),
            wechat_deliveries(&wechat, 0..WARMUP),
            wechat_deliveries(&wechat, WARMUP..WARMUP + events),
        ),
    };
    drive(&url, &warmup, pace).await;
    let run = drive(&url, &measured, pace).await;
    served.stop().await;
    pool.close().await;
    drop(database);
    Some(run)
}

fn cells(run: Option<&Run>) -> String {
    match run {
        Some(run) => format!(
            "{:>10.0} ev/s | {:>8.2} ms | {:>8.2} ms | {:>7}",
            run.pass.per_second(),
            run.pass.percentile_ms(0.50),
            run.pass.percentile_ms(0.99),
            run.failures
        ),
        None => format!("{:>15} | {:>11} | {:>11} | {:>7}", "skipped", "-", "-", "-"),
    }
}

/// One line of the table: the server beside the floor of the same run.
struct Row {
    name: String,
    server: Option<Run>,
    floor: Option<Run>,
    /// Whether the two rates compare (not when both were set by a schedule).
    ratio: bool,
}

impl Row {
    fn print(&self) {
        let ratio = match (&self.server, &self.floor) {
            (Some(server), Some(floor)) if self.ratio => {
                format!("{:>5.0} %", 100.0 * server.pass.per_second() / floor.pass.per_second())
            }
            _ => format!("{:>7}", "-"),
        };
        let batch = self.server.as_ref().and_then(|run| run.mean_batch).map_or("-".into(), |mean| format!("{mean:.1}"));
        println!(
            "{:<36} | {} | {batch:>5} | {} | {ratio}",
            self.name,
            cells(self.server.as_ref()),
            cells(self.floor.as_ref())
        );
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Ok(path) = std::env::var(CHILD_DELIVERIES) {
        return run_clients(path).await;
    }
    let config = Config::from_environment();
    println!(
        "webhook acknowledgement: {} events (after {WARMUP} warm-up), {USERS} users, one event per body, database pool {POOL}",
        config.events
    );
    let mut rows = Vec::new();
    for (name, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
        for &concurrency in &config.concurrencies {
            let pace = Pace::Concurrent(concurrency);
            let floor = measure_floor(backend, Provider::Line, config.events, pace).await;
            for (mode, group_commit) in [("group commit", true), ("one tx per delivery", false)] {
                let server = measure_server(backend, Provider::Line, group_commit, config.events, pace).await;
                if server.is_none() {
                    println!("{name}: PostgreSQL is not reachable, row skipped");
                }
                let floor = floor.as_ref().cloned();
                rows.push(Row { name: format!("{name} line {} {mode}", pace.label()), server, floor, ratio: true });
            }
        }
        // Latency at a given load: deliveries sent on a schedule, not when
        // an answer frees a slot.
        let pace = Pace::PerSecond(config.rate);
        let floor = measure_floor(backend, Provider::Line, config.events, pace).await;
        let server = measure_server(backend, Provider::Line, true, config.events, pace).await;
        rows.push(Row { name: format!("{name} line {} group commit", pace.label()), server, floor, ratio: false });
        let pace = Pace::Concurrent(config.concurrencies[0]);
        if backend == Backend::Postgres {
            let server = measure_two_instances(config.events, pace).await;
            let floor = rows.iter().find(|row: &&Row| row.name == format!("{name} line {} group commit", pace.label()));
            let floor = floor.and_then(|row| row.floor.as_ref()).cloned();
            rows.push(Row { name: format!("{name} line {} 2 instances", pace.label()), server, floor, ratio: true });
        }
        let server = measure_server(backend, Provider::Wechat, true, config.events, pace).await;
        let floor = measure_floor(backend, Provider::Wechat, config.events, pace).await;
        rows.push(Row { name: format!("{name} wechat {} group commit", pace.label()), server, floor, ratio: true });
    }
    println!();
    println!(
        "{:<36} | {:>15} | {:>11} | {:>11} | {:>7} | {:>5} | {:>15} | {:>11} | {:>11} | {:>7} | {:>7}",
        "backend, provider, pace",
        "server",
        "p50",
        "p99",
        "non-200",
        "batch",
        "floor",
        "p50",
        "p99",
        "non-200",
        "ratio"
    );
    println!("{}", "-".repeat(164));
    for row in &rows {
        row.print();
    }
}
