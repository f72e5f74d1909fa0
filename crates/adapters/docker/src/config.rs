use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use galaxy_runtime_model::text::{MESSAGE_CHARS, escape_foreign, is_host_address};
use galaxy_runtime_model::{Config, ConfigError, duration, env};
use serde::{Deserialize, Serialize};

/// The socket Docker listens on when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// The variable naming the daemon, as for the Docker CLI.
pub const DOCKER_HOST_VAR: &str = "DOCKER_HOST";

/// The variable that turns TLS on for a `tcp://` daemon, as for the Docker CLI (any non-empty
/// value).
pub const DOCKER_TLS_VERIFY_VAR: &str = "DOCKER_TLS_VERIFY";

/// The Docker CLI's variable for TLS without checking the daemon's certificate. That is not
/// done here: it is read as [`DOCKER_TLS_VERIFY_VAR`], and the certificate is checked.
pub const DOCKER_TLS_VAR: &str = "DOCKER_TLS";

/// The directory of `ca.pem`, `cert.pem` and `key.pem` when TLS is on, as for the Docker CLI
/// (default `~/.docker`).
pub const DOCKER_CERT_PATH_VAR: &str = "DOCKER_CERT_PATH";

/// Where the Docker daemon is and how long one call to it may take.
///
/// Every field has a default and can be set from JSON/TOML (by its name), with
/// [`DockerConfig::set`], or from the environment ([`DockerConfig::from_env`]): `host` from
/// `DOCKER_HOST`, as the Docker CLI does, every other field from
/// `BACKEND_RUNTIME_DOCKER_<FIELD IN UPPER CASE>` (`request_timeout` is
/// `BACKEND_RUNTIME_DOCKER_REQUEST_TIMEOUT`). Text values go through the model's one mechanism,
/// [`galaxy_runtime_model::env`].
///
/// TLS: a `tcp://` daemon is reached over TLS when `tls_ca`, `tls_cert` or `tls_key` is set
/// (all three are then needed), an `https://` one always; `DOCKER_TLS_VERIFY` with
/// `DOCKER_CERT_PATH` set the three files as the Docker CLI reads them. `unix://` and
/// `http://` daemons are never reached over TLS and do not read the files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// The daemon's address as `DOCKER_HOST` writes it: `unix:///var/run/docker.sock`,
    /// `tcp://host:2375` or `http://host:2375` (a bare absolute path means a Unix socket).
    pub host: String,
    /// Whether `host` came from the `DOCKER_HOST` variable (error messages say so).
    #[serde(skip)]
    pub host_from_env: bool,
    /// The longest one list or inspect call may take, connect to last byte (longer than `0s`).
    #[serde(with = "duration::non_zero")]
    pub request_timeout: Duration,
    /// Whether a plain `tcp://` or `http://` daemon that is not on a loopback address may be
    /// used: the Docker API then travels unencrypted and unauthenticated, and whoever reaches
    /// the port owns the host, so it is refused unless the operator says so. It never turns
    /// off the checks of TLS.
    pub insecure: bool,
    /// TLS: the CA certificate(s), PEM, that signed the daemon's certificate (its
    /// `--tlscacert`). Only these are trusted for the daemon, not the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// TLS: the client certificate (chain), PEM, signed by a CA the daemon trusts.
    pub tls_cert: Option<PathBuf>,
    /// TLS: the private key of `tls_cert`, PEM (PKCS#8, PKCS#1 or SEC1), unencrypted.
    pub tls_key: Option<PathBuf>,
    /// What the host is: `daemon`, whose own containers are listed, or `swarm`, a Swarm
    /// manager whose managed services' tasks on every node are listed as its containers.
    pub kind: HostKind,
    /// Where the host's published ports are reached, for `published_port` engine addressing:
    /// a host name or an IP address. Empty (the default): the host of `host` (`127.0.0.1` for
    /// a Unix socket).
    #[serde(deserialize_with = "host_address")]
    pub address: String,
}

/// What a Docker host is (`kind` of a host's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    /// One Docker daemon: its containers ([`crate::DockerAdapter`]).
    #[default]
    Daemon,
    /// A Docker Swarm manager: the tasks of managed services on all nodes, each as a
    /// container, count as one host ([`crate::SwarmAdapter`]).
    Swarm,
}

impl HostKind {
    /// The prefix that marks a host's URL as a Swarm manager's where only a URL can be given
    /// (`--docker-host eu=swarm+unix:///var/run/docker.sock`).
    pub const SWARM_URL_PREFIX: &str = "swarm+";

    /// The word of the kind (`daemon`, `swarm`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Daemon => "daemon",
            Self::Swarm => "swarm",
        }
    }

    /// The kind a URL names and the URL without the mark: `swarm+tcp://m:2376` is a Swarm
    /// manager at `tcp://m:2376`; any other URL is a daemon.
    pub fn split_url(url: &str) -> (Self, &str) {
        match url.strip_prefix(Self::SWARM_URL_PREFIX) {
            Some(rest) => (Self::Swarm, rest),
            None => (Self::Daemon, url),
        }
    }
}

impl std::fmt::Display for HostKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `address`: empty, or a host name or an IP address (never a URL, a port or a user).
fn host_address<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() || is_host_address(&text) {
        Ok(text)
    } else {
        Err(serde::de::Error::custom(format!(
            "{:?} is not a host name or an IP address (no scheme, port or path)",
            escape_foreign(&text, 64)
        )))
    }
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            host: DEFAULT_DOCKER_HOST.to_owned(),
            host_from_env: false,
            request_timeout: Duration::from_secs(30),
            insecure: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            kind: HostKind::Daemon,
            address: String::new(),
        }
    }
}

impl DockerConfig {
    /// The prefix of the Docker adapter's own environment variables.
    pub const ENV_PREFIX: &str = "BACKEND_RUNTIME_DOCKER_";

    /// The environment variable of a field: `host` → `DOCKER_HOST`, `request_timeout` →
    /// `BACKEND_RUNTIME_DOCKER_REQUEST_TIMEOUT`.
    pub fn env_var(field: &str) -> String {
        match field {
            "host" => DOCKER_HOST_VAR.to_owned(),
            other => env::var_name(Self::ENV_PREFIX, other),
        }
    }

    /// The defaults, overridden by `DOCKER_HOST`, `DOCKER_TLS_VERIFY` with `DOCKER_CERT_PATH`,
    /// and every `BACKEND_RUNTIME_DOCKER_<FIELD>` of the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Like [`DockerConfig::from_env`] with the environment given as a lookup function (for
    /// tests and hosts that keep their environment elsewhere).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        config.apply_env(lookup)?;
        Ok(config)
    }

    /// Overrides fields from an environment given as a lookup function. An empty
    /// `DOCKER_HOST` counts as unset, as the Docker CLI does. A non-empty `DOCKER_TLS_VERIFY`
    /// (or `DOCKER_TLS`) sets `tls_ca`, `tls_cert` and `tls_key` to `ca.pem`, `cert.pem` and
    /// `key.pem` of `DOCKER_CERT_PATH` (default `$HOME/.docker`); a
    /// `BACKEND_RUNTIME_DOCKER_TLS_<FILE>` beats it. A bad value is an error naming the
    /// variable and the value, and changes nothing.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<(), ConfigError> {
        let host = env::var_text(&lookup, DOCKER_HOST_VAR)?.filter(|host| !host.is_empty());
        let mut updated = self.clone();
        if let Some(dir) = cert_path(&lookup)? {
            updated.tls_ca = Some(dir.join("ca.pem"));
            updated.tls_cert = Some(dir.join("cert.pem"));
            updated.tls_key = Some(dir.join("key.pem"));
        }
        env::apply_env(
            &mut updated,
            |field| (field != "host").then(|| Self::env_var(field)),
            &lookup,
        )?;
        if let Some(host) = host {
            updated.host = host;
            updated.host_from_env = true;
        }
        *self = updated;
        Ok(())
    }

    /// Sets one field from its text form (`"unix:///run/docker.sock"`, `"30s"`). Setting `host`
    /// this way makes it not come from `DOCKER_HOST`.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), ConfigError> {
        let host_from_env = self.host_from_env && field != "host";
        env::set_field(self, field, value, field)?;
        // A skipped field comes back from the round trip as its default.
        self.host_from_env = host_from_env;
        Ok(())
    }

    /// The daemon at `host` (`unix:///path`, `tcp://host:port`, `http://host:port`).
    pub fn with_host(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            ..Self::default()
        }
    }

    /// Whether `host` is a plain (`tcp://` without TLS, `http://`) address of another machine
    /// than this one: not `localhost`, not a loopback IP address.
    pub fn is_plain_remote(&self) -> bool {
        if self.uses_tls() {
            return false;
        }
        let Some((host, _)) = self
            .host
            .strip_prefix("tcp://")
            .or_else(|| self.host.strip_prefix("http://"))
            .map(split_authority)
        else {
            return false;
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        !loopback
    }

    /// Whether the daemon is reached over TLS: an `https://` address, or a `tcp://` one with
    /// any of `tls_ca`, `tls_cert`, `tls_key` set.
    pub fn uses_tls(&self) -> bool {
        self.host.starts_with("https://")
            || (self.host.starts_with("tcp://") && self.has_tls_files())
    }

    /// Whether any of `tls_ca`, `tls_cert`, `tls_key` is set.
    pub fn has_tls_files(&self) -> bool {
        self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some()
    }

    /// The host name or IP address in `host` (`tcp://10.0.0.2:2376` → `10.0.0.2`, `tcp://[fd00::2]:2376`
    /// → `fd00::2`), when it has one (a Unix socket has none).
    pub fn url_host(&self) -> Option<&str> {
        let (_, rest) = self.host.split_once("://")?;
        let rest = match rest
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .rsplit_once('@')
        {
            Some((_, after_user)) => after_user,
            None => rest,
        };
        let (host, _) = split_authority(rest);
        (!host.is_empty() && self.socket_path().is_none()).then_some(host)
    }

    /// Where the host's published ports are reached: `address` when set, else `127.0.0.1` for
    /// a Unix socket (the daemon runs on this machine), else the host of a `tcp://` (or other)
    /// URL; `None` when there is none.
    pub fn published_address(&self) -> Option<String> {
        if !self.address.is_empty() {
            return Some(self.address.clone());
        }
        if self.socket_path().is_some() {
            return Some("127.0.0.1".to_owned());
        }
        self.url_host().map(str::to_owned)
    }

    /// The Unix socket path of `host`, when it is one.
    pub fn socket_path(&self) -> Option<&str> {
        match self.host.strip_prefix("unix://") {
            Some(path) => Some(path),
            None if self.host.starts_with('/') => Some(&self.host),
            None => None,
        }
    }

    /// How the daemon is named in messages: its socket path or its address, where that came
    /// from, and whether it is a Swarm manager (`socket /var/run/docker.sock (default)`,
    /// `tcp://10.0.0.1:2375 (DOCKER_HOST)`, `socket /run/m.sock, Swarm manager`), escaped.
    pub fn describe(&self) -> String {
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
        let kind = match self.kind {
            HostKind::Daemon => "",
            HostKind::Swarm => ", Swarm manager",
        };
        escape_foreign(&format!("{place}{origin}{kind}"), MESSAGE_CHARS)
    }
}

/// The host (without brackets) and the port (if any) of a URL's authority: `h:2376/x` gives
/// `("h", Some("2376"))`, `[::1]:2376` gives `("::1", Some("2376"))`.
pub(crate) fn split_authority(rest: &str) -> (&str, Option<&str>) {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, tail) = bracketed.split_once(']').unwrap_or((bracketed, ""));
            (host, tail.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    }
}

/// The certificate directory when `DOCKER_TLS_VERIFY` (or `DOCKER_TLS`) is set:
/// `DOCKER_CERT_PATH`, else `$HOME/.docker`, as the Docker CLI reads them.
fn cert_path(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Option<PathBuf>, ConfigError> {
    let on = |name| lookup(name).is_some_and(|value: OsString| !value.is_empty());
    if !on(DOCKER_TLS_VERIFY_VAR) && !on(DOCKER_TLS_VAR) {
        return Ok(None);
    }
    if let Some(dir) = lookup(DOCKER_CERT_PATH_VAR).filter(|dir| !dir.is_empty()) {
        return Ok(Some(PathBuf::from(dir)));
    }
    match lookup("HOME").filter(|home| !home.is_empty()) {
        Some(home) => Ok(Some(PathBuf::from(home).join(".docker"))),
        None => Err(ConfigError {
            name: DOCKER_CERT_PATH_VAR.to_owned(),
            value: String::new(),
            reason: "DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor HOME says where \
                     ca.pem, cert.pem and key.pem are"
                .to_owned(),
        }),
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
    /// The names of game services begin with this (`container_name_prefix`): on a Swarm
    /// manager, service events carry no labels, so a service is told a game's by its name.
    pub name_prefix: String,
}

impl EventsConfig {
    /// `event_debounce` and `container_name_prefix` from the configuration; reconnection starts
    /// at 200ms and backs off to 30s.
    pub fn from_config(config: &Config) -> Self {
        Self {
            debounce: config.event_debounce,
            name_prefix: config.container_name_prefix.clone(),
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
            name_prefix: Config::default().container_name_prefix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_remote_means_tcp_or_http_off_this_machine() {
        let remote = |host: &str| DockerConfig::with_host(host).is_plain_remote();
        assert!(remote("tcp://10.0.0.2:2375"));
        assert!(remote("http://docker.internal:2375/"));
        assert!(remote("tcp://[2001:db8::1]:2375"));
        assert!(!remote("tcp://127.0.0.1:2375"));
        assert!(!remote("tcp://127.9.9.9:2375"));
        assert!(!remote("http://localhost:2375"));
        assert!(!remote("tcp://[::1]:2375"));
        assert!(!remote("unix:///var/run/docker.sock"));
        assert!(!remote("/var/run/docker.sock"));
    }

    #[test]
    fn docker_host_from_the_environment() {
        let c = DockerConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c.host, DEFAULT_DOCKER_HOST);
        assert_eq!(c.socket_path(), Some("/var/run/docker.sock"));
        assert_eq!(c.describe(), "socket /var/run/docker.sock (default)");

        let c = DockerConfig::from_lookup(|n| {
            (n == "DOCKER_HOST").then(|| OsString::from("unix:///tmp/x/docker.sock"))
        })
        .unwrap();
        assert_eq!(c.socket_path(), Some("/tmp/x/docker.sock"));
        assert_eq!(c.describe(), "socket /tmp/x/docker.sock (DOCKER_HOST)");

        let c =
            DockerConfig::from_lookup(env::lookup_from(&[("DOCKER_HOST", "tcp://10.0.0.1:2375")]))
                .unwrap();
        assert_eq!(c.socket_path(), None);
        assert_eq!(c.describe(), "tcp://10.0.0.1:2375 (DOCKER_HOST)");

        let c = DockerConfig::with_host("unix:///run/user/1000/docker.sock");
        assert_eq!(c.describe(), "socket /run/user/1000/docker.sock");

        let c = DockerConfig::from_lookup(|n| (n == "DOCKER_HOST").then(OsString::new)).unwrap();
        assert_eq!(
            c.host, DEFAULT_DOCKER_HOST,
            "an empty DOCKER_HOST counts as unset"
        );
        assert!(!c.host_from_env);
    }

    #[test]
    fn the_request_timeout_from_the_environment() {
        let c = DockerConfig::from_lookup(env::lookup_from(&[
            ("BACKEND_RUNTIME_DOCKER_REQUEST_TIMEOUT", "1500ms"),
            (
                "BACKEND_RUNTIME_DOCKER_HOST",
                "not read: DOCKER_HOST names the daemon",
            ),
        ]))
        .unwrap();
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
        assert_eq!(c.host, DEFAULT_DOCKER_HOST);
        assert_eq!(
            DockerConfig::env_var("request_timeout"),
            "BACKEND_RUNTIME_DOCKER_REQUEST_TIMEOUT"
        );

        for bad in ["0s", "soon"] {
            let err = DockerConfig::from_lookup(env::lookup_from(&[
                ("DOCKER_HOST", "tcp://10.0.0.1:2375"),
                ("BACKEND_RUNTIME_DOCKER_REQUEST_TIMEOUT", bad),
            ]))
            .unwrap_err();
            assert_eq!(err.name, "BACKEND_RUNTIME_DOCKER_REQUEST_TIMEOUT");
            assert_eq!(err.value, bad);
        }
    }

    #[test]
    fn tls_files_from_docker_cert_path_as_the_docker_cli_reads_them() {
        let c = DockerConfig::from_lookup(env::lookup_from(&[
            ("DOCKER_HOST", "tcp://10.0.0.2:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/etc/galaxy/docker"),
        ]))
        .unwrap();
        assert_eq!(c.tls_ca, Some(PathBuf::from("/etc/galaxy/docker/ca.pem")));
        assert_eq!(
            c.tls_cert,
            Some(PathBuf::from("/etc/galaxy/docker/cert.pem"))
        );
        assert_eq!(c.tls_key, Some(PathBuf::from("/etc/galaxy/docker/key.pem")));
        assert!(c.uses_tls());
        assert!(!c.is_plain_remote(), "TLS is not plain");

        // Without DOCKER_CERT_PATH: ~/.docker; DOCKER_TLS is read as DOCKER_TLS_VERIFY; a
        // BACKEND_RUNTIME_DOCKER_TLS_<FILE> beats the directory.
        let c = DockerConfig::from_lookup(env::lookup_from(&[
            ("DOCKER_TLS", "1"),
            ("HOME", "/home/op"),
            ("BACKEND_RUNTIME_DOCKER_TLS_CA", "/etc/galaxy/ca.pem"),
        ]))
        .unwrap();
        assert_eq!(c.tls_ca, Some(PathBuf::from("/etc/galaxy/ca.pem")));
        assert_eq!(c.tls_key, Some(PathBuf::from("/home/op/.docker/key.pem")));

        // DOCKER_CERT_PATH alone turns nothing on, as for the Docker CLI; so does an empty
        // DOCKER_TLS_VERIFY.
        let c = DockerConfig::from_lookup(env::lookup_from(&[
            ("DOCKER_TLS_VERIFY", ""),
            ("DOCKER_CERT_PATH", "/etc/galaxy/docker"),
        ]))
        .unwrap();
        assert!(!c.has_tls_files());

        let err =
            DockerConfig::from_lookup(env::lookup_from(&[("DOCKER_TLS_VERIFY", "1")])).unwrap_err();
        assert_eq!(err.name, "DOCKER_CERT_PATH");
        assert!(err.reason.contains("HOME"), "{}", err.reason);
    }

    #[test]
    fn tls_applies_to_tcp_and_https_only() {
        let with_files = |host: &str| DockerConfig {
            tls_ca: Some("/ca.pem".into()),
            ..DockerConfig::with_host(host)
        };
        assert!(with_files("tcp://10.0.0.2:2376").uses_tls());
        assert!(DockerConfig::with_host("https://10.0.0.2:2376").uses_tls());
        assert!(!DockerConfig::with_host("tcp://10.0.0.2:2376").uses_tls());
        assert!(!with_files("unix:///var/run/docker.sock").uses_tls());
        assert!(!with_files("http://10.0.0.2:2375").uses_tls());
        assert!(with_files("http://10.0.0.2:2375").is_plain_remote());
        assert!(!DockerConfig::with_host("https://10.0.0.2:2376").is_plain_remote());
    }

    #[test]
    fn tls_files_from_the_file_and_the_environment() {
        let mut c = DockerConfig::default();
        c.set("tls_cert", "/etc/galaxy/cert.pem").unwrap();
        assert_eq!(c.tls_cert, Some(PathBuf::from("/etc/galaxy/cert.pem")));
        c.set("tls_cert", "").unwrap();
        assert_eq!(c.tls_cert, None, "an empty value clears it");
        c.apply_env(env::lookup_from(&[(
            "BACKEND_RUNTIME_DOCKER_TLS_KEY",
            "k.pem",
        )]))
        .unwrap();
        assert_eq!(c.tls_key, Some(PathBuf::from("k.pem")));
        assert_eq!(
            DockerConfig::env_var("tls_ca"),
            "BACKEND_RUNTIME_DOCKER_TLS_CA"
        );
    }

    #[test]
    fn set_checks_like_json_and_keeps_where_the_host_came_from() {
        let mut c =
            DockerConfig::from_lookup(env::lookup_from(&[("DOCKER_HOST", "unix:///env.sock")]))
                .unwrap();
        c.set("request_timeout", "5s").unwrap();
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert!(
            c.host_from_env,
            "another field does not change where the host came from"
        );
        assert!(c.set("request_timeout", "0s").is_err());
        assert!(c.set("host_from_env", "true").is_err());
        assert!(c.set("port", "1").unwrap_err().reason.contains("unknown"));
        c.set("host", "unix:///file.sock").unwrap();
        assert_eq!(c.describe(), "socket /file.sock");
    }

    #[test]
    fn the_published_address_comes_from_the_setting_or_the_url() {
        let address = |host: &str| DockerConfig::with_host(host).published_address();
        assert_eq!(
            address("unix:///var/run/docker.sock").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            address("/var/run/docker.sock").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(address("tcp://10.0.0.2:2376").as_deref(), Some("10.0.0.2"));
        assert_eq!(
            address("http://docker.internal:2375/").as_deref(),
            Some("docker.internal")
        );
        assert_eq!(address("tcp://[fd00::2]:2376").as_deref(), Some("fd00::2"));
        assert_eq!(
            address("ssh://ops@m1.example:22").as_deref(),
            Some("m1.example")
        );
        assert_eq!(address("tcp://").as_deref(), None);

        let mut c = DockerConfig::with_host("unix:///run/tunnel.sock");
        c.set("address", "eu-1.games.example").unwrap();
        assert_eq!(c.published_address().as_deref(), Some("eu-1.games.example"));
        for bad in ["tcp://10.0.0.2", "10.0.0.2:80", "a b", "user@host"] {
            let error = c.set("address", bad).unwrap_err();
            assert!(
                error.reason.contains("not a host name or an IP address"),
                "{bad}: {error}"
            );
        }
        let error = DockerConfig::from_lookup(env::lookup_from(&[(
            "BACKEND_RUNTIME_DOCKER_ADDRESS",
            "http://x",
        )]))
        .unwrap_err();
        assert_eq!(error.name, "BACKEND_RUNTIME_DOCKER_ADDRESS");
    }

    #[test]
    fn the_kind_is_a_setting_and_a_url_mark() {
        assert_eq!(DockerConfig::default().kind, HostKind::Daemon);
        let c = DockerConfig::from_lookup(env::lookup_from(&[(
            "BACKEND_RUNTIME_DOCKER_KIND",
            "swarm",
        )]))
        .unwrap();
        assert_eq!(c.kind, HostKind::Swarm);
        assert_eq!(
            c.describe(),
            "socket /var/run/docker.sock (default), Swarm manager"
        );
        let error = DockerConfig::default().set("kind", "cluster").unwrap_err();
        assert_eq!(error.value, "cluster");
        assert_eq!(
            HostKind::split_url("swarm+tcp://m:2376"),
            (HostKind::Swarm, "tcp://m:2376")
        );
        assert_eq!(
            HostKind::split_url("unix:///a.sock"),
            (HostKind::Daemon, "unix:///a.sock")
        );
    }
}
