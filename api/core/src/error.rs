//! The one error type of the platform, with a small set of codes that every
//! surface maps in exactly one place (gRPC status, GraphQL `extensions.code`,
//! webhook HTTP status).

use std::fmt;

/// What went wrong, as far as a caller needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    NotFound,
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    /// Something of that name or key exists already.
    Conflict,
    /// Lost a race: another caller changed the object first (a claim taken,
    /// a chat changed meanwhile). Reading again and retrying may succeed.
    Aborted,
    FailedPrecondition,
    ResourceExhausted,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Returns the wire name used in GraphQL `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Conflict => "CONFLICT",
            Self::Aborted => "ABORTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from a use case. `message` is safe to show to the caller; an
/// internal `source` is for logs only.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    code: ErrorCode,
    message: String,
    #[source]
    source: Option<Source>,
    /// A transaction lost to another (a serialization failure or deadlock on
    /// PostgreSQL): the whole transaction may simply be tried again.
    transient: bool,
    /// A job's lease was taken over by another worker: its results are dropped.
    lease_lost: bool,
    /// The request field an `InvalidArgument` is about (`transcript[2].text`).
    field: Option<String>,
}

/// The result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Returns an error with a code and a message meant for the caller.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), source: None, transient: false, lease_lost: false, field: None }
    }

    /// Returns `InvalidArgument` about one field of the request; the message
    /// names it too (`"transcript: 1 to 1000 messages"`).
    pub fn invalid_field(field: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self { field: Some(field.clone()), ..Self::invalid_argument(format!("{field}: {problem}")) }
    }

    /// The request field an `InvalidArgument` is about, if one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// Returns `NotFound` for a kind of object (`"chat"` → "chat not found").
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// Returns `Aborted`: a race lost to another caller.
    pub fn aborted(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Aborted, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, message)
    }

    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceExhausted, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// Returns an `Internal` error; the cause is kept for the logs only.
    pub fn internal(source: impl Into<Source>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            source: Some(source.into()),
            transient: false,
            lease_lost: false,
            field: None,
        }
    }

    /// Attaches a cause kept for the logs.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Returns the text safe to send to a client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Returns the error of a job whose lease another worker took over.
    pub fn lease_lost() -> Self {
        let mut error = Self::conflict("the job's lease was lost to another worker");
        error.lease_lost = true;
        error
    }

    /// Whether a job's lease was lost (its results must not be applied).
    pub fn is_lease_lost(&self) -> bool {
        self.lease_lost
    }

    /// Whether the transaction that failed lost a race with another one (a
    /// serialization failure or a deadlock) and may be run again as a whole.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// Returns the internal cause, for logging.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

/// PostgreSQL's `serialization_failure` and `deadlock_detected`, by the
/// names `db_transaction_conflicts_total` counts them under.
const TRANSIENT_SQLSTATES: [(&str, &str); 2] = [("40001", "serialization_failure"), ("40P01", "deadlock")];

/// Which transient conflict the error is, if it is one.
fn transient_conflict(error: &sea_orm::DbErr) -> Option<&'static str> {
    use sea_orm::{DbErr, RuntimeErr};
    let (DbErr::Conn(RuntimeErr::SqlxError(error))
    | DbErr::Exec(RuntimeErr::SqlxError(error))
    | DbErr::Query(RuntimeErr::SqlxError(error))) = error
    else {
        return None;
    };
    let sea_orm::sqlx::Error::Database(database) = &**error else { return None };
    let code = database.code()?;
    TRANSIENT_SQLSTATES.iter().find(|(sqlstate, _)| *sqlstate == code.as_ref()).map(|(_, name)| *name)
}

impl From<sea_orm::DbErr> for Error {
    fn from(error: sea_orm::DbErr) -> Self {
        if let Some(conflict) = transient_conflict(&error) {
            // A deadlock is a lock-order bug somewhere: worth a graph.
            metrics::counter!("db_transaction_conflicts_total", "conflict" => conflict).increment(1);
            let mut transient = Self::unavailable("the database is busy; try again").with_source(error);
            transient.transient = true;
            return transient;
        }
        match error.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Self::conflict("already exists").with_source(error),
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => {
                Self::failed_precondition("a referenced object does not exist or is still in use").with_source(error)
            }
            _ => Self::internal(error),
        }
    }
}

impl From<sea_orm::TransactionError<Error>> for Error {
    fn from(error: sea_orm::TransactionError<Error>) -> Self {
        match error {
            sea_orm::TransactionError::Connection(error) => error.into(),
            sea_orm::TransactionError::Transaction(error) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_hides_its_cause_from_the_caller() {
        let error = Error::internal(std::io::Error::other("disk on fire at /var/secret"));
        assert_eq!(error.code(), ErrorCode::Internal);
        assert_eq!(error.message(), "internal error");
        assert!(error.cause().unwrap().to_string().contains("disk on fire"));
    }
}
