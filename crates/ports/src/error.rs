use std::time::Duration;

/// An error and its causes on one line, `outer: cause: root cause`, leaving out a cause whose
/// text the line already holds (many errors quote their source in their own message).
///
/// Top-level messages of libraries such as hyper ("client error (Connect)") do not say what
/// happened; their causes do.
///
/// ```
/// use galaxy_runtime_ports::{PortError, error_chain};
///
/// let error = PortError::unavailable("docker", std::io::Error::other("connection refused"));
/// assert_eq!(error_chain(&error), "unavailable: docker: connection refused");
/// ```
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = cause.source();
    }
    text
}

/// A boxed error kept as the `source` of a [`PortError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The one error type of every port, by meaning rather than by backend.
///
/// Each adapter maps its private errors into these variants (with `From` impls or helper
/// constructors) and keeps the original error as the `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The thing asked for does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, such as `container abc123` or `runtime record <game id>`.
        what: String,
    },
    /// A compare-and-set found something else than expected: another writer got there first,
    /// or the change would leave a terminal status.
    #[error("conflict: {message}")]
    Conflict {
        /// What differed.
        message: String,
    },
    /// The service cannot be reached or refused to serve (connection refused, daemon down,
    /// pool exhausted).
    #[error("unavailable: {message}")]
    Unavailable {
        /// What was unavailable and, where known, what to do about it.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The operation did not finish in time.
    #[error("timeout after {}: {operation}", galaxy_runtime_model::duration::format(*after))]
    Timeout {
        /// What was being done.
        operation: String,
        /// The limit that was reached.
        after: Duration,
    },
    /// The input, or what the service sent back, is malformed.
    #[error("invalid: {message}")]
    Invalid {
        /// What is malformed, naming the value.
        message: String,
    },
    /// Anything else.
    #[error("{message}")]
    Other {
        /// What went wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

/// The meaning of a [`PortError`], without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`PortError::NotFound`].
    NotFound,
    /// See [`PortError::Conflict`].
    Conflict,
    /// See [`PortError::Unavailable`].
    Unavailable,
    /// See [`PortError::Timeout`].
    Timeout,
    /// See [`PortError::Invalid`].
    Invalid,
    /// See [`PortError::Other`].
    Other,
}

impl ErrorKind {
    /// A snake_case word for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Invalid => "invalid",
            Self::Other => "other",
        }
    }
}

impl PortError {
    /// A [`PortError::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    /// A [`PortError::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
        }
    }

    /// A [`PortError::Unavailable`] with its cause.
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A [`PortError::Timeout`].
    pub fn timeout(operation: impl Into<String>, after: Duration) -> Self {
        Self::Timeout {
            operation: operation.into(),
            after,
        }
    }

    /// A [`PortError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
        }
    }

    /// A [`PortError::Other`] with its cause.
    pub fn other(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Other {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The meaning of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Invalid { .. } => ErrorKind::Invalid,
            Self::Other { .. } => ErrorKind::Other,
        }
    }

    /// Whether trying the same call again later may succeed.
    ///
    /// Unavailability and timeouts are transient. A conflict is not retried as is: the caller
    /// must read again and decide again (the next pass does). Not-found and invalid input stay
    /// so. `Other` is unknown and treated as not retryable.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }

    /// Whether this is a [`PortError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// Whether this is a [`PortError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_by_meaning() {
        assert!(PortError::timeout("probe", Duration::from_secs(2)).is_retryable());
        assert!(PortError::unavailable("docker", std::io::Error::other("refused")).is_retryable());
        assert!(!PortError::conflict("status changed").is_retryable());
        assert!(!PortError::not_found("container x").is_retryable());
        assert!(!PortError::invalid("bad").is_retryable());
    }

    #[test]
    fn messages_and_sources() {
        let e = PortError::timeout("GET http://x/status", Duration::from_millis(1500));
        assert_eq!(e.to_string(), "timeout after 1500ms: GET http://x/status");
        let e = PortError::unavailable(
            "docker at /var/run/docker.sock",
            std::io::Error::other("gone"),
        );
        let source = std::error::Error::source(&e).expect("source kept");
        assert_eq!(source.to_string(), "gone");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
}
