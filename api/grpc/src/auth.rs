//! API-key authentication for every gRPC call, and the mapping of core
//! errors onto gRPC statuses.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use madoguchi_core::auth::Caller;
use madoguchi_core::{Core, Error, ErrorCode};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The service that takes the platform operator's key instead of an API key.
const PLATFORM_SERVICE: &str = "/madoguchi.v1.PlatformService/";

/// Authenticates `authorization: Bearer <api key>` and puts the caller in
/// the request's extensions — or, for `PlatformService` only, the platform
/// operator's key; answers `UNAUTHENTICATED` otherwise. Neither credential
/// is accepted where the other is expected.
pub async fn authenticate(State(core): State<Core>, mut request: Request, next: Next) -> Response {
    if is_open(request.uri().path()) {
        return next.run(request).await;
    }
    let platform = request.uri().path().starts_with(PLATFORM_SERVICE);
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::to_owned);
    let Some(presented) = presented else {
        let wanted = if platform { "the platform operator key" } else { "<api key>" };
        return to_status(Error::unauthenticated(format!("send authorization: Bearer {wanted}"))).into_http();
    };
    if platform {
        return match core.platform().authenticate(&presented) {
            Ok(operator) => {
                request.extensions_mut().insert(operator);
                next.run(request).await
            }
            Err(error) => to_status(error).into_http(),
        };
    }
    match core.api_keys().authenticate(&presented).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => to_status(error).into_http(),
    }
}

/// Every method the server serves, `/package.Service/Method`, read from the
/// descriptor sets it serves by reflection.
fn known_methods() -> &'static std::collections::HashSet<String> {
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<String>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut known = std::collections::HashSet::new();
        for set in [crate::pb::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
            let Ok(set) = <prost_types::FileDescriptorSet as prost::Message>::decode(set) else { continue };
            for file in set.file {
                for service in &file.service {
                    for method in &service.method {
                        known.insert(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
                    }
                }
            }
        }
        known.insert("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".to_owned());
        known.insert("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo".to_owned());
        known
    })
}

/// Counts every call by method and status (`grpc_requests_total`) and times
/// it (`grpc_request_duration_seconds`); the status is read where tonic puts
/// a refusal (the headers), so a call that answered is counted `OK`. A
/// method no service has is labelled `unknown`, so callers cannot grow the
/// label set (whatever the status: an unauthenticated caller's too).
pub async fn observe(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let span = tracing::info_span!("grpc call", rpc.path = %path, rpc.code = tracing::field::Empty);
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32);
    let method = if known_methods().contains(path.as_str()) { path } else { "unknown".to_owned() };
    let code = format!("{code:?}");
    span.record("rpc.code", code.as_str());
    metrics::counter!("grpc_requests_total", "method" => method.clone(), "code" => code).increment(1);
    metrics::histogram!("grpc_request_duration_seconds", "method" => method).record(started.elapsed().as_secs_f64());
    response
}

/// Health checks and reflection answer without a key: load balancers and
/// tools like grpcurl call them.
fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
}

/// Returns the caller the middleware authenticated.
pub(crate) fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| Status::unauthenticated("no caller"))
}

/// The `google.rpc.ErrorInfo` domain of our errors.
pub const ERROR_DOMAIN: &str = "madoguchi.dev";

/// Maps a core error onto a gRPC status, with `google.rpc` details: an
/// `ErrorInfo` whose reason is our error code (`INVALID_ARGUMENT`,
/// `CONFLICT`, …, as GraphQL's `extensions.code`), and for a bad field a
/// `BadRequest` naming it. Internal causes are logged here and never sent.
pub fn to_status(error: Error) -> Status {
    let code = match error.code() {
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::InvalidArgument => Code::InvalidArgument,
        ErrorCode::Unauthenticated => Code::Unauthenticated,
        ErrorCode::PermissionDenied => Code::PermissionDenied,
        ErrorCode::Conflict => Code::AlreadyExists,
        ErrorCode::Aborted => Code::Aborted,
        ErrorCode::FailedPrecondition => Code::FailedPrecondition,
        ErrorCode::ResourceExhausted => Code::ResourceExhausted,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Internal => {
            tracing::error!(error = ?error.cause(), "grpc call failed");
            Code::Internal
        }
    };
    let mut details = ErrorDetails::with_error_info(error.code().as_str(), ERROR_DOMAIN, HashMap::new());
    if let Some(field) = error.field() {
        let description = error.message().strip_prefix(&format!("{field}: ")).unwrap_or(error.message());
        details.add_bad_request_violation(field, description);
    }
    Status::with_error_details(code, error.message(), details)
}

/// Lets services use `?` on core results.
pub(crate) trait OrStatus<T> {
    fn status(self) -> Result<T, Status>;
}

impl<T> OrStatus<T> for madoguchi_core::Result<T> {
    fn status(self) -> Result<T, Status> {
        self.map_err(to_status)
    }
}

/// Converts a time into a protobuf timestamp.
pub(crate) fn timestamp(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_race_is_aborted_and_a_duplicate_already_exists() {
        assert_eq!(to_status(Error::aborted("the chat is already claimed")).code(), Code::Aborted);
        assert_eq!(to_status(Error::conflict("a department with that name exists")).code(), Code::AlreadyExists);
        let internal = to_status(Error::internal(std::io::Error::other("secret detail")));
        assert_eq!((internal.code(), internal.message()), (Code::Internal, "internal error"));
    }

    #[test]
    fn every_status_carries_our_code_and_a_bad_field_its_name() {
        let status = to_status(Error::invalid_field("transcript[1].text", "1 to 5000 characters"));
        assert_eq!(
            (status.code(), status.message()),
            (Code::InvalidArgument, "transcript[1].text: 1 to 5000 characters")
        );
        let details = status.get_error_details();
        let info = details.error_info().expect("an ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("INVALID_ARGUMENT", ERROR_DOMAIN));
        let violations = &details.bad_request().expect("a BadRequest").field_violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(
            (violations[0].field.as_str(), violations[0].description.as_str()),
            ("transcript[1].text", "1 to 5000 characters")
        );
        let conflict = to_status(Error::conflict("the chat is already in this ticket")).get_error_details();
        assert_eq!(conflict.error_info().map(|info| info.reason.as_str()), Some("CONFLICT"));
        assert!(conflict.bad_request().is_none());
    }
}
