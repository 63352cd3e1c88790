//! The last line against a panic reachable from input: the request that hit
//! it answers `INTERNAL` (GraphQL-shaped JSON on HTTP, `grpc-status: 13` on
//! gRPC), the panic is logged, and the connection and the server live on.

use std::any::Any;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use tower_http::catch_panic::CatchPanicLayer;

/// Answers a panic on the HTTP listener with a 500 and a GraphQL error body.
pub fn guard_http(router: Router) -> Router {
    router.layer(CatchPanicLayer::custom(http_answer))
}

/// Answers a panic on the gRPC listener with status `INTERNAL`.
pub fn guard_grpc(router: Router) -> Router {
    router.layer(CatchPanicLayer::custom(grpc_answer))
}

fn log(panic: &(dyn Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    metrics::counter!("panics_total").increment(1);
    tracing::error!(panic = %message, "a request panicked; answered internal");
}

fn http_answer(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    log(&*panic);
    let body = r#"{"data":null,"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn grpc_answer(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    log(&*panic);
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from_static("13"));
    headers.insert("grpc-message", HeaderValue::from_static("internal%20error"));
    response
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn boom() -> &'static str {
        panic!("reachable from input")
    }

    fn panicking() -> Router {
        Router::new().route("/boom", get(boom))
    }

    async fn call(router: Router) -> Response<Body> {
        let request = axum::http::Request::get("/boom").body(Body::empty()).unwrap();
        router.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn a_panicking_http_request_answers_internal_as_graphql_does() {
        let response = call(guard_http(panicking())).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["errors"][0]["extensions"]["code"], "INTERNAL");
    }

    #[tokio::test]
    async fn a_panicking_grpc_call_answers_status_internal() {
        let response = call(guard_grpc(panicking())).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "13");
        assert_eq!(response.headers()["content-type"], "application/grpc");
    }
}
