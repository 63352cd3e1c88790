//! Benchmark: `TicketService.GetTicket` and `SearchTickets` over real gRPC
//! connections with an API key, on SQLite and on PostgreSQL, next to a
//! floor — a bare tonic handler on the same database running the same
//! ticket queries (the row, its chats) with no authentication and no
//! reach rule.
//!
//! `cargo bench -p madoguchi-tests --bench tickets [-- --quick]`.
//! `MADOGUCHI_BENCH_REQUESTS` (default 2000, 300 with `--quick`) and
//! `MADOGUCHI_BENCH_CONCURRENCY` (default 16) change the size.
#![allow(clippy::print_stdout)]

/// The server's allocator, as in the `madoguchi` binary (the floors and
/// clients in this process run on it too).
#[global_allocator]
static ALLOCATOR: madoguchi_server::Allocator = madoguchi_server::Allocator;

use std::time::{Duration, Instant};

use futures::StreamExt;
use madoguchi_entity::{ticket_chats, tickets};
use madoguchi_grpc::pb;
use madoguchi_grpc::pb::ticket_service_client::TicketServiceClient;
use madoguchi_grpc::pb::ticket_service_server::{TicketService, TicketServiceServer};
use madoguchi_tests::bench::{Pass, Requests};
use madoguchi_tests::{Backend, TestApp, spawn_app_with};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

/// Tickets in the portal.
const TICKETS: usize = 2_000;
/// Requests sent before measuring.
const WARMUP: usize = 100;
/// The server's documented pool size, for the floor too.
const POOL: u32 = 10;

/// What one pass measured.
struct Run {
    pass: Pass,
    failures: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Get,
    Search,
}

/// Sends `count` calls, `concurrency` at a time, each on a clone of one
/// HTTP/2 channel, and times each.
async fn drive(
    channel: tonic::transport::Channel,
    key: &str,
    ids: &[String],
    call: Call,
    count: usize,
    concurrency: usize,
) -> Run {
    let authorization: MetadataValue<_> = format!("Bearer {key}").parse().expect("metadata");
    let started = Instant::now();
    let results: Vec<(Duration, bool)> = futures::stream::iter(0..count)
        .map(|index| {
            let (channel, authorization) = (channel.clone(), authorization.clone());
            let id = ids[(index * 7919) % ids.len()].clone();
            async move {
                let mut client = TicketServiceClient::new(channel);
                let sent = Instant::now();
                let ok = match call {
                    Call::Get => {
                        let mut request = Request::new(pb::GetTicketRequest { ticket_id: id });
                        request.metadata_mut().insert("authorization", authorization);
                        client.get_ticket(request).await.is_ok_and(|answer| answer.into_inner().ticket.is_some())
                    }
                    Call::Search => {
                        let query = format!("visitor-{}@", index % TICKETS);
                        let mut request = Request::new(pb::SearchTicketsRequest { query, page_size: 20 });
                        request.metadata_mut().insert("authorization", authorization);
                        client.search_tickets(request).await.is_ok_and(|answer| !answer.into_inner().tickets.is_empty())
                    }
                };
                (sent.elapsed(), ok)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let failures = results.iter().filter(|(_, ok)| !ok).count();
    let pass = Pass::new(wall, results.into_iter().map(|(latency, _)| latency).collect());
    Run { pass, failures }
}

/// Writes `TICKETS` tickets into the bootstrap portal; returns their ids.
async fn seed(app: &TestApp) -> Vec<String> {
    let name = madoguchi_core::organizations::PortalName::parse("acme").expect("portal name");
    let portal = app.core.organizations().find_by_portal(&name).await.expect("portal").id.uuid();
    let now = chrono::Utc::now();
    let ids: Vec<uuid::Uuid> = (0..TICKETS).map(|_| uuid::Uuid::now_v7()).collect();
    for (chunk_index, chunk) in ids.chunks(200).enumerate() {
        let rows = chunk.iter().enumerate().map(|(offset, id)| {
            let number = (chunk_index * 200 + offset) as i64 + 1;
            tickets::ActiveModel {
                id: Set(*id),
                organization_id: Set(portal),
                number: Set(number),
                subject: Set(format!("Chat with Visitor {number}")),
                description: Set(Some(format!("[2026-12-01 10:00:00] Visitor {number}: my order {number} is late"))),
                status: Set("OPEN".into()),
                priority: Set("MEDIUM".into()),
                classification: Set(None),
                department_id: Set(None),
                contact_id: Set(None),
                email: Set(Some(format!("visitor-{}@example.com", number - 1))),
                created_at: Set(now),
                updated_at: Set(now),
                closed_at: Set(None),
            }
        });
        tickets::Entity::insert_many(rows).exec_without_returning(app.core.db()).await.expect("seed tickets");
    }
    ids.into_iter().map(|id| id.to_string()).collect()
}

/// The floor: the same two queries a ticket read makes, nothing else.
#[derive(Clone)]
struct Floor {
    db: DatabaseConnection,
}

impl Floor {
    async fn ticket(&self, row: tickets::Model) -> Result<pb::Ticket, Status> {
        let chats = ticket_chats::Entity::find()
            .filter(ticket_chats::Column::TicketId.eq(row.id))
            .order_by_asc(ticket_chats::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(|error| Status::internal(error.to_string()))?;
        let stamp = |time: chrono::DateTime<chrono::Utc>| prost_types::Timestamp {
            seconds: time.timestamp(),
            nanos: time.timestamp_subsec_nanos() as i32,
        };
        Ok(pb::Ticket {
            id: row.id.to_string(),
            portal_name: "acme".into(),
            number: row.number,
            subject: row.subject,
            description: row.description.unwrap_or_default(),
            status: pb::TicketStatus::Open.into(),
            priority: pb::TicketPriority::Medium.into(),
            classification: row.classification.unwrap_or_default(),
            department_id: row.department_id.map(|id| id.to_string()).unwrap_or_default(),
            email: row.email.unwrap_or_default(),
            chat_ids: chats.into_iter().map(|chat| chat.chat_id.to_string()).collect(),
            create_time: Some(stamp(row.created_at)),
            update_time: Some(stamp(row.updated_at)),
        })
    }
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not part of the floor"))
}

#[tonic::async_trait]
impl TicketService for Floor {
    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let id = uuid::Uuid::parse_str(&request.get_ref().ticket_id).map_err(|_| Status::invalid_argument("id"))?;
        let row = tickets::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(|error| Status::internal(error.to_string()))?
            .ok_or_else(|| Status::not_found("ticket"))?;
        Ok(Response::new(pb::GetTicketResponse { ticket: Some(self.ticket(row).await?) }))
    }

    async fn search_tickets(
        &self,
        request: Request<pb::SearchTicketsRequest>,
    ) -> Result<Response<pb::SearchTicketsResponse>, Status> {
        let pattern = format!("%{}%", request.get_ref().query.to_lowercase());
        let like = |column: tickets::Column| {
            Expr::from(Func::lower(Expr::col(column))).like(LikeExpr::new(&pattern).escape('\\'))
        };
        let rows = tickets::Entity::find()
            .filter(Condition::any().add(like(tickets::Column::Email)).add(like(tickets::Column::Subject)))
            .order_by_desc(tickets::Column::Number)
            .limit(20)
            .all(&self.db)
            .await
            .map_err(|error| Status::internal(error.to_string()))?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            found.push(self.ticket(row).await?);
        }
        Ok(Response::new(pb::SearchTicketsResponse { tickets: found }))
    }

    async fn convert_chat(
        &self,
        _: Request<pb::ConvertChatRequest>,
    ) -> Result<Response<pb::ConvertChatResponse>, Status> {
        unimplemented()
    }
    async fn merge_chat(&self, _: Request<pb::MergeChatRequest>) -> Result<Response<pb::MergeChatResponse>, Status> {
        unimplemented()
    }
    async fn list_recent_tickets(
        &self,
        _: Request<pb::ListRecentTicketsRequest>,
    ) -> Result<Response<pb::ListRecentTicketsResponse>, Status> {
        unimplemented()
    }
    async fn comment_on_ticket(
        &self,
        _: Request<pb::CommentOnTicketRequest>,
    ) -> Result<Response<pb::CommentOnTicketResponse>, Status> {
        unimplemented()
    }
    async fn list_ticket_comments(
        &self,
        _: Request<pb::ListTicketCommentsRequest>,
    ) -> Result<Response<pb::ListTicketCommentsResponse>, Status> {
        unimplemented()
    }
    async fn update_ticket_status(
        &self,
        _: Request<pb::UpdateTicketStatusRequest>,
    ) -> Result<Response<pb::UpdateTicketStatusResponse>, Status> {
        unimplemented()
    }
    async fn list_ticket_classifications(
        &self,
        _: Request<pb::ListTicketClassificationsRequest>,
    ) -> Result<Response<pb::ListTicketClassificationsResponse>, Status> {
        unimplemented()
    }
    async fn set_ticket_classifications(
        &self,
        _: Request<pb::SetTicketClassificationsRequest>,
    ) -> Result<Response<pb::SetTicketClassificationsResponse>, Status> {
        unimplemented()
    }
    async fn get_desk_information(
        &self,
        _: Request<pb::GetDeskInformationRequest>,
    ) -> Result<Response<pb::GetDeskInformationResponse>, Status> {
        unimplemented()
    }
}

/// Serves the floor on loopback; returns a channel to it and its stopper.
async fn start_floor(url: &str) -> (tonic::transport::Channel, tokio::sync::oneshot::Sender<()>) {
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    options.max_connections(POOL).sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await.expect("floor database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TicketServiceServer::new(Floor { db }))
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await
            .expect("floor serves");
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("floor channel");
    (channel, stop)
}

fn print_row(store: &str, call: Call, server: &Run, floor: &Run) {
    let name = match call {
        Call::Get => "GetTicket",
        Call::Search => "SearchTickets",
    };
    println!(
        "| {store} | {name} | {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms | {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms | {:.0} % |",
        server.pass.per_second(),
        server.pass.percentile_ms(0.5),
        server.pass.percentile_ms(0.99),
        floor.pass.per_second(),
        floor.pass.percentile_ms(0.5),
        floor.pass.percentile_ms(0.99),
        100.0 * server.pass.per_second() / floor.pass.per_second(),
    );
    if server.failures + floor.failures > 0 {
        println!("  ({} server and {} floor calls failed)", server.failures, floor.failures);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Requests::from_environment(16);
    println!(
        "tickets over gRPC: {} tickets, {} requests per row, {} concurrent; floor: bare tonic, same queries\n",
        TICKETS, config.requests, config.concurrency
    );
    println!("| store | call | server | floor | server / floor |");
    println!("|---|---|---|---|---|");
    for (backend, store) in [(Backend::Sqlite, "SQLite"), (Backend::Postgres, "PostgreSQL")] {
        let Some(app) = spawn_app_with(backend, |settings| settings.database_max_connections = POOL).await else {
            println!("| {store} | (PostgreSQL not reachable: skipped) | | | |");
            continue;
        };
        let admin = app.login_admin().await;
        let created = app
            .graphql(
                Some(&admin),
                "mutation { createApiKey(name: \"bench\", scopes: [\"tickets:read\"]) { secret } }",
                json!({}),
            )
            .await;
        let key = created["data"]["createApiKey"]["secret"].as_str().expect("api key").to_owned();
        let ids = seed(&app).await;
        let server = app.grpc_channel().await;
        let (floor, stop) = start_floor(&app.database.url).await;
        for call in [Call::Get, Call::Search] {
            drive(server.clone(), &key, &ids, call, WARMUP, config.concurrency).await;
            drive(floor.clone(), &key, &ids, call, WARMUP, config.concurrency).await;
            let measured = drive(server.clone(), &key, &ids, call, config.requests, config.concurrency).await;
            let bare = drive(floor.clone(), &key, &ids, call, config.requests, config.concurrency).await;
            print_row(store, call, &measured, &bare);
        }
        let _ = stop.send(());
        app.stop().await.expect("server stops");
    }
}
