//! Everything a command is configured with, from four sources in order of precedence: flags,
//! then the environment (`BACKEND_RUNTIME_*`, `DOCKER_HOST`), then an optional TOML file, then
//! the defaults.
//!
//! Every source goes through the same checks ([`Config::set`], [`StoreConfig::set`],
//! [`DockerConfig::set`], each the model's one mechanism, [`galaxy_runtime_model::env`]), and
//! each configuration reads its own variables. A refused value is one line naming the source,
//! the field or variable, and the value; nothing is connected to or written before all sources
//! have been checked.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use galaxy_runtime_docker::{DockerConfig, HostKind};
use galaxy_runtime_model::{Config, ConfigError, env};
use galaxy_runtime_store::{StoreConfig, redact_url};
use log::LevelFilter;

use crate::BadInput;
use crate::cli::{CommonFlags, ReconcilerFlags};
use crate::hosts::{self, DOCKER_HOSTS_VAR, HostsFlag, NamedHost};
use crate::lobby::{LobbyFlags, LobbySettings};

/// The variable naming the configuration file when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "BACKEND_RUNTIME_CONFIG_FILE";
/// The variable of the log format.
pub const LOG_FORMAT_VAR: &str = "BACKEND_RUNTIME_LOG_FORMAT";
/// The variable of the log level.
pub const LOG_LEVEL_VAR: &str = "BACKEND_RUNTIME_LOG_LEVEL";
/// The variable of the metrics address.
pub const METRICS_ADDR_VAR: &str = "BACKEND_RUNTIME_METRICS_ADDR";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: time, level (when not info), message.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything a command is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The reconciler's configuration.
    pub config: Config,
    /// The database.
    pub store: StoreConfig,
    /// The Docker daemon (with named hosts: the settings each host's daemon shares, but its
    /// address).
    pub docker: DockerConfig,
    /// Several named Docker hosts (CONTRACT §6); empty for the one daemon of `docker`.
    pub docker_hosts: Vec<NamedHost>,
    /// The log format.
    pub log_format: LogFormat,
    /// The log level; `None` leaves the command's default.
    pub log_level: Option<LevelFilter>,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// The lobby's webhook, if any.
    pub lobby: LobbySettings,
    /// What the operator should fix but need not stop for (a secret others may read), logged
    /// once the logger is in place.
    pub warnings: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            config: Config::default(),
            store: StoreConfig::default(),
            docker: DockerConfig::default(),
            docker_hosts: Vec::new(),
            log_format: LogFormat::Text,
            log_level: None,
            metrics_addr: None,
            lobby: LobbySettings::default(),
            warnings: Vec::new(),
        }
    }
}

/// The flags a command was given (the reconciler's and the metrics address are optional).
#[derive(Debug, Clone, Copy)]
pub struct Flags<'a> {
    /// Database, file and logging.
    pub common: &'a CommonFlags,
    /// The reconciler's fields and the Docker host, for the commands that reconcile.
    pub reconciler: Option<&'a ReconcilerFlags>,
    /// `--metrics-addr`, for `run`.
    pub metrics_addr: Option<&'a str>,
    /// `--lobby-url` and `--lobby-secret-file`, for `run`.
    pub lobby: Option<&'a LobbyFlags>,
}

/// Where a value came from, for messages.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Env,
    Flag,
}

impl Source {
    /// `config file galaxy.toml: failure_threshold="0": must be …`,
    /// `environment: BACKEND_RUNTIME_FAILURE_THRESHOLD="0": …`, `flag --failure-threshold="0": …`.
    fn refuse(&self, error: ConfigError) -> BadInput {
        let ConfigError {
            name,
            value,
            reason,
        } = error;
        let reason = one_line(&reason);
        match self {
            Self::File(path) => BadInput(format!(
                "config file {}: {name}={value:?}: {reason}",
                path.display()
            )),
            Self::Env => BadInput(format!("environment: {name}={value:?}: {reason}")),
            Self::Flag => BadInput(format!(
                "flag --{}={value:?}: {reason}",
                name.replace('_', "-")
            )),
        }
    }
}

/// Error messages are one line each, whatever a parser puts in them.
pub fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn refused(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

impl Settings {
    /// Reads every source; `lookup` is the environment.
    pub fn load(
        flags: Flags<'_>,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self, BadInput> {
        let mut settings = Settings::default();
        let file = match &flags.common.config {
            Some(path) => Some(path.clone()),
            None => lookup(CONFIG_FILE_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        };
        if let Some(path) = &file {
            settings.apply_file(path)?;
        }
        let file_holds_secret = redact_url(&settings.store.url) != settings.store.url;
        settings.apply_env(lookup)?;
        settings.apply_flags(flags)?;
        crate::secrets::check(&mut settings, file.as_deref(), file_holds_secret)?;
        Ok(settings)
    }

    /// The configuration file: reconciler fields at the top level, then `[database]`,
    /// `[docker]`, `[log]`, `[metrics]` and `[lobby]`.
    fn apply_file(&mut self, path: &Path) -> Result<(), BadInput> {
        let source = Source::File(path.to_owned());
        let text = std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("cannot read config file {}: {e}", path.display())))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let place = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(" (line {line}, column {column})")
                })
                .unwrap_or_default();
            BadInput(format!(
                "config file {}: not valid TOML{place}: {}",
                path.display(),
                one_line(e.message())
            ))
        })?;
        for (key, value) in &table {
            match (key.as_str(), value) {
                (
                    "database" | "docker" | "log" | "metrics" | "lobby",
                    toml::Value::Table(section),
                ) => {
                    for (field, value) in section {
                        if (key.as_str(), field.as_str()) == ("docker", "hosts") {
                            self.docker_hosts = hosts::parse_tables(value).map_err(|reason| {
                                source.refuse(refused("docker.hosts", "", reason))
                            })?;
                            continue;
                        }
                        let name = format!("{key}.{field}");
                        let text = scalar(value).map_err(|reason| {
                            source.refuse(refused(&name, &shown(value), reason))
                        })?;
                        self.set_section(key, field, &text)
                            .map_err(|e| source.refuse(ConfigError { name, ..e }))?;
                    }
                }
                ("database" | "docker" | "log" | "metrics" | "lobby", other) => {
                    return Err(source.refuse(refused(
                        key,
                        &shown(other),
                        format!("expected a [{key}] section"),
                    )));
                }
                (field, value) => {
                    let text = scalar(value)
                        .map_err(|reason| source.refuse(refused(field, &shown(value), reason)))?;
                    self.config
                        .set(field, &text)
                        .map_err(|e| source.refuse(e))?;
                }
            }
        }
        Ok(())
    }

    /// One field of a section of the file.
    fn set_section(&mut self, section: &str, field: &str, value: &str) -> Result<(), ConfigError> {
        match (section, field) {
            ("database", field) => self.store.set(field, value),
            ("docker", field) => self.docker.set(field, value),
            ("log", "format") => {
                self.log_format = log_format(field, value)?;
                Ok(())
            }
            ("log", "level") => {
                self.log_level = Some(log_level(field, value)?);
                Ok(())
            }
            ("lobby", field) => self.lobby.set(field, value),
            ("metrics", "addr") => {
                self.metrics_addr = metrics_addr(field, value)?;
                Ok(())
            }
            (section, field) => Err(refused(
                field,
                value,
                format!("unknown field {field:?} of the [{section}] section"),
            )),
        }
    }

    /// `BACKEND_RUNTIME_<FIELD>`, `BACKEND_RUNTIME_DATABASE_<FIELD>`, `DOCKER_HOST`,
    /// `BACKEND_RUNTIME_DOCKER_<FIELD>` and the variables of logging and metrics.
    fn apply_env(&mut self, lookup: &dyn Fn(&str) -> Option<OsString>) -> Result<(), BadInput> {
        let source = Source::Env;
        self.config
            .apply_env(lookup)
            .map_err(|e| source.refuse(e))?;
        self.store.apply_env(lookup).map_err(|e| source.refuse(e))?;
        self.docker
            .apply_env(lookup)
            .map_err(|e| source.refuse(e))?;
        self.lobby.apply_env(lookup).map_err(|e| source.refuse(e))?;
        let text = |name: &str| env::var_text(lookup, name).map_err(|e| source.refuse(e));
        if let Some(value) = text(DOCKER_HOSTS_VAR)? {
            self.docker_hosts = hosts::parse_list(&value)
                .map_err(|reason| source.refuse(refused(DOCKER_HOSTS_VAR, &value, reason)))?;
        }
        if let Some(value) = text(LOG_FORMAT_VAR)? {
            self.log_format = log_format(LOG_FORMAT_VAR, &value).map_err(|e| source.refuse(e))?;
        }
        if let Some(value) = text(LOG_LEVEL_VAR)? {
            self.log_level = Some(log_level(LOG_LEVEL_VAR, &value).map_err(|e| source.refuse(e))?);
        }
        if let Some(value) = text(METRICS_ADDR_VAR)? {
            self.metrics_addr =
                metrics_addr(METRICS_ADDR_VAR, &value).map_err(|e| source.refuse(e))?;
        }
        Ok(())
    }

    fn apply_flags(&mut self, flags: Flags<'_>) -> Result<(), BadInput> {
        let source = Source::Flag;
        let common = flags.common;
        if let Some(url) = &common.database_url {
            self.store.set("url", url).map_err(|e| {
                source.refuse(ConfigError {
                    name: "database_url".to_owned(),
                    ..e
                })
            })?;
        }
        if let Some(path) = &common.database_password_file {
            self.store
                .set("password_file", &path.to_string_lossy())
                .map_err(|e| {
                    source.refuse(ConfigError {
                        name: "database_password_file".to_owned(),
                        ..e
                    })
                })?;
        }
        if let Some(value) = &common.log_format {
            self.log_format = log_format("log_format", value).map_err(|e| source.refuse(e))?;
        }
        if let Some(value) = &common.log_level {
            self.log_level = Some(log_level("log_level", value).map_err(|e| source.refuse(e))?);
        }
        if let Some(value) = flags.metrics_addr {
            self.metrics_addr =
                metrics_addr("metrics_addr", value).map_err(|e| source.refuse(e))?;
        }
        if let Some(lobby) = flags.lobby {
            self.lobby
                .apply_flags(lobby)
                .map_err(|e| source.refuse(e))?;
        }
        if let Some(reconciler) = flags.reconciler {
            let given = hosts::parse_flags(&reconciler.docker_host).map_err(|reason| {
                source.refuse(refused(
                    "docker_host",
                    &reconciler.docker_host.join(" "),
                    reason,
                ))
            })?;
            match given {
                None => {}
                Some(HostsFlag::Single(host)) => {
                    self.docker_hosts.clear();
                    // `swarm+URL` makes the one host a Swarm manager; a bare URL keeps the
                    // configured kind.
                    let (kind, host) = HostKind::split_url(&host);
                    if kind == HostKind::Swarm {
                        self.docker.kind = kind;
                    }
                    self.docker.set("host", host).map_err(|e| {
                        source.refuse(ConfigError {
                            name: "docker_host".to_owned(),
                            ..e
                        })
                    })?;
                }
                Some(HostsFlag::Named(named)) => self.docker_hosts = named,
            }
            for (field, value) in reconciler.fields() {
                self.config
                    .set(field, value)
                    .map_err(|e| source.refuse(e))?;
            }
        }
        Ok(())
    }

    /// The database URL without its password.
    pub fn database(&self) -> String {
        redact_url(&self.store.url)
    }
}

/// The text form of a TOML value that is a single value.
fn scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => {
            Err("expected a string or a number".to_owned())
        }
    }
}

/// A value as messages show it: scalars as written, arrays and tables abridged.
fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "[…]".to_owned(),
        toml::Value::Table(_) => "{…}".to_owned(),
        other => scalar(other).unwrap_or_default(),
    }
}

fn log_format(name: &str, value: &str) -> Result<LogFormat, ConfigError> {
    match value.trim() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(refused(name, value, "expected text or json")),
    }
}

fn log_level(name: &str, value: &str) -> Result<LevelFilter, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(LevelFilter::Off),
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err(refused(
            name,
            value,
            "expected off, error, warn, info, debug or trace",
        )),
    }
}

/// An address to listen on; empty means "not served".
fn metrics_addr(name: &str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse::<SocketAddr>().map(Some).map_err(|_| {
        refused(
            name,
            value,
            "expected an IP address and port such as 127.0.0.1:9464",
        )
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use galaxy_runtime_docker::DEFAULT_DOCKER_HOST;

    use super::*;

    fn file(text: &str) -> (PathBuf, impl Drop) {
        struct Remove(PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let path = std::env::temp_dir().join(format!(
            "galaxy-runtime-settings-{}.toml",
            galaxy_runtime_model::GameId::new_random()
        ));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("temp file written");
        (path.clone(), Remove(path))
    }

    fn load(
        common: CommonFlags,
        reconciler: ReconcilerFlags,
        pairs: &[(&str, &str)],
    ) -> Result<Settings, BadInput> {
        let lookup = env::lookup_from(pairs);
        Settings::load(
            Flags {
                common: &common,
                reconciler: Some(&reconciler),
                metrics_addr: None,
                lobby: None,
            },
            &lookup,
        )
    }

    #[test]
    fn defaults_without_any_source() {
        let s = load(CommonFlags::default(), ReconcilerFlags::default(), &[]).unwrap();
        assert_eq!(s.config, Config::default());
        assert_eq!(s.store.url, "sqlite://galaxy-runtime.db");
        assert_eq!(s.docker.host, DEFAULT_DOCKER_HOST);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.metrics_addr, None);
    }

    #[test]
    fn flags_beat_environment_beats_file() {
        let (path, _guard) = file(
            "probe_concurrency = 8\nfailure_threshold = 5\nstart_grace = \"1m\"\n\
             [database]\nurl = \"sqlite://from-file.db\"\nmax_connections = 2\n\
             [docker]\nhost = \"unix:///file.sock\"\n[log]\nformat = \"json\"\n\
             [metrics]\naddr = \"127.0.0.1:9000\"\n",
        );
        let common = CommonFlags {
            config: Some(path),
            database_url: Some("sqlite://from-flag.db".to_owned()),
            ..CommonFlags::default()
        };
        let reconciler = ReconcilerFlags {
            probe_concurrency: Some("1".to_owned()),
            ..ReconcilerFlags::default()
        };
        let s = load(
            common,
            reconciler,
            &[
                ("BACKEND_RUNTIME_PROBE_CONCURRENCY", "4"),
                ("BACKEND_RUNTIME_FAILURE_THRESHOLD", "7"),
                ("DOCKER_HOST", "unix:///env.sock"),
            ],
        )
        .unwrap();
        assert_eq!(s.config.probe_concurrency.get(), 1, "flag wins");
        assert_eq!(
            s.config.failure_threshold.get(),
            7,
            "environment beats file"
        );
        assert_eq!(
            s.config.start_grace,
            Duration::from_secs(60),
            "file beats default"
        );
        assert_eq!(s.store.url, "sqlite://from-flag.db");
        assert_eq!(s.store.max_connections, 2);
        assert_eq!(s.docker.host, "unix:///env.sock");
        assert!(s.docker.host_from_env);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.metrics_addr, Some("127.0.0.1:9000".parse().unwrap()));
    }

    #[test]
    fn a_bad_value_names_its_source_field_and_value() {
        let (path, _guard) = file("failure_threshold = 0\n");
        let err = load(
            CommonFlags {
                config: Some(path.clone()),
                ..CommonFlags::default()
            },
            ReconcilerFlags::default(),
            &[],
        )
        .unwrap_err()
        .0;
        assert!(
            err.starts_with(&format!(
                "config file {}: failure_threshold=\"0\": ",
                path.display()
            )),
            "{err}"
        );

        let err = load(
            CommonFlags::default(),
            ReconcilerFlags::default(),
            &[("BACKEND_RUNTIME_PROBE_TIMEOUT", "soon")],
        )
        .unwrap_err()
        .0;
        assert!(
            err.starts_with("environment: BACKEND_RUNTIME_PROBE_TIMEOUT=\"soon\": "),
            "{err}"
        );

        let err = load(
            CommonFlags::default(),
            ReconcilerFlags {
                engine_addressing: Some("dns".to_owned()),
                ..ReconcilerFlags::default()
            },
            &[],
        )
        .unwrap_err()
        .0;
        assert!(
            err.starts_with("flag --engine-addressing=\"dns\": "),
            "{err}"
        );

        let err = load(
            CommonFlags {
                database_url: Some("mysql://u:secret@h/db".to_owned()),
                ..CommonFlags::default()
            },
            ReconcilerFlags::default(),
            &[],
        )
        .unwrap_err()
        .0;
        assert!(err.starts_with("flag --database-url="), "{err}");
        assert!(!err.contains("secret"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn the_docker_settings_come_from_the_docker_config() {
        let (path, _guard) = file("[docker]\nrequest_timeout = \"10s\"\n");
        let common = || CommonFlags {
            config: Some(path.clone()),
            ..CommonFlags::default()
        };
        let s = load(common(), ReconcilerFlags::default(), &[]).unwrap();
        assert_eq!(s.docker.request_timeout, Duration::from_secs(10));
        let s = load(
            common(),
            ReconcilerFlags::default(),
            &[(&DockerConfig::env_var("request_timeout"), "1m")],
        )
        .unwrap();
        assert_eq!(
            s.docker.request_timeout,
            Duration::from_secs(60),
            "environment beats file"
        );

        let err = load(
            CommonFlags::default(),
            ReconcilerFlags::default(),
            &[("BACKEND_RUNTIME_DOCKER_REQUEST_TIMEOUT", "0s")],
        )
        .unwrap_err()
        .0;
        assert_eq!(
            err,
            "environment: BACKEND_RUNTIME_DOCKER_REQUEST_TIMEOUT=\"0s\": must be longer than 0s"
        );
    }

    #[test]
    fn tls_files_come_from_the_file_the_environment_and_each_host() {
        let (path, _guard) = file(
            "[docker]\nhost = \"tcp://10.0.0.2:2376\"\ntls_ca = \"/file/ca.pem\"\n\
             tls_cert = \"/file/cert.pem\"\ntls_key = \"/file/key.pem\"\n",
        );
        let common = || CommonFlags {
            config: Some(path.clone()),
            ..CommonFlags::default()
        };
        let s = load(common(), ReconcilerFlags::default(), &[]).unwrap();
        assert_eq!(s.docker.tls_ca, Some(PathBuf::from("/file/ca.pem")));
        assert!(s.docker.uses_tls());
        let s = load(
            common(),
            ReconcilerFlags::default(),
            &[
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", "/env"),
                ("BACKEND_RUNTIME_DOCKER_TLS_KEY", "/env/other-key.pem"),
            ],
        )
        .unwrap();
        assert_eq!(
            s.docker.tls_ca,
            Some(PathBuf::from("/env/ca.pem")),
            "environment beats file"
        );
        assert_eq!(s.docker.tls_key, Some(PathBuf::from("/env/other-key.pem")));

        let (hosts, _hosts_guard) = file(
            "[[docker.hosts]]\nname = \"a\"\nurl = \"unix:///a.sock\"\n\
             [[docker.hosts]]\nname = \"b\"\nurl = \"tcp://10.0.0.3:2376\"\n\
             tls_ca = \"/b/ca.pem\"\ntls_cert = \"/b/cert.pem\"\ntls_key = \"/b/key.pem\"\n",
        );
        let s = load(
            CommonFlags {
                config: Some(hosts.clone()),
                ..CommonFlags::default()
            },
            ReconcilerFlags::default(),
            &[],
        )
        .unwrap();
        let b = s.docker_hosts[1].docker_config(&s.docker);
        assert_eq!(b.tls_cert, Some(PathBuf::from("/b/cert.pem")));

        let (bad, _bad_guard) = file(
            "[[docker.hosts]]\nname = \"b\"\nurl = \"unix:///b.sock\"\ntls_ca = \"/ca.pem\"\n",
        );
        let err = load(
            CommonFlags {
                config: Some(bad.clone()),
                ..CommonFlags::default()
            },
            ReconcilerFlags::default(),
            &[],
        )
        .unwrap_err()
        .0;
        assert!(
            err.starts_with(&format!("config file {}: docker.hosts", bad.display())),
            "{err}"
        );
        assert!(err.contains("Docker host \"b\" has TLS files"), "{err}");
    }

    #[test]
    fn file_errors_are_one_line() {
        for (text, expected) in [
            ("failure_threshold = ", "not valid TOML (line 1"),
            ("no_such_field = 1\n", "unknown configuration field"),
            ("[database]\nurl = \"mysql://h/db\"\n", "database.url="),
            ("[docker]\nport = 1\n", "docker.port="),
            ("database = 3\n", "expected a [database] section"),
            ("probe_timeout = [1, 2]\n", "expected a string or a number"),
            ("[log]\nformat = \"xml\"\n", "expected text or json"),
        ] {
            let (path, _guard) = file(text);
            let err = load(
                CommonFlags {
                    config: Some(path),
                    ..CommonFlags::default()
                },
                ReconcilerFlags::default(),
                &[],
            )
            .unwrap_err()
            .0;
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = load(
            CommonFlags {
                config: Some(PathBuf::from("/nonexistent/galaxy.toml")),
                ..CommonFlags::default()
            },
            ReconcilerFlags::default(),
            &[],
        )
        .unwrap_err()
        .0;
        assert!(
            err.starts_with("cannot read config file /nonexistent/galaxy.toml"),
            "{err}"
        );
    }

    #[test]
    fn the_config_file_may_come_from_the_environment() {
        let (path, _guard) = file("reconcile_interval = \"5s\"\n");
        let s = load(
            CommonFlags::default(),
            ReconcilerFlags::default(),
            &[(CONFIG_FILE_VAR, path.to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(s.config.reconcile_interval, Duration::from_secs(5));
    }
}
