use std::sync::Arc;
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

/// The first [`std::io::Error`] among `error` and its causes.
///
/// The operating system's words ("Connection refused", "No such file or directory") say what
/// happened; the wrappers of HTTP clients around them do not.
///
/// ```
/// use galaxy_runtime_ports::{PortError, io_error_in_chain};
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let error = PortError::unavailable("engine", refused);
/// assert_eq!(
///     io_error_in_chain(&error).map(std::io::Error::kind),
///     Some(std::io::ErrorKind::ConnectionRefused)
/// );
/// ```
pub fn io_error_in_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a std::io::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

/// A boxed error kept as the `source` of a [`PortError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The one error type of every port, by meaning rather than by backend.
///
/// Each adapter maps its private errors into these variants (with `From` impls or helper
/// constructors) and keeps the original error as the `source` ([`PortError::with_source`]), so
/// that [`error_chain`] can show the whole story on one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The thing asked for does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, such as `container abc123` or `runtime record <game id>`.
        what: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A compare-and-set found something else than expected: another writer got there first,
    /// or the change would leave a terminal status.
    #[error("conflict: {message}")]
    Conflict {
        /// What differed, such as `record now on container 5f2c…, not 0a1b…`.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A write was refused because this replica does not hold the leader lock (any more): the
    /// store fences writes by leadership, so a replica that lost the lock cannot commit, even a
    /// write that was already in flight.
    #[error("fenced: {message}")]
    Fenced {
        /// Why the write was refused.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
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
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The input, or what the service sent back, is malformed.
    #[error("invalid: {message}")]
    Invalid {
        /// What is malformed, naming the value.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
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
    /// See [`PortError::Fenced`].
    Fenced,
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
            Self::Fenced => "fenced",
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
        Self::NotFound {
            what: what.into(),
            source: None,
        }
    }

    /// A [`PortError::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            source: None,
        }
    }

    /// A [`PortError::Fenced`].
    pub fn fenced(message: impl Into<String>) -> Self {
        Self::Fenced {
            message: message.into(),
            source: None,
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
            source: None,
        }
    }

    /// A [`PortError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            source: None,
        }
    }

    /// A [`PortError::Other`] with its cause.
    pub fn other(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Other {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The same error with `cause` as its source (replacing any source it had).
    ///
    /// ```
    /// use galaxy_runtime_ports::{PortError, error_chain};
    ///
    /// let error = PortError::not_found("container 0a1b").with_source(std::io::Error::other("404"));
    /// assert_eq!(error_chain(&error), "not found: container 0a1b: 404");
    /// ```
    pub fn with_source(mut self, cause: impl Into<BoxError>) -> Self {
        let slot = match &mut self {
            Self::NotFound { source, .. }
            | Self::Conflict { source, .. }
            | Self::Fenced { source, .. }
            | Self::Unavailable { source, .. }
            | Self::Timeout { source, .. }
            | Self::Invalid { source, .. }
            | Self::Other { source, .. } => source,
        };
        *slot = Some(cause.into());
        self
    }

    /// One error for each of several operations that a single call failed (a batch, a shared
    /// read): the same meaning, saying `operation`, with the original as its source.
    pub fn shared(error: &Arc<PortError>, operation: &str) -> PortError {
        let shared = match &**error {
            Self::NotFound { .. } => Self::not_found(operation),
            Self::Conflict { .. } => Self::conflict(operation),
            Self::Fenced { .. } => Self::fenced(operation),
            Self::Timeout { after, .. } => Self::timeout(operation, *after),
            Self::Invalid { .. } => Self::invalid(operation),
            Self::Unavailable { .. } => Self::Unavailable {
                message: operation.to_owned(),
                source: None,
            },
            Self::Other { .. } => Self::Other {
                message: operation.to_owned(),
                source: None,
            },
        };
        shared.with_source(SharedCause(Arc::clone(error)))
    }

    /// The meaning of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::Fenced { .. } => ErrorKind::Fenced,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Invalid { .. } => ErrorKind::Invalid,
            Self::Other { .. } => ErrorKind::Other,
        }
    }

    /// Whether trying the same call again later may succeed.
    ///
    /// Unavailability and timeouts are transient. A conflict is not retried as is: the caller
    /// must read again and decide again (the next pass does). A fenced write is not retried by
    /// this replica: another one leads. Not-found and invalid input stay so. `Other` is
    /// unknown and treated as not retryable.
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

    /// Whether this is a [`PortError::Fenced`].
    pub fn is_fenced(&self) -> bool {
        matches!(self, Self::Fenced { .. })
    }
}

/// The original error behind a [`PortError::shared`] copy.
#[derive(Debug)]
struct SharedCause(Arc<PortError>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
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

    #[test]
    fn every_variant_keeps_a_source() {
        let cause = || std::io::Error::other("the library's own words");
        for error in [
            PortError::not_found("container x"),
            PortError::conflict("record now on container b, not a"),
            PortError::fenced("the leader lock is not held"),
            PortError::timeout("inspect", Duration::from_secs(1)),
            PortError::invalid("bad row"),
        ] {
            let kind = error.kind();
            let error = error.with_source(cause());
            assert_eq!(error.kind(), kind);
            assert!(
                error_chain(&error).ends_with(": the library's own words"),
                "{}",
                error_chain(&error)
            );
        }
    }

    #[test]
    fn shared_copies_keep_meaning_and_cause() {
        let original = Arc::new(
            PortError::timeout("UPDATE runtime_records", Duration::from_secs(2))
                .with_source(std::io::Error::other("socket closed")),
        );
        let copy = PortError::shared(&original, "batched set_probe_failures");
        assert_eq!(copy.kind(), ErrorKind::Timeout);
        assert!(copy.is_retryable());
        assert_eq!(
            error_chain(&copy),
            "timeout after 2s: batched set_probe_failures: timeout after 2s: UPDATE \
             runtime_records: socket closed"
        );
        let source = std::error::Error::source(&copy).expect("the original is the source");
        assert_eq!(source.to_string(), original.to_string());
    }

    /// An error that says little and keeps its cause, as hyper's do.
    #[derive(Debug)]
    struct Wrapper(BoxError);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn finds_the_io_error_at_any_depth() {
        use std::io;
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        let found = |error: &(dyn std::error::Error + 'static)| {
            io_error_in_chain(error).map(io::Error::kind)
        };
        assert_eq!(found(&refused()), Some(io::ErrorKind::ConnectionRefused));
        let wrapped = Wrapper(Box::new(Wrapper(Box::new(refused()))));
        assert_eq!(found(&wrapped), Some(io::ErrorKind::ConnectionRefused));
        assert_eq!(found(&Wrapper("no socket involved".into())), None);
    }
}
