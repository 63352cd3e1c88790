//! Benchmark: the agent console's two reads over GraphQL — the chat list
//! (`chats(first: 50)` with the fields a list shows) and one chat's
//! messages (`chat(id) { messages { … } }`) — at 64 concurrent clients, on
//! SQLite and on PostgreSQL, next to a floor: a bare axum handler on the same
//! database running the same queries through the same entities and
//! serialising the same JSON, with no authentication, no access rule and no
//! GraphQL. The server's statements per request come from its own
//! `db_statements_total` (an N+1 shows there); the floor's are counted by
//! hand.
//!
//! `cargo bench -p madoguchi-tests --bench queries [-- --quick]`.
//! `MADOGUCHI_BENCH_REQUESTS` (default 2000, 300 with `--quick`) and
//! `MADOGUCHI_BENCH_CONCURRENCY` (default 64) change the size.
#![allow(clippy::print_stdout)]

/// The server's allocator, as in the `madoguchi` binary (the floors and
/// clients in this process run on it too).
#[global_allocator]
static ALLOCATOR: madoguchi_server::Allocator = madoguchi_server::Allocator;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use futures::StreamExt;
use madoguchi_entity::{attachments, chats, end_users, messages};
use madoguchi_tests::bench::{self, Pass, Requests};
use madoguchi_tests::line::text_event;
use madoguchi_tests::{Backend, TestApp, spawn_app_with};
use sea_orm::{ColumnTrait, Database, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};

/// Chats in the organization, and messages in each.
const CHATS: usize = 200;
const MESSAGES_PER_CHAT: usize = 10;
/// Requests sent before measuring.
const WARMUP: usize = 100;
/// The server's documented pool size, for the floor too.
const POOL: u32 = 10;

const CHAT_LIST: &str = "{ chats(first: 50) { edges { cursor node { id status claimedBy lastMessageAt \
    lastMessagePreview unreadCount updatedAt endUser { displayName customerId } } } pageInfo { hasNextPage endCursor } } }";
const CHAT_MESSAGES: &str = "query($id: ID!) { chat(id: $id) { id messages { id direction kind text deliveryState \
    createdAt attachments { id kind status } } } }";

/// What one pass measured.
struct Run {
    pass: Pass,
    failures: usize,
    /// Statements the server ran per request (`None` for the floor).
    statements: Option<f64>,
}

/// Which read is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    ChatList,
    ChatMessages,
}

/// One prepared request: GraphQL to the server, or a path to the floor.
#[derive(Clone)]
enum Target {
    Server { url: String, token: String, body: Value },
    Floor { url: String },
}

/// Sends every request, `concurrency` at a time, and times each from send
/// to the whole body; a response is a failure unless it is 200 with data
/// and no errors.
async fn drive(client: &reqwest::Client, targets: &[Target], concurrency: usize) -> Run {
    let started = Instant::now();
    let results: Vec<(Duration, bool)> = futures::stream::iter(targets)
        .map(|target| async move {
            let sent = Instant::now();
            let request = match target {
                Target::Server { url, token, body } => client.post(url).bearer_auth(token).json(body),
                Target::Floor { url } => client.get(url),
            };
            let body = match request.send().await {
                Ok(response) if response.status() == 200 => response.json::<Value>().await.ok(),
                _ => None,
            };
            let ok = body.is_some_and(|body| body["errors"].is_null() && !body["data"].is_null());
            (sent.elapsed(), ok)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let failures = results.iter().filter(|(_, ok)| !ok).count();
    let pass = Pass::new(wall, results.into_iter().map(|(latency, _)| latency).collect());
    Run { pass, failures, statements: None }
}

/// The server's `db_statements_total`, summed over results.
async fn statements(client: &reqwest::Client, app: &TestApp) -> f64 {
    let text = client
        .get(format!("http://{}/metrics", app.metrics))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| line.starts_with("db_statements_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A server with `CHATS` chats of `MESSAGES_PER_CHAT` messages each.
struct Seeded {
    app: TestApp,
    token: String,
    chat_ids: Vec<String>,
}

async fn seed(backend: Backend) -> Option<Seeded> {
    let app = spawn_app_with(backend, |settings| settings.database_max_connections = POOL).await?;
    let token = app.login_admin().await;
    let channel = app.create_line_channel(&token, "REPLY", "FREE").await;
    for round in 0..MESSAGES_PER_CHAT {
        for chunk in (0..CHATS).collect::<Vec<_>>().chunks(50) {
            let events = chunk
                .iter()
                .map(|user| {
                    let id = format!("{user:04}-{round:02}");
                    text_event(&format!("U{user:032x}"), &id, &format!("message {round} of customer {user}"), &id)
                })
                .collect();
            assert_eq!(app.deliver_line(&channel, events).await, 200);
        }
    }
    let mut chat_ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = app
            .graphql(
                Some(&token),
                "query($after: String) { chats(first: 100, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage } } }",
                json!({"after": after}),
            )
            .await;
        let edges = page["data"]["chats"]["edges"].as_array().expect("chats").clone();
        chat_ids.extend(edges.iter().map(|edge| edge["node"]["id"].as_str().expect("id").to_owned()));
        after = edges.last().and_then(|edge| edge["cursor"].as_str()).map(str::to_owned);
        if page["data"]["chats"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
    }
    assert_eq!(chat_ids.len(), CHATS, "every chat seeded");
    Some(Seeded { app, token, chat_ids })
}

fn server_targets(seeded: &Seeded, read: Read, count: usize) -> Vec<Target> {
    let url = seeded.app.url("/graphql");
    (0..count)
        .map(|n| {
            let body = match read {
                Read::ChatList => json!({"query": CHAT_LIST}),
                Read::ChatMessages => {
                    json!({"query": CHAT_MESSAGES, "variables": {"id": seeded.chat_ids[n % seeded.chat_ids.len()]}})
                }
            };
            Target::Server { url: url.clone(), token: seeded.token.clone(), body }
        })
        .collect()
}

async fn measure_server(seeded: &Seeded, read: Read, config: Requests) -> Run {
    let client = reqwest::Client::new();
    drive(&client, &server_targets(seeded, read, WARMUP), config.concurrency).await;
    let before = statements(&client, &seeded.app).await;
    let mut run = drive(&client, &server_targets(seeded, read, config.requests), config.concurrency).await;
    let after = statements(&client, &seeded.app).await;
    run.statements = Some((after - before) / config.requests as f64);
    run
}

/// The floor's state: a pool of its own on the server's database.
#[derive(Clone)]
struct Floor {
    db: DatabaseConnection,
    organization_id: uuid::Uuid,
}

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    at.map_or(Value::Null, |at| json!(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))
}

/// The chat list: the page of chats (one more than asked, to know whether
/// another page follows), then their end users — two statements.
async fn floor_chats(State(floor): State<Arc<Floor>>) -> axum::Json<Value> {
    let rows = chats::Entity::find()
        .filter(chats::Column::OrganizationId.eq(floor.organization_id))
        .order_by_desc(chats::Column::UpdatedAt)
        .order_by_desc(chats::Column::Id)
        .limit(51)
        .all(&floor.db)
        .await
        .expect("chats");
    let has_next_page = rows.len() > 50;
    let rows: Vec<_> = rows.into_iter().take(50).collect();
    let users: std::collections::HashMap<uuid::Uuid, end_users::Model> = end_users::Entity::find()
        .filter(end_users::Column::Id.is_in(rows.iter().map(|row| row.end_user_id)))
        .all(&floor.db)
        .await
        .expect("end users")
        .into_iter()
        .map(|user| (user.id, user))
        .collect();
    let edges: Vec<Value> = rows
        .iter()
        .map(|row| {
            let user = &users[&row.end_user_id];
            json!({"cursor": format!("{}|{}", row.updated_at.timestamp_micros(), row.id), "node": {
                "id": row.id.to_string(), "status": row.status, "claimedBy": row.claimed_by_agent_id.map(|id| id.to_string()),
                "lastMessageAt": time(row.last_message_at), "lastMessagePreview": row.last_message_preview,
                "unreadCount": row.unread_count, "updatedAt": time(Some(row.updated_at)),
                "endUser": {"displayName": user.display_name, "customerId": user.external_id},
            }})
        })
        .collect();
    let end_cursor = edges.last().map(|edge| edge["cursor"].clone()).unwrap_or(Value::Null);
    axum::Json(
        json!({"data": {"chats": {"edges": edges, "pageInfo": {"hasNextPage": has_next_page, "endCursor": end_cursor}}}}),
    )
}

/// One chat's messages: the chat, its newest 100 messages, their
/// attachments — three statements.
async fn floor_messages(State(floor): State<Arc<Floor>>, Path(id): Path<uuid::Uuid>) -> axum::Json<Value> {
    let chat = chats::Entity::find_by_id(id)
        .filter(chats::Column::OrganizationId.eq(floor.organization_id))
        .one(&floor.db)
        .await
        .expect("chat")
        .expect("a chat");
    let mut rows = messages::Entity::find()
        .filter(messages::Column::ChatId.eq(chat.id))
        .order_by_desc(messages::Column::CreatedAt)
        .order_by_desc(messages::Column::Id)
        .limit(100)
        .all(&floor.db)
        .await
        .expect("messages");
    rows.reverse();
    let found = attachments::Entity::find()
        .filter(attachments::Column::MessageId.is_in(rows.iter().map(|row| row.id)))
        .all(&floor.db)
        .await
        .expect("attachments");
    let messages: Vec<Value> = rows
        .iter()
        .map(|row| {
            let attachments: Vec<Value> = found
                .iter()
                .filter(|attachment| attachment.message_id == row.id)
                .map(|attachment| json!({"id": attachment.id.to_string(), "kind": attachment.kind, "status": attachment.status}))
                .collect();
            json!({"id": row.id.to_string(), "direction": row.direction, "kind": row.kind, "text": row.text,
                "deliveryState": row.delivery_state, "createdAt": time(Some(row.created_at)), "attachments": attachments})
        })
        .collect();
    axum::Json(json!({"data": {"chat": {"id": chat.id.to_string(), "messages": messages}}}))
}

async fn measure_floor(seeded: &Seeded, read: Read, config: Requests) -> Run {
    let mut options = sea_orm::ConnectOptions::new(seeded.app.settings.database_url.clone());
    options.max_connections(POOL).sqlx_logging(false);
    let db = Database::connect(options).await.expect("floor database");
    let organization_id = chats::Entity::find().one(&db).await.expect("a chat").expect("a chat").organization_id;
    let floor = Arc::new(Floor { db, organization_id });
    let router = Router::new()
        .route("/chats", get(floor_chats))
        .route("/chats/{id}/messages", get(floor_messages))
        .with_state(floor.clone());
    let served = bench::Served::start(router).await;
    let address = served.address;
    let targets = |count: usize| -> Vec<Target> {
        (0..count)
            .map(|n| match read {
                Read::ChatList => Target::Floor { url: format!("http://{address}/chats") },
                Read::ChatMessages => Target::Floor {
                    url: format!("http://{address}/chats/{}/messages", seeded.chat_ids[n % seeded.chat_ids.len()]),
                },
            })
            .collect()
    };
    let client = reqwest::Client::new();
    drive(&client, &targets(WARMUP), config.concurrency).await;
    let mut run = drive(&client, &targets(config.requests), config.concurrency).await;
    run.statements = Some(match read {
        Read::ChatList => 2.0,
        Read::ChatMessages => 3.0,
    });
    served.stop().await;
    floor.db.clone().close().await.expect("floor database closes");
    run
}

fn cells(run: &Run) -> String {
    format!(
        "{:>9.0} req/s | {:>8.2} ms | {:>8.2} ms | {:>6.1} | {:>7}",
        run.pass.per_second(),
        run.pass.percentile_ms(0.50),
        run.pass.percentile_ms(0.99),
        run.statements.unwrap_or(f64::NAN),
        run.failures
    )
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Requests::from_environment(64);
    println!(
        "agent console reads: {} requests (after {WARMUP} warm-up) at {} concurrent; {CHATS} chats of {MESSAGES_PER_CHAT} messages; database pool {POOL}",
        config.requests, config.concurrency
    );
    let mut rows = Vec::new();
    for (name, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
        let Some(seeded) = seed(backend).await else {
            println!("{name}: PostgreSQL is not reachable, skipped");
            continue;
        };
        for (read_name, read) in [("chats(first: 50)", Read::ChatList), ("chat.messages", Read::ChatMessages)] {
            let server = measure_server(&seeded, read, config).await;
            let floor = measure_floor(&seeded, read, config).await;
            rows.push((format!("{name} {read_name}"), server, floor));
        }
        seeded.app.stop().await.expect("server stops");
    }
    println!();
    println!(
        "{:<26} | {:>15} | {:>11} | {:>11} | {:>6} | {:>7} | {:>15} | {:>11} | {:>11} | {:>6} | {:>7} | {:>6}",
        "backend, read", "server", "p50", "p99", "stmts", "failed", "floor", "p50", "p99", "stmts", "failed", "ratio"
    );
    println!("{}", "-".repeat(170));
    for (name, server, floor) in &rows {
        println!(
            "{name:<26} | {} | {} | {:>5.0} %",
            cells(server),
            cells(floor),
            100.0 * server.pass.per_second() / floor.pass.per_second()
        );
    }
}
