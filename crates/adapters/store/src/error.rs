//! diesel's and the pool's errors as [`PortError`]s, by meaning.

use std::time::Duration;

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use galaxy_runtime_ports::PortError;

/// The text both backends' forward-only triggers raise (see the migrations).
pub(crate) const TERMINAL_TRIGGER_MESSAGE: &str = "is terminal and cannot change status";

/// Message fragments of server or driver errors that mean the database is (for now) not
/// serving: shut down, restarting, the connection gone, or SQLite's lock held by another
/// writer past the busy timeout. diesel gives PostgreSQL's SQLSTATE for only a few classes, so
/// the rest is recognised by text.
const UNAVAILABLE_HINTS: &[&str] = &[
    "terminating connection",
    "the database system is",
    "connection closed",
    "connection reset",
    "connection refused",
    "broken pipe",
    "server closed the connection",
    "error communicating with the server",
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
];

/// diesel's text for a statement PostgreSQL cancelled at `statement_timeout`.
const STATEMENT_TIMEOUT_HINT: &str = "canceling statement due to statement timeout";

/// A diesel error of operation `op` (such as `transition_status of <game id>`) as a
/// [`PortError`].
pub(crate) fn from_diesel(op: &str, error: DieselError, query_timeout: Duration) -> PortError {
    match error {
        DieselError::NotFound => PortError::not_found(op.to_owned()),
        DieselError::DatabaseError(kind, info) => {
            let message = info.message().to_owned();
            let lower = message.to_ascii_lowercase();
            let described = match info.details() {
                Some(details) => format!("{op}: {message} ({details})"),
                None => format!("{op}: {message}"),
            };
            let source = DieselError::DatabaseError(kind, info);
            if message.contains(TERMINAL_TRIGGER_MESSAGE) {
                return PortError::conflict(described).with_source(source);
            }
            match kind {
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure => {
                    PortError::conflict(described).with_source(source)
                }
                DatabaseErrorKind::CheckViolation
                | DatabaseErrorKind::NotNullViolation
                | DatabaseErrorKind::ForeignKeyViolation => {
                    PortError::invalid(described).with_source(source)
                }
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ReadOnlyTransaction => {
                    PortError::unavailable(described, source)
                }
                _ if lower.contains(STATEMENT_TIMEOUT_HINT) => {
                    PortError::timeout(op.to_owned(), query_timeout).with_source(source)
                }
                _ if UNAVAILABLE_HINTS.iter().any(|hint| lower.contains(hint)) => {
                    PortError::unavailable(described, source)
                }
                _ => PortError::other(described, source),
            }
        }
        DieselError::DeserializationError(source) => {
            PortError::invalid(format!("{op}: unreadable value: {source}")).with_source(source)
        }
        DieselError::SerializationError(source) => {
            PortError::invalid(format!("{op}: value cannot be written: {source}"))
                .with_source(source)
        }
        DieselError::BrokenTransactionManager => PortError::unavailable(
            format!("{op}: the connection's transaction state is broken"),
            DieselError::BrokenTransactionManager,
        ),
        other => {
            let lower = other.to_string().to_ascii_lowercase();
            if UNAVAILABLE_HINTS.iter().any(|hint| lower.contains(hint)) {
                PortError::unavailable(format!("{op}: {other}"), other)
            } else {
                PortError::other(format!("{op}: {other}"), other)
            }
        }
    }
}

/// A failure to establish a connection to `target` (a redacted URL) as a [`PortError`].
pub(crate) fn from_connection(target: &str, error: ConnectionError) -> PortError {
    match error {
        ConnectionError::InvalidConnectionUrl(message) => {
            PortError::invalid(format!("database URL {target}: {message}"))
        }
        other => PortError::unavailable(format!("cannot connect to {target}: {other}"), other),
    }
}

/// Whether an error means the connection it happened on should not be used again.
pub(crate) fn connection_lost(error: &PortError) -> bool {
    matches!(
        error,
        PortError::Unavailable { .. } | PortError::Timeout { .. }
    )
}

/// A tokio-postgres error and its causes as one text: its `Display` alone hides why a TLS
/// handshake failed ("error performing TLS handshake"), which its source says ("invalid peer
/// certificate: UnknownIssuer").
#[cfg(feature = "postgres")]
pub(crate) fn pg_error_text(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
