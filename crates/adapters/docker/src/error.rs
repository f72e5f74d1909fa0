//! bollard's errors turned into [`PortError`]s by meaning, naming the daemon and keeping the
//! source chain.

use bollard::errors::Error as BollardError;
use galaxy_runtime_model::text::{MESSAGE_CHARS, escape_foreign};
use galaxy_runtime_ports::{PortError, error_chain};

use galaxy_runtime_ports::io_error_in_chain;

use crate::config::DockerConfig;
use crate::tls;

/// What to do about an unreachable daemon, appended to every such message.
const START_HINT: &str =
    "is the Docker daemon running? start it or point DOCKER_HOST at its socket";

/// A [`PortError`] for a failed `operation` (such as `list containers`) against the daemon
/// described by `daemon` (see `DockerConfig::describe`) of `config` (its request timeout, its
/// TLS files).
pub(crate) fn port_error(
    error: BollardError,
    operation: &str,
    daemon: &str,
    config: &DockerConfig,
) -> PortError {
    let timeout = config.request_timeout;
    if let Some(failure) = tls::handshake_failure(&error, config) {
        // Worth retrying: a certificate renewed on either side mends it without a restart.
        return PortError::unavailable(
            format!("Docker daemon at {daemon}: TLS: {failure} ({operation})"),
            error,
        );
    }
    match error {
        // bollard names the same path the daemon description already shows.
        BollardError::SocketNotFoundError(_) => PortError::unavailable(
            format!("Docker daemon at {daemon}: the socket does not exist; {START_HINT}"),
            error,
        ),
        BollardError::DockerResponseServerError {
            status_code,
            ref message,
        } => {
            let message = format!(
                "Docker daemon at {daemon} answered {operation} with HTTP {status_code}: {}",
                escape_foreign(message, MESSAGE_CHARS)
            );
            match status_code {
                404 => PortError::not_found(message).with_source(error),
                400 | 409 | 422 => PortError::invalid(message).with_source(error),
                // 5xx: the daemon failed to serve (busy, restarting): worth retrying.
                _ => PortError::Unavailable {
                    message,
                    source: Some(Box::new(error)),
                },
            }
        }
        BollardError::RequestTimeoutError => {
            PortError::timeout(format!("{operation} at Docker daemon {daemon}"), timeout)
                .with_source(error)
        }
        BollardError::JsonDataError { .. } | BollardError::JsonSerdeError { .. } => {
            PortError::invalid(format!(
                "Docker daemon at {daemon} sent a {operation} answer that does not parse: {}",
                escape_foreign(&error_chain(&error), MESSAGE_CHARS)
            ))
            .with_source(error)
        }
        BollardError::HyperLegacyError { .. }
        | BollardError::HyperResponseError { .. }
        | BollardError::IOError { .. }
        | BollardError::DockerStreamError { .. } => {
            // The operating system's words ("Connection refused", "No such file or directory")
            // say what happened; hyper's wrappers around them do not.
            let cause = escape_foreign(
                &io_error_in_chain(&error).map_or_else(|| error_chain(&error), ToString::to_string),
                MESSAGE_CHARS,
            );
            PortError::unavailable(
                format!(
                    "Docker daemon at {daemon} is not reachable ({operation}): {cause}; {START_HINT}"
                ),
                error,
            )
        }
        other => PortError::other(
            format!(
                "{operation} at Docker daemon {daemon} failed: {}",
                escape_foreign(&error_chain(&other), MESSAGE_CHARS)
            ),
            other,
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use galaxy_runtime_ports::ErrorKind;

    use super::port_error as with_timeout;

    use super::*;

    const DAEMON: &str = "socket /var/run/docker.sock (default)";

    fn port_error(error: BollardError, operation: &str, daemon: &str) -> PortError {
        with_timeout(error, operation, daemon, &DockerConfig::default())
    }

    #[test]
    fn missing_socket_is_unavailable_naming_the_path() {
        let e = port_error(
            BollardError::SocketNotFoundError("/nowhere/docker.sock".into()),
            "connect",
            "socket /nowhere/docker.sock (DOCKER_HOST)",
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        let text = e.to_string();
        assert_eq!(
            text,
            "unavailable: Docker daemon at socket /nowhere/docker.sock (DOCKER_HOST): the socket \
             does not exist; is the Docker daemon running? start it or point DOCKER_HOST at its \
             socket"
        );
    }

    #[test]
    fn server_answers_by_status() {
        let answer = |status_code| BollardError::DockerResponseServerError {
            status_code,
            message: "No such container: x\n".into(),
        };
        assert_eq!(
            port_error(answer(404), "inspect", DAEMON).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            port_error(answer(400), "inspect", DAEMON).kind(),
            ErrorKind::Invalid
        );
        let e = port_error(answer(500), "inspect", DAEMON);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(!e.to_string().contains('\n'), "daemon text is escaped: {e}");
    }

    #[test]
    fn io_failures_are_unavailable() {
        let e = port_error(
            BollardError::IOError {
                err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            },
            "list containers",
            DAEMON,
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("/var/run/docker.sock"), "{e}");
        assert!(e.source().is_some());
    }
}
