//! The HTTP router: `/graphql` (POST; GraphiQL on GET), `/graphql/ws`
//! (graphql-transport-ws, authenticated in `connection_init`),
//! `/webhooks/…`, `/livez` and `/readyz`; `/metrics` has a listener of its
//! own (`metrics_addr`, loopback by default).

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols};
use async_graphql::{Data, ErrorExtensions};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;

use madoguchi_core::Core;
use madoguchi_graphql::{Authentication, ClientAddress, Schemas, authenticate_bearer, authenticate_session};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{graphiql, graphql_ws, telemetry};

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub core: Core,
    pub schemas: Schemas,
    /// Cancelled when the server begins to shut down.
    pub shutdown: CancellationToken,
    /// WebSocket sessions, awaited on shutdown.
    pub sessions: TaskTracker,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState").field("core", &self.core).finish_non_exhaustive()
    }
}

/// The router of the metrics listener: `/metrics` alone.
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(|| async { telemetry::metrics().render() }))
}

/// What shapes the router besides the shared state.
#[derive(Clone, Copy, Debug)]
pub struct RouterOptions {
    /// Largest request body on `/graphql`.
    pub body_limit: usize,
    /// Whether `GET /graphql` serves the GraphiQL page.
    pub graphiql: bool,
}

/// Builds the router.
pub fn router(state: HttpState, options: RouterOptions) -> Router {
    let RouterOptions { body_limit, graphiql } = options;
    let webhooks = madoguchi_webhooks::routes(state.core.clone());
    let graphql = if graphiql { get(graphiql::page).post(graphql) } else { post(graphql) };
    let pages = if graphiql { graphiql::routes() } else { Router::new() };
    let router = Router::new()
        .route("/graphql", graphql)
        .route("/graphql/ws", get(graphql_ws))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/media/{token}", get(media))
        .merge(pages)
        .with_state(state)
        .nest("/webhooks", webhooks)
        .layer(DefaultBodyLimit::max(body_limit))
        // Streams (GraphQL multipart, JSON) are cut off too, not only extractors.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit))
        .layer(axum::middleware::from_fn(telemetry::record_http_metrics));
    crate::panics::guard_http(router)
}

/// Runs one GraphQL request. The caller is authenticated from the headers
/// before the body is read, so a multipart upload from someone who may not
/// upload is refused without parsing (or spooling) a byte of it.
async fn graphql(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let headers = request.headers();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    let authentication = authenticate_bearer(&state.core, authorization).await;
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("multipart/"));
    if multipart && !matches!(authentication, Authentication::Authenticated(_)) {
        let message = match &authentication {
            Authentication::Failed(message) => message.clone(),
            _ => "uploads need a session: send authorization: Bearer <token>".to_owned(),
        };
        let error = async_graphql::ServerError::new(message, None);
        let mut response = async_graphql::Response::from_errors(vec![error]);
        set_code(&mut response, "UNAUTHENTICATED");
        return (StatusCode::UNAUTHORIZED, GraphQLResponse::from(response)).into_response();
    }
    let request =
        match GraphQLRequest::<async_graphql_axum::rejection::GraphQLRejection>::from_request(request, &()).await {
            Ok(request) => request.into_inner(),
            Err(rejection) => return rejection.into_response(),
        };
    let schema = state.schemas.for_query(&request.query, request.operation_name.as_deref());
    let request = request.data(authentication).data(ClientAddress(peer.ip()));
    let mut response = schema.execute(request).await;
    // Parse, validation and limit errors come from async-graphql itself.
    set_code(&mut response, "INVALID_ARGUMENT");
    GraphQLResponse::from(response).into_response()
}

/// Gives every error of `response` that has no code the code `code`.
fn set_code(response: &mut async_graphql::Response, code: &'static str) {
    for error in &mut response.errors {
        let has_code = error.extensions.as_ref().is_some_and(|extensions| extensions.get("code").is_some());
        if !has_code {
            let coded = async_graphql::Error::new(error.message.clone())
                .extend_with(|_, extensions| extensions.set("code", code));
            error.extensions = coded.extensions;
        }
    }
}

/// Serves media behind an unguessable, expiring token (see `core::media`).
async fn media(State(state): State<HttpState>, axum::extract::Path(token): axum::extract::Path<String>) -> Response {
    match state.core.media().open(&token).await {
        Ok(media) => {
            let disposition = content_disposition(media.inline, media.file_name.as_deref());
            let headers = [
                (header::CONTENT_TYPE, media.content_type),
                (header::CONTENT_DISPOSITION, disposition),
                (header::CACHE_CONTROL, "private, max-age=300".to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                // Even if a browser renders it, it runs nothing and reaches nothing.
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox".to_owned()),
            ];
            (headers, media.bytes).into_response()
        }
        Err(error) if error.code() == madoguchi_core::ErrorCode::Internal => {
            tracing::error!(error = ?error.cause(), "cannot serve media");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `inline`, or `attachment` with the file's name (RFC 6266: an ASCII
/// fallback and the UTF-8 name percent-encoded).
fn content_disposition(inline: bool, file_name: Option<&str>) -> String {
    if inline {
        return "inline".to_owned();
    }
    let Some(name) = file_name.filter(|name| !name.is_empty()) else { return "attachment".to_owned() };
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ".contains(c) { c } else { '_' }).collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

async fn readyz(State(state): State<HttpState>) -> Response {
    match state.core.ready().await {
        Ok(()) => "ready".into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.message().to_owned()).into_response(),
    }
}

/// A WebSocket's read buffer. Clients send small operations (files go by
/// multipart POST): `connection_init` with a token, `subscribe` with a
/// chat list's selection, pings — 1 KiB reads each in one go; a larger
/// message is read in several. tungstenite's default, 128 KiB, cost that
/// much per idle subscription.
const WEBSOCKET_READ_BUFFER: usize = 1024;
/// Outgoing frames are flushed one message at a time; this only bounds how
/// much is gathered before writing.
const WEBSOCKET_WRITE_BUFFER: usize = 8 * 1024;
/// The largest message a client may send (an operation with variables).
const WEBSOCKET_MAX_MESSAGE: usize = 1024 * 1024;

async fn graphql_ws(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = graphql_ws::requested_protocol(&headers) else {
        return (StatusCode::BAD_REQUEST, "Sec-WebSocket-Protocol: graphql-transport-ws").into_response();
    };
    let sessions = state.sessions.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(WEBSOCKET_READ_BUFFER)
        .write_buffer_size(WEBSOCKET_WRITE_BUFFER)
        .max_message_size(WEBSOCKET_MAX_MESSAGE)
        .on_upgrade(move |socket| sessions.track_future(serve_websocket(state, peer, protocol, socket)))
}

/// Counts open WebSocket connections while it lives.
struct OpenConnection;

impl OpenConnection {
    fn new() -> Self {
        metrics::gauge!("websocket_connections").increment(1.0);
        Self
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("websocket_connections").decrement(1.0);
    }
}

/// Serves one GraphQL WebSocket (either protocol), authenticated by its
/// `connection_init`. On shutdown its subscriptions end and the socket
/// closes with 1001. Operations on it know the client's address, as over
/// HTTP, so a `login` sent on a socket counts against the address's limit.
async fn serve_websocket(state: HttpState, peer: SocketAddr, protocol: WebSocketProtocols, socket: WebSocket) {
    let _open = OpenConnection::new();
    let core = state.core.clone();
    let authenticate = move |payload: serde_json::Value| async move {
        let authorization = payload
            .get("authorization")
            .or_else(|| payload.get("Authorization"))
            .and_then(|value| value.as_str())
            .map(str::to_owned);
        let (authentication, expires_at) = authenticate_session(&core, authorization.as_deref()).await;
        match authentication {
            Authentication::Authenticated(caller) => {
                let session = expires_at.map(|expires_at| (expires_at, caller.clone()));
                let mut data = Data::default();
                data.insert(Authentication::Authenticated(caller));
                data.insert(ClientAddress(peer.ip()));
                Ok((data, session))
            }
            Authentication::Failed(message) => Err(message.to_string()),
            Authentication::Anonymous => {
                Err("send {\"authorization\": \"Bearer <token>\"} in connection_init".to_owned())
            }
        }
    };
    let connection = graphql_ws::Connection {
        protocol,
        executor: state.schemas.subscriptions(),
        core: state.core.clone(),
        shutdown: state.shutdown.clone(),
        authenticate,
    };
    graphql_ws::serve(socket, connection).await;
}
