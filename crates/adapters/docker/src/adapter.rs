use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use bollard::{ClientVersion, Docker};
use galaxy_runtime_model::ContainerSummary;
use galaxy_runtime_model::text::{MESSAGE_CHARS, escape_foreign};
use galaxy_runtime_ports::{DockerPort, LabelFilter, PortError, PortResult};

use crate::config::DockerConfig;
use crate::error::port_error;
use crate::{mapping, tls};

/// The API version used when a daemon refuses bollard's newer default without saying which one
/// it speaks: Docker 20.10's, the oldest engine this adapter is tested against.
pub const FALLBACK_API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// The [`DockerPort`] on bollard: lists managed containers in one call and inspects single
/// ones, against the daemon of a [`DockerConfig`].
///
/// Obtained with [`DockerAdapter::connect`], which checks the daemon answers and agrees on an
/// API version. Every call is bounded by [`DockerConfig::request_timeout`]; a daemon that went
/// away makes each call fail with [`PortError::Unavailable`] naming the socket or address.
/// Cheap to clone (clones share the connection settings).
#[derive(Debug, Clone)]
pub struct DockerAdapter {
    docker: Docker,
    config: DockerConfig,
    daemon: String,
}

impl DockerAdapter {
    /// Connects to the daemon of `config` and agrees on an API version.
    ///
    /// bollard speaks a newer API than older daemons accept (Docker 20.10 answers at most
    /// 1.41), so the version is negotiated: the daemon's `/version` is asked with bollard's
    /// default, which a newer daemon accepts and bollard lowers to the daemon's own if that is
    /// older; a daemon that refuses it as too new names its maximum in the refusal, and that
    /// maximum (or [`FALLBACK_API_VERSION`] if it cannot be read) is used and checked with a
    /// second `/version`.
    ///
    /// Errors: [`PortError::Unavailable`] naming the socket path (or address) when there is no
    /// socket or nothing answers on it, or when the TLS handshake fails (the message says
    /// which file to check); [`PortError::Invalid`] for a `DOCKER_HOST` this adapter cannot use
    /// (`ssh://`, a plain `tcp://` to another machine without `insecure`) and for TLS files
    /// missing from the settings, unreadable, not PEM, or a key that is not the certificate's,
    /// naming the file.
    pub async fn connect(config: DockerConfig) -> PortResult<Self> {
        let daemon = config.describe();
        let docker = client(&config, bollard::API_DEFAULT_VERSION, &daemon)?;
        let adapter = Self {
            docker,
            config,
            daemon,
        };
        let negotiated = adapter
            .bounded(
                "negotiate the API version",
                adapter.docker.clone().negotiate_version(),
            )
            .await;
        match negotiated {
            Ok(docker) => Ok(Self { docker, ..adapter }),
            Err(Refused { max_version }) => {
                let version = max_version.unwrap_or(FALLBACK_API_VERSION);
                let docker = client(&adapter.config, &version, &adapter.daemon)?;
                let adapter = Self { docker, ..adapter };
                adapter
                    .bounded("read the daemon version", adapter.docker.version())
                    .await
                    .map_err(CallError::into_port_error)?;
                log::info!(
                    "Docker daemon at {} speaks API {}.{} at most; using it",
                    adapter.daemon,
                    version.major_version,
                    version.minor_version
                );
                Ok(adapter)
            }
            Err(other) => Err(other.into_port_error()),
        }
    }

    /// Connects to the daemon named by `DOCKER_HOST`, else the local socket, with the settings
    /// of the environment ([`DockerConfig::from_env`]).
    ///
    /// Errors: as [`DockerAdapter::connect`], and [`PortError::Invalid`] naming the variable for
    /// a bad value in the environment.
    pub async fn connect_from_env() -> PortResult<Self> {
        let config = DockerConfig::from_env().map_err(|e| PortError::invalid(e.to_string()))?;
        Self::connect(config).await
    }

    /// Asks the daemon whether it answers (`GET /_ping`).
    ///
    /// Errors: as every call, [`PortError::Unavailable`] naming the socket or address.
    pub async fn ping(&self) -> PortResult<()> {
        self.bounded("ping", self.docker.ping())
            .await
            .map(|_| ())
            .map_err(CallError::into_port_error)
    }

    /// An adapter on `config` that has not talked to its daemon (for unit tests of what is
    /// built on it).
    #[cfg(test)]
    pub(crate) fn unconnected(config: DockerConfig) -> Self {
        let daemon = config.describe();
        let docker = client(&config, &FALLBACK_API_VERSION, &daemon).expect("a client");
        Self {
            docker,
            config,
            daemon,
        }
    }

    /// The bollard client, for tools and tests that need more of the Docker API than the port
    /// offers (creating containers, watching events).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The settings in use.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// The daemon as messages name it: its socket path or address and where that came from.
    pub fn daemon(&self) -> &str {
        &self.daemon
    }

    /// Runs one call of the Docker API under the request timeout, turning its failure into a
    /// [`CallError`] that knows the operation and the daemon.
    pub(crate) async fn bounded<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<T, CallError> {
        let timeout = self.config.request_timeout;
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(CallError::from_bollard(
                error,
                operation,
                &self.daemon,
                &self.config,
            )),
            Err(_) => Err(CallError::Port(PortError::timeout(
                format!("{operation} at Docker daemon {}", self.daemon),
                timeout,
            ))),
        }
    }
}

/// Builds a client for `config` speaking `version`; no I/O except bollard's check that a Unix
/// socket path exists.
fn client(config: &DockerConfig, version: &ClientVersion, daemon: &str) -> PortResult<Docker> {
    // bollard's own timeout covers only the response headers; ours (in `bounded`) covers the
    // whole call. Round up so bollard's never fires first.
    let seconds = config.request_timeout.as_secs() + 1;
    if config.is_plain_remote() && !config.insecure {
        return Err(PortError::invalid(format!(
            "Docker host {daemon}: a plain tcp:// or http:// daemon on another machine is \
             reached unencrypted and unauthenticated; reach it over TLS (tls_ca, tls_cert and \
             tls_key, or DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH), keep it on this machine, \
             or set insecure (BACKEND_RUNTIME_DOCKER_INSECURE=true, [docker] insecure = true) \
             if its network is private"
        )));
    }
    let built = if let Some(path) = config.socket_path() {
        Docker::connect_with_unix(path, seconds, version)
    } else if config.uses_tls() {
        return tls::client(config, version, daemon, seconds);
    } else if config.host.starts_with("tcp://") || config.host.starts_with("http://") {
        Docker::connect_with_http(&config.host, seconds, version)
    } else if config.host.starts_with("ssh://") {
        return Err(PortError::invalid(format!(
            "Docker host {daemon}: ssh:// is not supported; reach the daemon over TLS (tcp:// \
             with tls_ca, tls_cert and tls_key), or forward its socket over SSH (ssh -nNT -L \
             /run/galaxy-runtime/docker.sock:/var/run/docker.sock USER@HOST) and use \
             unix:///run/galaxy-runtime/docker.sock"
        )));
    } else {
        return Err(PortError::invalid(format!(
            "Docker host {daemon}: only unix://, tcp://, https:// and http:// addresses are \
             supported"
        )));
    };
    built.map_err(|error| port_error(error, "connect", daemon, config))
}

/// A failed call: either already a [`PortError`], or the daemon refusing the API version as
/// too new (which `connect` handles).
#[derive(Debug)]
pub(crate) enum CallError {
    /// The daemon does not speak the requested API version; its maximum, when it said.
    Refused { max_version: Option<ClientVersion> },
    /// Any other failure.
    Port(PortError),
}

use CallError::Refused;

impl CallError {
    fn from_bollard(
        error: BollardError,
        operation: &str,
        daemon: &str,
        config: &DockerConfig,
    ) -> Self {
        if let BollardError::DockerResponseServerError {
            status_code: 400,
            message,
        } = &error
            && message.contains("too new")
        {
            return Refused {
                max_version: max_version_in(message),
            };
        }
        CallError::Port(port_error(error, operation, daemon, config))
    }

    pub(crate) fn into_port_error(self) -> PortError {
        match self {
            CallError::Port(error) => error,
            Refused { max_version } => PortError::invalid(format!(
                "the Docker daemon refused the API version as too new (it speaks at most {})",
                max_version.map_or_else(
                    || "an unknown version".to_owned(),
                    |v| format!("{}.{}", v.major_version, v.minor_version)
                )
            )),
        }
    }
}

/// The version in Docker's refusal `client version 1.53 is too new. Maximum supported API
/// version is 1.41`.
fn max_version_in(message: &str) -> Option<ClientVersion> {
    let (_, tail) = message.rsplit_once("version is ")?;
    let word = tail.split_whitespace().next()?.trim_end_matches('.');
    let (major, minor) = word.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// Docker's own rule for names and ids (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), checked before an id
/// goes into a request path.
pub(crate) fn is_container_reference(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && id.len() <= 256
}

#[async_trait]
impl DockerPort for DockerAdapter {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        let labels: Vec<String> = filter
            .labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let mut filters = HashMap::new();
        if !labels.is_empty() {
            filters.insert("label", labels);
        }
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let listed = self
            .bounded(
                "list containers",
                self.docker.list_containers(Some(options)),
            )
            .await
            .map_err(CallError::into_port_error)?;
        listed
            .into_iter()
            .map(|container| {
                let mapped = mapping::from_list(container)?;
                mapped.warn_if_incomplete(&self.daemon);
                Ok(Arc::new(mapped.summary))
            })
            .collect()
    }

    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        if !is_container_reference(container_id) {
            return Err(PortError::invalid(format!(
                "{:?} is not a Docker container id or name",
                escape_foreign(container_id, MESSAGE_CHARS)
            )));
        }
        let inspected = self
            .bounded(
                "inspect container",
                self.docker
                    .inspect_container(container_id, None::<InspectContainerOptions>),
            )
            .await
            .map_err(|error| match error.into_port_error() {
                PortError::NotFound { .. } => {
                    PortError::not_found(format!("container {container_id}"))
                }
                other => other,
            })?;
        let mapped = mapping::from_inspect(inspected)?;
        mapped.warn_if_incomplete(&self.daemon);
        Ok(mapped.summary)
    }

    fn published_address(&self) -> Option<String> {
        self.config.published_address()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_maximum_version_from_the_refusal() {
        let v =
            max_version_in("client version 1.53 is too new. Maximum supported API version is 1.41")
                .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(max_version_in("client version 1.53 is too new").is_none());
        assert!(max_version_in("Maximum supported API version is soon").is_none());
    }

    #[test]
    fn container_references_are_checked() {
        assert!(is_container_reference("0123abcdef"));
        assert!(is_container_reference("galaxy-game-6f1c0e7a_x.y"));
        for bad in ["", "-x", "../images/json", "a/b", "a?b", "a b", "é"] {
            assert!(!is_container_reference(bad), "{bad:?}");
        }
    }

    #[test]
    fn unsupported_hosts_are_invalid() {
        let config = DockerConfig::with_host("ssh://user@host");
        let error = client(&config, &FALLBACK_API_VERSION, &config.describe()).unwrap_err();
        assert!(matches!(error, PortError::Invalid { .. }), "{error}");
    }
}
