//! Benchmark: the latency from a LINE webhook to each GraphQL subscriber's
//! `chatEvents` message for 1, 100 and 1,000 subscribers, and the resident
//! memory an idle subscription costs, next to a floor — a bare axum
//! WebSocket server fanning a `tokio::sync::broadcast` out to plain clients,
//! in a process of its own, broadcasting when posted to.
//!
//! Subscribers select what an agent's chat list shows
//! (`chatEvents { cursor kind chat { status lastMessagePreview unreadCount
//! endUser { displayName } } }`); a last row at the largest count selects
//! only `cursor kind`. Every server runs in a process of its own (this
//! binary again, with `MADOGUCHI_BENCH_CHILD=server`); the `pg 2 proc`
//! column posts webhooks to one server process and subscribes on a second
//! sharing its PostgreSQL (its own pool and tail, woken by the first's
//! notifications).
//!
//! The peer row is what a Node team would build: graphql-yoga with
//! graphql-ws publishing the same payload from an in-memory pub/sub
//! (`benches/peers/yoga`, installed with `npm ci` on first run; skipped
//! when Node is missing), measured the same way, its memory from its own
//! process.
//!
//! `cargo bench -p madoguchi-tests --bench subscriptions [-- --quick]`.
//! `MADOGUCHI_BENCH_EVENTS` sets the webhooks per subscriber count (default
//! 50, 10 with `--quick`, which also stops at 100 subscribers);
//! `MADOGUCHI_BENCH_SUBSCRIBERS` the counts (`1,100,1000`; `1,100,1000,10000`
//! runs 10,000 too);
//! `MADOGUCHI_BENCH_IDLE` the idle subscriptions for the memory figure
//! (10,000, the count the goal is set at; 1,000 with `--quick`, which is
//! within what the allocator keeps from start-up and reads lower, as little
//! as nothing).
//!
//! Memory is measured with the clients in a child process (this binary run
//! again with `MADOGUCHI_BENCH_CHILD` set), so the server's resident-memory
//! growth is the server's alone; the child reports the clients' own cost.
#![allow(clippy::print_stdout)]

/// The server's allocator, as in the `madoguchi` binary (every server here
/// is this binary run again; the floor and the clients run on it too).
#[global_allocator]
static ALLOCATOR: madoguchi_server::Allocator = madoguchi_server::Allocator;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message as AxumMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use futures::{SinkExt, StreamExt};
use madoguchi_channels::line::signature::sign;
use madoguchi_tests::bench;
use madoguchi_tests::graphql_ws::{GraphqlWs, Received};
use madoguchi_tests::line::{CHANNEL_SECRET, text_event};
use madoguchi_tests::{Backend, spawn_app_with, spawn_replica_on};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const SUBSCRIBER_COUNTS: [usize; 3] = [1, 100, 1_000];
/// Idle subscriptions opened for the memory figure. Resident growth is
/// what is measured, so the count must dwarf what the server's allocator
/// holds free from start-up (the login's password hash alone is 19 MiB),
/// which new connections use before the process grows.
const IDLE: usize = 10_000;
/// The same with `--quick`.
const IDLE_QUICK: usize = 1_000;
/// What an agent's chat list selects.
const QUERY: &str = "subscription { chatEvents { cursor kind chat { status lastMessagePreview unreadCount endUser { displayName } } } }";
/// The smallest selection, the figure earlier runs published.
const MINIMAL_QUERY: &str = "subscription { chatEvents { cursor kind } }";
/// What the floor broadcasts: the size and shape of a `chatEvents` message.
const FLOOR_PAYLOAD: &str = r#"{"id":"1","type":"next","payload":{"data":{"chatEvents":{"cursor":"1234","kind":"chat.updated","chat":{"status":"NEW","lastMessagePreview":"hello","unreadCount":12,"endUser":{"displayName":"Hanako Yamada"}}}}}}"#;
/// Pause between webhooks (or broadcasts).
const GAP: Duration = Duration::from_millis(20);
/// Time given to the server to register fresh subscriptions.
const SETTLE: Duration = Duration::from_millis(300);
/// Longest wait for every subscriber to receive one event.
const WAIT: Duration = Duration::from_secs(10);
/// Connections opened at once.
const CONNECTING: usize = 32;
/// Database pool size (the server's documented default).
const POOL: u32 = 10;

const CHILD_MODE: &str = "MADOGUCHI_BENCH_CHILD";
const CHILD_URL: &str = "MADOGUCHI_BENCH_CHILD_URL";
const CHILD_TOKEN: &str = "MADOGUCHI_BENCH_CHILD_TOKEN";
const CHILD_COUNT: &str = "MADOGUCHI_BENCH_CHILD_COUNT";
const CHILD_BACKEND: &str = "MADOGUCHI_BENCH_CHILD_BACKEND";
const CHILD_DATABASE: &str = "MADOGUCHI_BENCH_CHILD_DATABASE";

/// Returns the resident set size of process `pid` (`self` for this one), in bytes.
fn resident_bytes(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS line");
    kib * 1024
}

fn percentile_ms(sorted: &[Duration], fraction: f64) -> f64 {
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// Connects to the real server and subscribes to `chatEvents`; returns once
/// the server has answered a ping sent after the subscription.
async fn graphql_subscriber(url: &str, token: &str, query: &str) -> GraphqlWs {
    let mut ws = GraphqlWs::connect(url, json!({"authorization": format!("Bearer {token}")}))
        .await
        .unwrap_or_else(|refused| panic!("websocket refused: {refused:?}"));
    ws.subscribe("1", query, json!({})).await;
    ws.send(json!({"type": "ping"})).await;
    match ws.next().await {
        Received::Message(message) if message["type"] == "pong" => ws,
        other => panic!("expected a pong, got {other:?}"),
    }
}

type PlainSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to the floor and exchanges one message, as the GraphQL client
/// exchanges `connection_init`, `subscribe` and a ping with the server.
async fn plain_subscriber(url: &str) -> PlainSocket {
    let mut socket = tokio_tungstenite::connect_async(url).await.expect("floor websocket connects").0;
    socket.send(Message::Text("hello".into())).await.expect("floor websocket send");
    match socket.next().await {
        Some(Ok(Message::Text(_))) => socket,
        other => panic!("expected the floor's answer, got {other:?}"),
    }
}

/// A real server in a child process of its own (this binary run again with
/// `MADOGUCHI_BENCH_CHILD=server`), so that its memory and its sockets are
/// its own: a primary with one LINE channel, or a replica on a primary's
/// PostgreSQL database.
struct ServerProcess {
    child: tokio::process::Child,
    http: String,
    /// What the primary reports: a session token, its channel's id and bot
    /// user id, and its database's URL.
    token: String,
    channel_id: String,
    bot_user_id: String,
    database_url: String,
}

impl ServerProcess {
    /// Starts a primary (`database: None`) or a replica of `database`;
    /// `None` when PostgreSQL is not reachable.
    async fn start(backend: &str, database: Option<&str>) -> Option<Self> {
        let mut env = vec![(CHILD_MODE, "server"), (CHILD_BACKEND, backend)];
        env.extend(database.map(|database| (CHILD_DATABASE, database)));
        let (child, line) = spawn_self(&env).await;
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["ready", http, token, channel_id, bot_user_id, database_url] => Some(Self {
                child,
                http: (*http).to_owned(),
                token: (*token).to_owned(),
                channel_id: (*channel_id).to_owned(),
                bot_user_id: (*bot_user_id).to_owned(),
                database_url: (*database_url).to_owned(),
            }),
            _ => None,
        }
    }

    fn pid(&self) -> String {
        self.child.id().expect("the server runs").to_string()
    }

    async fn stop(self) {
        stop_child(self.child).await;
    }
}

/// Runs this binary again with `env` set; returns the process and the
/// first line it prints (its report). It runs until [`stop_child`].
async fn spawn_self(env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("current executable"))
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("child process starts");
    let stdout = child.stdout.take().expect("child stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.expect("the child reports");
    (child, line)
}

/// Ends a process [`spawn_self`] started: it serves until its stdin closes.
async fn stop_child(mut child: tokio::process::Child) {
    drop(child.stdin.take());
    let _ = child.wait().await;
}

/// The body of a server process: starts the server, reports where it is,
/// and serves until stdin closes.
async fn run_server() {
    let backend = match std::env::var(CHILD_BACKEND).as_deref() {
        Ok("sqlite") => Backend::Sqlite,
        _ => Backend::Postgres,
    };
    let pool = |settings: &mut madoguchi_server::settings::Settings| settings.database_max_connections = POOL;
    let (app, report) = match std::env::var(CHILD_DATABASE) {
        Ok(database_url) => {
            let app = spawn_replica_on(backend, &database_url, pool).await;
            let report = format!("ready {} - - - -", app.http);
            (app, report)
        }
        Err(_) => {
            let Some(app) = spawn_app_with(backend, pool).await else {
                println!("skipped");
                return;
            };
            let token = app.login_admin().await;
            let channel = app.create_line_channel(&token, "REPLY", "FREE").await;
            let report =
                format!("ready {} {token} {} {} {}", app.http, channel.id, channel.bot_user_id, app.database.url);
            (app, report)
        }
    };
    println!("{report}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    wait_for_stdin_to_close().await;
    app.stop().await.expect("server stops");
}

/// Returns when the parent closes this process's stdin (or exits).
async fn wait_for_stdin_to_close() {
    // Blocking read on a thread of its own: tokio's stdin needs a feature the workspace does not enable.
    let _ = tokio::task::spawn_blocking(|| std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())).await;
}

/// The server under test with one channel and one existing chat, in a
/// process of its own; with a replica, webhooks go to the first server and
/// subscribers to the second — another process on the same PostgreSQL,
/// with its own pool and tail, woken by the first's notifications.
struct Madoguchi {
    name: &'static str,
    server: ServerProcess,
    replica: Option<ServerProcess>,
    client: reqwest::Client,
    sent: usize,
}

impl Madoguchi {
    async fn start(name: &'static str, backend: &str, with_replica: bool) -> Option<Self> {
        let server = ServerProcess::start(backend, None).await?;
        let replica = match with_replica {
            true => Some(ServerProcess::start(backend, Some(&server.database_url)).await?),
            false => None,
        };
        let mut madoguchi = Self { name, server, replica, client: reqwest::Client::new(), sent: 0 };
        assert!(madoguchi.deliver_next().await, "{name}: the first webhook is accepted");
        // Lets the new consumer's profile fetch finish, so later chat events
        // are the benchmark's own.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some(madoguchi)
    }

    fn token(&self) -> &str {
        &self.server.token
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.replica.as_ref().unwrap_or(&self.server).http)
    }

    /// Posts the next signed webhook, one text message to the existing
    /// chat; returns whether it was answered 200.
    async fn deliver_next(&mut self) -> bool {
        self.sent += 1;
        let id = format!("{:012}", self.sent);
        let event = text_event("U0123456789abcdef0123456789abcdef", &id, "hello", &format!("reply-{id}"));
        let body =
            serde_json::to_vec(&json!({"destination": self.server.bot_user_id, "events": [event]})).expect("json body");
        let signature = sign(CHANNEL_SECRET.as_bytes(), &body);
        self.client
            .post(format!("http://{}/webhooks/line/{}", self.server.http, self.server.channel_id))
            .header("content-type", "application/json")
            .header("x-line-signature", signature)
            .body(body)
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    }

    async fn stop(self) {
        if let Some(replica) = self.replica {
            replica.stop().await;
        }
        self.server.stop().await;
    }
}

/// The floor: a WebSocket route that forwards every broadcast to its
/// client, in a process of its own like the servers (this binary again,
/// with `MADOGUCHI_BENCH_CHILD=floor`), broadcasting when `/publish` is
/// posted to.
struct Floor {
    child: tokio::process::Child,
    http: String,
    client: reqwest::Client,
}

impl Floor {
    async fn start() -> Self {
        let (child, line) = spawn_self(&[(CHILD_MODE, "floor")]).await;
        let http = line.trim().strip_prefix("ready ").expect("the floor reports its address").to_owned();
        Self { child, http, client: reqwest::Client::new() }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }

    fn pid(&self) -> String {
        self.child.id().expect("the floor runs").to_string()
    }

    /// Broadcasts one message; returns whether the floor answered 200.
    async fn publish(&self) -> bool {
        let sent = self.client.post(format!("http://{}/publish", self.http)).send().await;
        sent.is_ok_and(|response| response.status() == 200)
    }

    /// Waits until `count` clients are registered with the broadcast.
    async fn wait_for_receivers(&self, count: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let registered: usize = self
                .client
                .get(format!("http://{}/receivers", self.http))
                .send()
                .await
                .expect("the floor answers")
                .text()
                .await
                .expect("a count")
                .parse()
                .expect("a count");
            if registered == count {
                return;
            }
            assert!(Instant::now() < deadline, "{registered} of {count} floor clients registered");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        stop_child(self.child).await;
    }
}

/// The body of the floor's process: serves the broadcast, reports where,
/// and serves until stdin closes.
async fn run_floor() {
    let (sender, _) = broadcast::channel::<Utf8Bytes>(64);
    let router = Router::new()
        .route("/ws", get(floor_upgrade))
        .route("/publish", post(floor_publish))
        .route("/receivers", get(floor_receivers))
        .with_state(sender);
    let served = bench::Served::start(router).await;
    println!("ready {}", served.address);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    wait_for_stdin_to_close().await;
    served.stop().await;
}

async fn floor_publish(State(sender): State<broadcast::Sender<Utf8Bytes>>) -> StatusCode {
    match sender.send(Utf8Bytes::from_static(FLOOR_PAYLOAD)) {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn floor_receivers(State(sender): State<broadcast::Sender<Utf8Bytes>>) -> String {
    sender.receiver_count().to_string()
}

async fn floor_upgrade(State(sender): State<broadcast::Sender<Utf8Bytes>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| floor_connection(socket, sender.subscribe()))
}

async fn floor_connection(mut socket: WebSocket, mut events: broadcast::Receiver<Utf8Bytes>) {
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(payload) => {
                    if socket.send(AxumMessage::Text(payload)).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(AxumMessage::Close(_)) | Err(_)) | None => break,
                Some(Ok(AxumMessage::Text(_))) => {
                    if socket.send(AxumMessage::Text("ack".into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

/// One subscriber's receipt of an event.
struct Receipt {
    subscriber: usize,
    at: Instant,
    kind: String,
}

/// What one series of events measured.
#[derive(Default)]
struct Series {
    latencies: Vec<Duration>,
    /// (subscriber, event) pairs that never arrived within `WAIT`.
    missing: usize,
    /// Further messages after a subscriber's first for an event.
    extra: usize,
    /// First messages whose kind was not `chat.updated`.
    unexpected: usize,
    /// Webhooks that were not acknowledged with 200.
    refused: usize,
}

impl Series {
    fn cells(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return format!("{:>11} | {:>11}", "-", "-");
        }
        format!("{:>8.2} ms | {:>8.2} ms", percentile_ms(&sorted, 0.50), percentile_ms(&sorted, 0.99))
    }

    fn anomalies(&self) -> Option<String> {
        (self.missing + self.extra + self.unexpected + self.refused > 0).then(|| {
            format!(
                "missing {}, extra {}, not chat.updated {}, webhooks refused {}",
                self.missing, self.extra, self.unexpected, self.refused
            )
        })
    }
}

/// Triggers `events` events one after the other (after one unmeasured
/// warm-up event) and takes, per event, the first message each of
/// `subscribers` receives after the trigger.
async fn measure(
    receipts: &mut mpsc::UnboundedReceiver<Receipt>,
    subscribers: usize,
    events: usize,
    mut trigger: impl AsyncFnMut() -> bool,
) -> Series {
    let mut series = Series::default();
    let mut seen = vec![false; subscribers];
    for round in 0..=events {
        let sent = Instant::now();
        let accepted = trigger().await;
        seen.fill(false);
        let mut waiting = subscribers;
        let deadline = tokio::time::Instant::from_std(sent + WAIT);
        let mut latencies = Vec::with_capacity(subscribers);
        let mut unexpected = 0;
        while waiting > 0 {
            let Ok(Some(receipt)) = tokio::time::timeout_at(deadline, receipts.recv()).await else { break };
            if std::mem::replace(&mut seen[receipt.subscriber], true) {
                series.extra += 1;
                continue;
            }
            waiting -= 1;
            latencies.push(receipt.at - sent);
            unexpected += usize::from(receipt.kind != "chat.updated");
        }
        tokio::time::sleep(GAP).await;
        while receipts.try_recv().is_ok() {
            series.extra += 1;
        }
        if round == 0 {
            continue;
        }
        series.latencies.extend(latencies);
        series.missing += waiting;
        series.unexpected += unexpected;
        series.refused += usize::from(!accepted);
    }
    series
}

/// Opens `count` connections with `connect`, `CONNECTING` at a time.
async fn open_all<T, F>(count: usize, connect: impl Fn() -> F) -> Vec<T>
where
    F: Future<Output = T>,
{
    futures::stream::iter(0..count).map(|_| connect()).buffer_unordered(CONNECTING).collect().await
}

async fn server_latency(server: &mut Madoguchi, subscribers: usize, events: usize, query: &str) -> Series {
    let (url, token) = (server.ws_url(), server.token().to_owned());
    graphql_latency(&url, &token, query, subscribers, events, async || server.deliver_next().await).await
}

async fn peer_latency(peer: &Peer, subscribers: usize, events: usize, query: &str) -> Series {
    let client = reqwest::Client::new();
    graphql_latency(&peer.ws_url(), "", query, subscribers, events, async || {
        client.post(peer.publish_url()).send().await.is_ok_and(|response| response.status() == 200)
    })
    .await
}

/// Opens `subscribers` GraphQL subscriptions to `url` and measures them
/// while `trigger` makes `events` events.
async fn graphql_latency(
    url: &str,
    token: &str,
    query: &str,
    subscribers: usize,
    events: usize,
    trigger: impl AsyncFnMut() -> bool,
) -> Series {
    let sockets = open_all(subscribers, || graphql_subscriber(url, token, query)).await;
    tokio::time::sleep(SETTLE).await;
    let (sender, mut receipts) = mpsc::unbounded_channel();
    let readers: Vec<JoinHandle<()>> = sockets
        .into_iter()
        .enumerate()
        .map(|(subscriber, mut ws)| {
            let sender = sender.clone();
            tokio::spawn(async move {
                while let Received::Message(message) = ws.next().await {
                    if message["type"] == "next" {
                        if !message["payload"]["errors"].is_null() {
                            panic!("the subscription failed: {message}");
                        }
                        let at = Instant::now();
                        let kind = message["payload"]["data"]["chatEvents"]["kind"].as_str().unwrap_or_default();
                        let _ = sender.send(Receipt { subscriber, at, kind: kind.to_owned() });
                    }
                }
            })
        })
        .collect();
    let series = measure(&mut receipts, subscribers, events, trigger).await;
    close(readers).await;
    series
}

async fn floor_latency(floor: &Floor, subscribers: usize, events: usize) -> Series {
    let url = floor.url();
    let sockets = open_all(subscribers, || plain_subscriber(&url)).await;
    floor.wait_for_receivers(subscribers).await;
    let (sender, mut receipts) = mpsc::unbounded_channel();
    let readers: Vec<JoinHandle<()>> = sockets
        .into_iter()
        .enumerate()
        .map(|(subscriber, mut socket)| {
            let sender = sender.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = socket.next().await {
                    if let Message::Text(text) = message {
                        // Decoded as the GraphQL client decodes, for the same client cost.
                        let message: Value = serde_json::from_str(&text).expect("json message");
                        let at = Instant::now();
                        let kind = message["payload"]["data"]["chatEvents"]["kind"].as_str().unwrap_or_default();
                        let _ = sender.send(Receipt { subscriber, at, kind: kind.to_owned() });
                    }
                }
            })
        })
        .collect();
    let series = measure(&mut receipts, subscribers, events, async || floor.publish().await).await;
    close(readers).await;
    floor.wait_for_receivers(0).await;
    series
}

/// Drops the connections and gives the server a moment to tidy up.
async fn close(readers: Vec<JoinHandle<()>>) {
    for reader in &readers {
        reader.abort();
    }
    for reader in readers {
        let _ = reader.await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// A child process holding idle client connections.
struct Clients {
    child: tokio::process::Child,
    /// The child's own resident-memory growth from opening the connections.
    client_bytes: u64,
}

impl Clients {
    /// Runs this binary again as `count` clients of `url` and waits until
    /// all are connected (and, for GraphQL, subscribed and answered a ping).
    async fn open(mode: &str, url: &str, token: &str, count: usize) -> Self {
        let count = count.to_string();
        let (child, line) =
            spawn_self(&[(CHILD_MODE, mode), (CHILD_URL, url), (CHILD_TOKEN, token), (CHILD_COUNT, &count)]).await;
        let mut numbers = line.split_whitespace().skip(1).map(|value| value.parse::<u64>().expect("a number"));
        let (before, after) = (numbers.next().expect("rss before"), numbers.next().expect("rss after"));
        Self { child, client_bytes: after.saturating_sub(before) }
    }

    async fn close(self) {
        stop_child(self.child).await;
    }
}

/// The body of the child process: opens the connections, reports its
/// resident memory before and after, and holds them until stdin closes.
async fn run_clients(mode: &str) {
    let url = std::env::var(CHILD_URL).expect("child url");
    let token = std::env::var(CHILD_TOKEN).expect("child token");
    let count: usize = std::env::var(CHILD_COUNT).expect("child count").parse().expect("child count");
    let before = resident_bytes("self");
    let (graphql, plain) = if mode == "graphql" {
        (open_all(count, || graphql_subscriber(&url, &token, QUERY)).await, Vec::new())
    } else {
        (Vec::new(), open_all(count, || plain_subscriber(&url)).await)
    };
    let after = resident_bytes("self");
    println!("ready {before} {after}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    wait_for_stdin_to_close().await;
    drop((graphql, plain));
}

/// Resident memory per idle connection: the server side (the server's
/// process) and the client side (the clients' process).
struct Memory {
    server_bytes: f64,
    client_bytes: f64,
}

/// Measures the growth of process `pid` while a child opens `count`
/// connections.
async fn idle_memory(
    pid: &str,
    mode: &str,
    url: &str,
    token: &str,
    count: usize,
    registered: impl AsyncFnOnce(),
) -> (Memory, Clients) {
    let before = resident_bytes(pid);
    let clients = Clients::open(mode, url, token, count).await;
    registered().await;
    let after = resident_bytes(pid);
    let memory = Memory {
        server_bytes: after.saturating_sub(before) as f64 / count as f64,
        client_bytes: clients.client_bytes as f64 / count as f64,
    };
    (memory, clients)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match std::env::var(CHILD_MODE).as_deref() {
        Ok("server") => return run_server().await,
        Ok("floor") => return run_floor().await,
        Ok(mode) => return run_clients(mode).await,
        Err(_) => {}
    }
    let quick = bench::quick();
    let events = bench::size("MADOGUCHI_BENCH_EVENTS", if quick { 10 } else { 50 });
    let counts: Vec<usize> = match std::env::var("MADOGUCHI_BENCH_SUBSCRIBERS") {
        Ok(list) => {
            list.split(',').map(|count| count.trim().parse().expect("MADOGUCHI_BENCH_SUBSCRIBERS: counts")).collect()
        }
        Err(_) => SUBSCRIBER_COUNTS.into_iter().filter(|&count| !quick || count <= 100).collect(),
    };
    let idle = bench::size("MADOGUCHI_BENCH_IDLE", if quick { IDLE_QUICK } else { IDLE });
    println!(
        "webhook → subscriber latency: {events} webhooks per row (after 1 warm-up), {GAP:?} apart, to one existing chat; \
         subscription `{QUERY}`; database pool {POOL}; every server in a process of its own"
    );

    let floor = Floor::start().await;
    let peer = Peer::start().await;
    let mut servers = Vec::new();
    for (name, backend, with_replica) in
        [("sqlite", "sqlite", false), ("postgres", "postgres", false), ("pg 2 proc", "postgres", true)]
    {
        match Madoguchi::start(name, backend, with_replica).await {
            Some(server) => servers.push(server),
            None => println!("{name}: PostgreSQL is not reachable, skipped"),
        }
    }

    // Memory first. Each server runs in a process of its own, so one's
    // freed buffers are never another's; each set of clients is closed once
    // measured.
    let mut memory = Vec::new();
    let (floor_memory, clients) =
        idle_memory(&floor.pid(), "plain", &floor.url(), "", idle, async || floor.wait_for_receivers(idle).await).await;
    clients.close().await;
    floor.wait_for_receivers(0).await;
    for server in servers.iter().filter(|server| server.replica.is_none()) {
        // One subscription first, so one-off initialisation is not counted.
        drop(graphql_subscriber(&server.ws_url(), server.token(), QUERY).await);
        tokio::time::sleep(SETTLE).await;
        let (server_memory, clients) =
            idle_memory(&server.server.pid(), "graphql", &server.ws_url(), server.token(), idle, async || {
                tokio::time::sleep(Duration::from_secs(1)).await;
            })
            .await;
        memory.push((server.name, server_memory));
        clients.close().await;
    }
    if let Some(peer) = &peer {
        drop(graphql_subscriber(&peer.ws_url(), "", QUERY).await);
        tokio::time::sleep(SETTLE).await;
        let (peer_memory, clients) = idle_memory(&peer.pid(), "graphql", &peer.ws_url(), "", idle, async || {
            tokio::time::sleep(Duration::from_secs(1)).await;
        })
        .await;
        memory.push(("yoga", peer_memory));
        clients.close().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut rows = Vec::new();
    let largest = *counts.last().expect("a subscriber count");
    let runs = counts.iter().map(|&count| (count, QUERY, "")).chain([(largest, MINIMAL_QUERY, " (cursor kind)")]);
    for (subscribers, query, label) in runs {
        let mut cells = Vec::new();
        for server in &mut servers {
            let series = server_latency(server, subscribers, events, query).await;
            if let Some(anomalies) = series.anomalies() {
                println!("{} S={subscribers}: {anomalies}", server.name);
            }
            cells.push(series.cells());
        }
        if let Some(peer) = &peer {
            let series = peer_latency(peer, subscribers, events, query).await;
            if let Some(anomalies) = series.anomalies() {
                println!("yoga S={subscribers}: {anomalies}");
            }
            cells.push(series.cells());
        }
        let series = floor_latency(&floor, subscribers, events).await;
        if let Some(anomalies) = series.anomalies() {
            println!("floor S={subscribers}: {anomalies}");
        }
        let floor_cells = series.cells();
        rows.push((format!("{subscribers}{label}"), cells, floor_cells));
    }

    println!();
    let mut header = format!("{:>19}", "S");
    for server in &servers {
        header.push_str(&format!(" | {:>11} | {:>11}", format!("{} p50", server.name), "p99"));
    }
    if peer.is_some() {
        header.push_str(&format!(" | {:>11} | {:>11}", "yoga p50", "p99"));
    }
    header.push_str(&format!(" | {:>11} | {:>11}", "floor p50", "p99"));
    println!("{header}");
    println!("{}", "-".repeat(header.len()));
    for (subscribers, cells, floor_cells) in rows {
        println!("{subscribers:>19} | {} | {floor_cells}", cells.join(" | "));
    }
    println!();
    println!("resident memory per idle subscription ({idle} open; clients in a separate process):");
    for (name, memory) in memory.iter().map(|(name, memory)| (*name, memory)).chain([("floor", &floor_memory)]) {
        println!(
            "{name:<8} server side {:>8.0} B/subscription | client side {:>8.0} B/connection",
            memory.server_bytes, memory.client_bytes
        );
    }
    for server in servers {
        server.stop().await;
    }
    floor.stop().await;
    if let Some(peer) = peer {
        peer.stop().await;
    }
}

/// The peer: graphql-yoga with graphql-ws on Node (`benches/peers/yoga`),
/// its packages installed from the npm registry as its lockfile pins them.
struct Peer {
    child: tokio::process::Child,
    port: u16,
}

impl Peer {
    /// Starts the peer; `None` (with the reason printed) when Node or its
    /// packages cannot be had.
    async fn start() -> Option<Self> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/yoga");
        if !dir.join("node_modules").is_dir() {
            let installed = tokio::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .await;
            if !installed.is_ok_and(|status| status.success()) {
                println!("yoga: `npm ci` in {} failed; the peer is skipped", dir.display());
                return None;
            }
        }
        let mut child = match tokio::process::Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("PORT", "0")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(error) => {
                println!("yoga: node does not start ({error}); the peer is skipped");
                return None;
            }
        };
        let stdout = child.stdout.take().expect("peer stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await.expect("the peer reports its port");
        let port = line.trim().strip_prefix("listening ").and_then(|port| port.parse().ok()).expect("a port");
        Some(Self { child, port })
    }

    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/graphql/ws", self.port)
    }

    fn publish_url(&self) -> String {
        format!("http://127.0.0.1:{}/publish", self.port)
    }

    fn pid(&self) -> String {
        self.child.id().expect("the peer runs").to_string()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
