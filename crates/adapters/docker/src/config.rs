use std::ffi::OsString;
use std::time::Duration;

use galaxy_runtime_model::Config;
use galaxy_runtime_model::text::{MESSAGE_CHARS, escape_foreign};

/// The socket Docker listens on when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Where the Docker daemon is and how long one call to it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// The daemon's address as `DOCKER_HOST` writes it: `unix:///var/run/docker.sock`,
    /// `tcp://host:2375` or `http://host:2375` (a bare absolute path means a Unix socket).
    pub host: String,
    /// Whether `host` came from the `DOCKER_HOST` variable (error messages say so).
    pub host_from_env: bool,
    /// The longest one list or inspect call may take, connect to last byte.
    pub request_timeout: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            host: DEFAULT_DOCKER_HOST.to_owned(),
            host_from_env: false,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl DockerConfig {
    /// The daemon named by `DOCKER_HOST`, else the local socket.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Like [`DockerConfig::from_env`] with the environment given as a lookup function (for
    /// tests and hosts that keep their environment elsewhere). An empty `DOCKER_HOST` counts as
    /// unset, as the Docker CLI does.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Self {
        match lookup("DOCKER_HOST") {
            Some(host) if !host.is_empty() => Self {
                host: host.to_string_lossy().into_owned(),
                host_from_env: true,
                ..Self::default()
            },
            _ => Self::default(),
        }
    }

    /// The daemon at `host` (`unix:///path`, `tcp://host:port`, `http://host:port`).
    pub fn with_host(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            ..Self::default()
        }
    }

    /// The Unix socket path of `host`, when it is one.
    pub fn socket_path(&self) -> Option<&str> {
        match self.host.strip_prefix("unix://") {
            Some(path) => Some(path),
            None if self.host.starts_with('/') => Some(&self.host),
            None => None,
        }
    }

    /// How the daemon is named in messages: its socket path or its address, and where that
    /// came from.
    pub(crate) fn describe(&self) -> String {
        let place = match self.socket_path() {
            Some(path) => format!("socket {path}"),
            None => self.host.clone(),
        };
        let origin = if self.host_from_env {
            " (DOCKER_HOST)"
        } else if self.host == DEFAULT_DOCKER_HOST {
            " (default)"
        } else {
            ""
        };
        escape_foreign(&format!("{place}{origin}"), MESSAGE_CHARS)
    }
}

/// How the container events watcher debounces and reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// Events within this time of the first one wake the reconciler once, at its end.
    pub debounce: Duration,
    /// The first wait before subscribing again after the daemon went away; doubled after each
    /// failed attempt …
    pub backoff_initial: Duration,
    /// … up to this.
    pub backoff_max: Duration,
}

impl EventsConfig {
    /// `event_debounce` from the configuration; reconnection starts at 200ms and backs off to
    /// 30s.
    pub fn from_config(config: &Config) -> Self {
        Self {
            debounce: config.event_debounce,
            ..Self::default()
        }
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            debounce: Config::default().event_debounce,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_from_the_environment() {
        let c = DockerConfig::from_lookup(|_| None);
        assert_eq!(c.host, DEFAULT_DOCKER_HOST);
        assert_eq!(c.socket_path(), Some("/var/run/docker.sock"));
        assert_eq!(c.describe(), "socket /var/run/docker.sock (default)");

        let c = DockerConfig::from_lookup(|n| {
            (n == "DOCKER_HOST").then(|| OsString::from("unix:///tmp/x/docker.sock"))
        });
        assert_eq!(c.socket_path(), Some("/tmp/x/docker.sock"));
        assert_eq!(c.describe(), "socket /tmp/x/docker.sock (DOCKER_HOST)");

        let c = DockerConfig::from_lookup(|_| Some(OsString::from("tcp://10.0.0.1:2375")));
        assert_eq!(c.socket_path(), None);
        assert_eq!(c.describe(), "tcp://10.0.0.1:2375 (DOCKER_HOST)");

        let c = DockerConfig::with_host("unix:///run/user/1000/docker.sock");
        assert_eq!(c.describe(), "socket /run/user/1000/docker.sock");

        let c = DockerConfig::from_lookup(|_| Some(OsString::new()));
        assert_eq!(
            c.host, DEFAULT_DOCKER_HOST,
            "an empty DOCKER_HOST counts as unset"
        );
    }
}
