//! The HTTP routes where LINE and WeChat deliver: verify, hand to core,
//! answer. Nothing else lives here.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use madoguchi_core::intake::WebhookOutcome;
use madoguchi_core::{Core, Error, ErrorCode};

/// The largest webhook body accepted. LINE's bodies are a few kilobytes.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

/// Returns the webhook routes, mounted under `/webhooks`.
pub fn routes(core: Core) -> Router {
    Router::new()
        .route("/line/{channel_id}", post(line))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
        .with_state(core)
}

/// `POST /webhooks/line/{channel_id}`: answers 200 only once every new
/// event is committed; 401 for a bad signature, 404 for an unknown or
/// deleted channel, 400 for a malformed body.
async fn line(State(core): State<Core>, Path(channel_id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers.get("x-line-signature").and_then(|value| value.to_str().ok());
    match core.line_inbound().receive(&channel_id, signature, &body).await {
        Ok(WebhookOutcome::Accepted { stored, duplicates }) => {
            metrics::counter!("webhook_events_total", "provider" => "line", "outcome" => "stored")
                .increment(stored as u64);
            metrics::counter!("webhook_events_total", "provider" => "line", "outcome" => "duplicate")
                .increment(duplicates as u64);
            StatusCode::OK.into_response()
        }
        Ok(WebhookOutcome::Ignored) => StatusCode::OK.into_response(),
        Err(error) => to_response(error),
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
