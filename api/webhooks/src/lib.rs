//! The HTTP routes where LINE and WeChat deliver: verify, hand to core,
//! answer. Nothing else lives here.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use madoguchi_core::intake::WebhookOutcome;
use madoguchi_core::providers::wechat::CallbackQuery;
use madoguchi_core::{Core, Error, ErrorCode};

/// The largest webhook body accepted. LINE's bodies are a few kilobytes;
/// WeChat's XML parser refuses more than 256 KiB on its own.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

/// Returns the webhook routes, mounted under `/webhooks`.
pub fn routes(core: Core) -> Router {
    Router::new()
        .route("/line/{channel_id}", post(line))
        .route("/wechat/{channel_id}", get(wechat_verify).post(wechat))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
        .with_state(core)
}

/// `POST /webhooks/line/{channel_id}`: answers 200 only once every new
/// event is committed; 401 for a bad signature, 404 for an unknown or
/// deleted channel, 400 for a malformed body.
async fn line(State(core): State<Core>, Path(channel_id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers.get("x-line-signature").and_then(|value| value.to_str().ok());
    match core.line_inbound().receive(&channel_id, signature, &body).await {
        Ok(outcome) => {
            count("line", outcome);
            StatusCode::OK.into_response()
        }
        Err(error) => to_response(error),
    }
}

/// `GET /webhooks/wechat/{channel_id}`: WeChat's URL verification; echoes
/// `echostr` when the signature matches, else 401.
async fn wechat_verify(
    State(core): State<Core>,
    Path(channel_id): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    match core.wechat_inbound().verify_url(&channel_id, &query).await {
        Ok(echo) => ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo).into_response(),
        Err(error) => to_response(error),
    }
}

/// `POST /webhooks/wechat/{channel_id}`: answers `success` only once a new
/// message is committed; 401 for a bad signature, 400 for a stale
/// timestamp or a body that does not decrypt or parse, 404 for an unknown
/// or deleted channel.
async fn wechat(
    State(core): State<Core>,
    Path(channel_id): Path<String>,
    Query(query): Query<CallbackQuery>,
    body: Bytes,
) -> Response {
    match core.wechat_inbound().receive(&channel_id, &query, &body).await {
        Ok(outcome) => {
            count("wechat", outcome);
            ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], "success").into_response()
        }
        Err(error) => to_response(error),
    }
}

fn count(provider: &'static str, outcome: WebhookOutcome) {
    if let WebhookOutcome::Accepted { stored, duplicates } = outcome {
        metrics::counter!("webhook_events_total", "provider" => provider, "outcome" => "stored")
            .increment(stored as u64);
        metrics::counter!("webhook_events_total", "provider" => provider, "outcome" => "duplicate")
            .increment(duplicates as u64);
    }
}

/// Maps a core error onto an HTTP status. Internal causes are logged here
/// and never sent.
fn to_response(error: Error) -> Response {
    let status = match error.code() {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::Conflict | ErrorCode::Aborted | ErrorCode::FailedPrecondition => StatusCode::CONFLICT,
        ErrorCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => {
            tracing::error!(error = ?error.cause(), "webhook failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, error.message().to_owned()).into_response()
}
