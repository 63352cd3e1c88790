//! The GraphiQL page on `GET /graphql` and its assets under
//! `/graphql/assets/…`, built into the binary so that the page works on a
//! machine with no internet (`server/assets/graphiql/`; the third-party
//! files come from npm through `scripts/vendor-graphiql`).

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The page's policy: its own scripts and styles only, fonts and icons as
/// `data:` URIs (GraphiQL's stylesheet embeds them), connections back to this
/// origin (HTTP and WebSocket), no frames, no forms elsewhere.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $path:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/graphiql/", $path)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("madoguchi-graphiql.js", "madoguchi-graphiql.js", "text/javascript; charset=utf-8"),
    asset!("madoguchi-graphiql.css", "madoguchi-graphiql.css", "text/css; charset=utf-8"),
    asset!("react.production.min.js", "vendor/react.production.min.js", "text/javascript; charset=utf-8"),
    asset!("react-dom.production.min.js", "vendor/react-dom.production.min.js", "text/javascript; charset=utf-8"),
    asset!("graphiql.min.js", "vendor/graphiql.min.js", "text/javascript; charset=utf-8"),
    asset!("graphiql.min.css", "vendor/graphiql.min.css", "text/css; charset=utf-8"),
    asset!("graphql-ws.min.js", "vendor/graphql-ws.min.js", "text/javascript; charset=utf-8"),
    asset!("THIRD-PARTY-LICENSES.txt", "vendor/THIRD-PARTY-LICENSES.txt", "text/plain; charset=utf-8"),
];

const PAGE: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/graphiql/index.html"));

/// The routes of the page and its assets; `GET /graphql` is the page.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/graphql/assets/{name}", get(asset))
}

/// Serves the page itself.
pub async fn page() -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, PAGE).into_response()
}

async fn asset(Path(name): Path<String>, request_headers: HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, asset)| asset.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = etag(index);
    let fresh = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag.to_str().unwrap_or_default()));
    // Revalidated after a day: the names do not change between releases.
    let headers = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let mut response = (headers, asset.bytes).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    response
}

/// A strong validator from the asset's content, computed once per asset.
fn etag(index: usize) -> HeaderValue {
    static TAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.bytes);
                let tag = format!("\"{}\"", hex::encode(&digest[..16]));
                HeaderValue::from_str(&tag).expect("hex is a valid header value")
            })
            .collect()
    });
    tags[index].clone()
}
