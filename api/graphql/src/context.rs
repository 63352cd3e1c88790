//! The caller of a GraphQL operation, and the mapping of core errors onto
//! GraphQL errors with `extensions.code`.

use async_graphql::{Context, ErrorExtensions};
use chrono::{DateTime, Utc};
use madoguchi_core::auth::Caller;
use madoguchi_core::{Core, Error, ErrorCode};

/// Who is calling, as established before the operation runs.
#[derive(Clone, Debug)]
pub enum Authentication {
    /// No credentials were presented.
    Anonymous,
    Authenticated(Caller),
    /// Credentials were presented and rejected; operations that need a
    /// caller fail with this error.
    Failed(String),
}

/// Authenticates a `Bearer` session token (from the `Authorization` header
/// or the `connection_init` payload).
pub async fn authenticate_bearer(core: &Core, header: Option<&str>) -> Authentication {
    authenticate_session(core, header).await.0
}

/// Like [`authenticate_bearer`], also returning when the session expires.
pub async fn authenticate_session(core: &Core, header: Option<&str>) -> (Authentication, Option<DateTime<Utc>>) {
    let Some(header) = header else {
        return (Authentication::Anonymous, None);
    };
    let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).unwrap_or(header).trim();
    match core.agents().authenticate_session(token).await {
        Ok((caller, expires_at)) => (Authentication::Authenticated(caller), Some(expires_at)),
        Err(error) => (Authentication::Failed(error.message().to_owned()), None),
    }
}

/// Returns the caller, or `UNAUTHENTICATED`.
pub(crate) fn caller(ctx: &Context<'_>) -> async_graphql::Result<Caller> {
    match ctx.data_opt::<Authentication>() {
        Some(Authentication::Authenticated(caller)) => Ok(caller.clone()),
        Some(Authentication::Failed(message)) => Err(to_graphql(Error::unauthenticated(message.clone()))),
        _ => Err(to_graphql(Error::unauthenticated("log in first: send a bearer session token"))),
    }
}

pub(crate) fn core<'a>(ctx: &Context<'a>) -> &'a Core {
    ctx.data_unchecked::<Core>()
}

/// Maps a core error onto a GraphQL error. Internal causes are logged here
/// and never sent.
pub fn to_graphql(error: Error) -> async_graphql::Error {
    if error.code() == ErrorCode::Internal {
        tracing::error!(error = ?error.cause(), "graphql operation failed");
    }
    async_graphql::Error::new(error.message()).extend_with(|_, extensions| {
        extensions.set("code", error.code().as_str());
        if let Some(field) = error.field() {
            extensions.set("field", field);
        }
    })
}

/// Lets resolvers use `?` on core results.
pub(crate) trait OrGraphql<T> {
    fn graphql(self) -> async_graphql::Result<T>;
}

impl<T> OrGraphql<T> for madoguchi_core::Result<T> {
    fn graphql(self) -> async_graphql::Result<T> {
        self.map_err(to_graphql)
    }
}

/// The address a request came from, when the HTTP surface knows it; the
/// sign-in limits count attempts per address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub std::net::IpAddr);
