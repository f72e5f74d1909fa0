use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{RuntimeStatus, duration, env};

/// How the executor reaches an engine for its status probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineAddressing {
    /// The record's `engine_endpoint` (`http://galaxy-game-<id>:8080`), as the seed does: for a
    /// backend that runs inside the Docker network and resolves container names.
    #[default]
    Hostname,
    /// The container's address on `docker_network` at `engine_port`: for a backend that runs on
    /// the Docker host itself.
    ContainerIp,
    /// The address of the container's Docker host and the host port Docker published
    /// `engine_port` on (`docker run -p`, a Swarm service's ingress port): for a backend that
    /// is on none of the hosts' networks, such as one reconciler for several remote hosts.
    PublishedPort,
}

/// Everything the reconciler can be told, with the defaults of the contract (§2).
///
/// Every field has a default; every field can be set from JSON or TOML (by its name), from the
/// environment (`BACKEND_RUNTIME_<FIELD IN UPPER CASE>`, see [`Config::from_env`]) or by
/// [`Config::set`]. Durations are written `500ms`, `30s`, `2m`, `1h`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Time between periodic passes (env `BACKEND_RUNTIME_RECONCILE_INTERVAL`, the seed's name).
    #[serde(with = "duration::non_zero")]
    pub reconcile_interval: Duration,
    /// Up to this much random delay is added to each periodic pass, so that replicas and
    /// restarts do not synchronise. `0s` (the default) adds none.
    #[serde(with = "duration")]
    pub reconcile_jitter: Duration,
    /// Names of game containers are this prefix followed by the game id.
    pub container_name_prefix: String,
    /// The label that marks containers as ours.
    pub managed_label: String,
    /// The value of `managed_label` that marks containers as ours (an instance id, say).
    pub managed_label_value: String,
    /// The label carrying the engine version.
    pub engine_version_label: String,
    /// The port the engine serves HTTP on.
    pub engine_port: u16,
    /// The Docker network of game containers.
    pub docker_network: String,
    /// The longest listing the containers of one Docker host may take: a host slower than this
    /// counts as failed to list (its records unobserved, CONTRACT §6) and never holds up the
    /// pass beyond it.
    #[serde(with = "duration::non_zero")]
    pub docker_list_timeout: Duration,
    /// Consecutive failed probes before a record becomes `engine_unreachable` (at least 1).
    pub failure_threshold: NonZeroU32,
    /// How long a `starting` record may go without a container or an answering engine.
    #[serde(with = "duration")]
    pub start_grace: Duration,
    /// The removal guard trips only above this many removals in one pass …
    pub removal_guard_min: u32,
    /// … and only when they are more than this fraction (0 to 1) of the live records.
    #[serde(deserialize_with = "fraction")]
    pub removal_guard_fraction: f64,
    /// The longest one engine probe may take, connect to last byte.
    #[serde(with = "duration::non_zero")]
    pub probe_timeout: Duration,
    /// At most this many probes in flight at once (at least 1).
    pub probe_concurrency: NonZeroUsize,
    /// The probes of the loop's periodic full passes start evenly over this fraction (0 to
    /// less than 1) of `reconcile_interval`, so that the engines see a steady rate rather than
    /// a burst every interval; 0 probes as fast as `probe_concurrency` allows. (The start-up
    /// pass and passes asked for by a caller never wait.)
    #[serde(deserialize_with = "spread_fraction")]
    pub probe_spread: f64,
    /// The path of the engine's status resource.
    #[serde(deserialize_with = "http_path")]
    pub engine_status_path: String,
    /// How the engine is addressed.
    pub engine_addressing: EngineAddressing,
    /// The largest status body read from an engine; a larger one is a failed probe.
    pub engine_max_body_bytes: u64,
    /// At most this many idle engine connections are kept open in all, for the next probes of
    /// the same engines; beyond it, probes close their connection after the answer. It bounds
    /// the sockets the engine client holds between probes, whatever the fleet's size (0: none
    /// kept).
    pub engine_pool_max_idle: usize,
    /// At most this many idle connections are kept per engine (0: none kept).
    pub engine_pool_max_idle_per_engine: usize,
    /// Docker events closer together than this wake the loop once.
    #[serde(with = "duration")]
    pub event_debounce: Duration,
    /// Quick passes (on Docker events and triggers) start at least this long after each other,
    /// so that an event storm makes a steady trickle of passes, not a flood.
    #[serde(with = "duration")]
    pub quick_pass_min_gap: Duration,
    /// After a failed pass that is worth retrying, the loop tries again after about this long,
    /// doubling the wait after each further failure up to `reconcile_interval`; a pass that
    /// succeeds resets it.
    #[serde(with = "duration::non_zero")]
    pub retry_backoff: Duration,
    /// The statuses whose changes the lobby is told of, through the outbox (CONTRACT §7): any
    /// of `removed`, `engine_unreachable`, `running`, `stopped`.
    #[serde(deserialize_with = "lobby_statuses")]
    pub lobby_statuses: Vec<RuntimeStatus>,
    /// The longest one attempt to deliver a lobby event may take.
    #[serde(with = "duration::non_zero")]
    pub lobby_timeout: Duration,
    /// Failed deliveries are retried after `retry_backoff`, doubling, up to this long.
    #[serde(with = "duration::non_zero")]
    pub lobby_retry_max: Duration,
    /// How often the relay looks for due lobby events even when no pass woke it (events of a
    /// crashed process, of another replica, retries due).
    #[serde(with = "duration::non_zero")]
    pub outbox_sweep: Duration,
    /// How long delivered events are kept (for `galaxy-runtime events`) before they are pruned.
    #[serde(with = "duration")]
    pub outbox_retention: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            reconcile_interval: Duration::from_secs(30),
            reconcile_jitter: Duration::ZERO,
            container_name_prefix: "galaxy-game-".to_owned(),
            managed_label: "galaxy.managed".to_owned(),
            managed_label_value: "true".to_owned(),
            engine_version_label: "galaxy.engine_version".to_owned(),
            engine_port: 8080,
            docker_network: "galaxy".to_owned(),
            docker_list_timeout: Duration::from_secs(10),
            failure_threshold: NonZeroU32::new(3).expect("3 is not zero"),
            start_grace: Duration::from_secs(120),
            removal_guard_min: 10,
            removal_guard_fraction: 0.5,
            probe_timeout: Duration::from_secs(2),
            probe_concurrency: NonZeroUsize::new(64).expect("64 is not zero"),
            probe_spread: 0.5,
            engine_status_path: "/status".to_owned(),
            engine_addressing: EngineAddressing::Hostname,
            engine_max_body_bytes: 1024 * 1024,
            engine_pool_max_idle: 256,
            engine_pool_max_idle_per_engine: 1,
            event_debounce: Duration::from_millis(500),
            quick_pass_min_gap: Duration::from_millis(200),
            retry_backoff: Duration::from_secs(1),
            lobby_statuses: vec![RuntimeStatus::Removed],
            lobby_timeout: Duration::from_secs(5),
            lobby_retry_max: Duration::from_secs(300),
            outbox_sweep: Duration::from_secs(5),
            outbox_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// A configuration value that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub struct ConfigError {
    /// Where the value came from: the environment variable or the field name.
    pub name: String,
    /// The refused value.
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

impl Config {
    /// The names of every field, in declaration order.
    pub fn field_names() -> Vec<String> {
        env::field_names(&Config::default())
    }

    /// The environment variable of a field: `failure_threshold` → `BACKEND_RUNTIME_FAILURE_THRESHOLD`.
    pub fn env_var(field: &str) -> String {
        env::var_name(env::PREFIX, field)
    }

    /// The defaults, overridden by every `BACKEND_RUNTIME_<FIELD>` in the process environment.
    ///
    /// Variables with the prefix that name no field are left alone: adapters and the host may
    /// use the same prefix for their own settings.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = Self::default();
        config.apply_env(|name| std::env::var_os(name))?;
        Ok(config)
    }

    /// Overrides fields from an environment given as a lookup function (for tests and hosts
    /// that keep their environment elsewhere), with [`env::apply_env`].
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<(), ConfigError> {
        env::apply_env(self, |field| Some(Self::env_var(field)), lookup)
    }

    /// Sets one field from its text form (`"30s"`, `"3"`, `"container_ip"`), checked exactly as
    /// JSON input is ([`env::set_field`]).
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), ConfigError> {
        env::set_field(self, field, value, field)
    }

    /// Checks the invariants that the types alone do not (for configurations built in code).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let round_trip = serde_json::to_value(self)
            .and_then(serde_json::from_value::<Config>)
            .map(|_| ());
        round_trip.map_err(|e| ConfigError {
            name: "config".to_owned(),
            value: format!("{self:?}"),
            reason: e.to_string(),
        })
    }
}

fn lobby_statuses<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<RuntimeStatus>, D::Error> {
    let statuses = Vec::<RuntimeStatus>::deserialize(deserializer)?;
    if let Some(refused) = statuses
        .iter()
        .find(|s| !crate::LOBBY_STATUS_CHOICES.contains(s))
    {
        return Err(serde::de::Error::custom(format!(
            "the lobby is not told of {refused}: choose among removed, engine_unreachable, \
             running, stopped"
        )));
    }
    let mut unique = statuses.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != statuses.len() {
        return Err(serde::de::Error::custom("a status is named twice"));
    }
    Ok(statuses)
}

fn spread_fraction<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let f = f64::deserialize(deserializer)?;
    if !(0.0..1.0).contains(&f) {
        return Err(serde::de::Error::custom(format!(
            "must be a fraction from 0 to less than 1 of reconcile_interval, got {f}"
        )));
    }
    Ok(f)
}

fn fraction<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let f = f64::deserialize(deserializer)?;
    if !(0.0..=1.0).contains(&f) {
        return Err(serde::de::Error::custom(format!(
            "must be a fraction from 0 to 1, got {f}"
        )));
    }
    Ok(f)
}

fn http_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let path = String::deserialize(deserializer)?;
    let acceptable = path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'#' | b'\\'));
    if !acceptable {
        return Err(serde::de::Error::custom(format!(
            "must be an absolute HTTP path such as /status, got {path:?}"
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::lookup_from;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::default();
        assert_eq!(c.reconcile_interval, Duration::from_secs(30));
        assert_eq!(c.container_name_prefix, "galaxy-game-");
        assert_eq!(
            (c.managed_label.as_str(), c.managed_label_value.as_str()),
            ("galaxy.managed", "true")
        );
        assert_eq!(c.engine_version_label, "galaxy.engine_version");
        assert_eq!(c.engine_port, 8080);
        assert_eq!(c.docker_network, "galaxy");
        assert_eq!(c.failure_threshold.get(), 3);
        assert_eq!(c.start_grace, Duration::from_secs(120));
        assert_eq!((c.removal_guard_min, c.removal_guard_fraction), (10, 0.5));
        assert_eq!(c.probe_timeout, Duration::from_secs(2));
        assert_eq!(c.probe_concurrency.get(), 64);
        assert_eq!(c.engine_status_path, "/status");
        assert_eq!(c.engine_max_body_bytes, 1 << 20);
        assert_eq!(
            (c.engine_pool_max_idle, c.engine_pool_max_idle_per_engine),
            (256, 1)
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn json_uses_duration_syntax_and_round_trips() {
        let json = serde_json::to_value(Config::default()).unwrap();
        assert_eq!(json["reconcile_interval"], "30s");
        assert_eq!(json["start_grace"], "2m");
        assert_eq!(json["event_debounce"], "500ms");
        let back: Config = serde_json::from_value(json).unwrap();
        assert_eq!(back, Config::default());
    }

    #[test]
    fn subset_keeps_other_defaults() {
        let c: Config =
            serde_json::from_str(r#"{"failure_threshold": 1, "start_grace": "30s"}"#).unwrap();
        assert_eq!(c.failure_threshold.get(), 1);
        assert_eq!(c.start_grace, Duration::from_secs(30));
        assert_eq!(c.probe_concurrency.get(), 64);
    }

    #[test]
    fn bad_json_values_are_refused() {
        for bad in [
            r#"{"failure_threshold": 0}"#,
            r#"{"probe_concurrency": 0}"#,
            r#"{"removal_guard_min": -1}"#,
            r#"{"removal_guard_fraction": 1.5}"#,
            r#"{"reconcile_interval": "0s"}"#,
            r#"{"start_grace": "soon"}"#,
            r#"{"engine_addressing": "dns"}"#,
            r#"{"engine_status_path": "status"}"#,
            r#"{"engine_port": 70000}"#,
            r#"{"engine_pool_max_idle": -1}"#,
            r#"{"no_such_field": 1}"#,
        ] {
            assert!(
                serde_json::from_str::<Config>(bad).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn from_env_reads_every_field_by_its_variable() {
        let mut c = Config::default();
        c.apply_env(lookup_from(&[
            ("BACKEND_RUNTIME_RECONCILE_INTERVAL", "5s"),
            ("BACKEND_RUNTIME_FAILURE_THRESHOLD", "7"),
            ("BACKEND_RUNTIME_MANAGED_LABEL_VALUE", "instance-2"),
            ("BACKEND_RUNTIME_ENGINE_ADDRESSING", "container_ip"),
            ("BACKEND_RUNTIME_REMOVAL_GUARD_FRACTION", "0.25"),
            ("BACKEND_RUNTIME_DATABASE_URL", "sqlite://x.db"),
        ]))
        .unwrap();
        assert_eq!(c.reconcile_interval, Duration::from_secs(5));
        assert_eq!(c.failure_threshold.get(), 7);
        assert_eq!(c.managed_label_value, "instance-2");
        assert_eq!(c.engine_addressing, EngineAddressing::ContainerIp);
        assert_eq!(c.removal_guard_fraction, 0.25);
    }

    #[test]
    fn every_engine_addressing_reads_by_its_word() {
        for (word, addressing) in [
            ("hostname", EngineAddressing::Hostname),
            ("container_ip", EngineAddressing::ContainerIp),
            ("published_port", EngineAddressing::PublishedPort),
        ] {
            let mut c = Config::default();
            c.set("engine_addressing", word).unwrap();
            assert_eq!(c.engine_addressing, addressing, "{word}");
        }
        let error = Config::default()
            .set("engine_addressing", "published")
            .unwrap_err();
        assert_eq!(error.value, "published");
    }

    #[test]
    fn bad_env_value_names_variable_and_value() {
        let mut c = Config::default();
        let err = c
            .apply_env(lookup_from(&[("BACKEND_RUNTIME_FAILURE_THRESHOLD", "0")]))
            .unwrap_err();
        assert_eq!(err.name, "BACKEND_RUNTIME_FAILURE_THRESHOLD");
        assert_eq!(err.value, "0");
        let text = err.to_string();
        assert!(
            text.starts_with("BACKEND_RUNTIME_FAILURE_THRESHOLD=\"0\": "),
            "{text}"
        );

        let err = c
            .apply_env(lookup_from(&[(
                "BACKEND_RUNTIME_PROBE_TIMEOUT",
                "2 seconds",
            )]))
            .unwrap_err();
        assert_eq!(err.name, "BACKEND_RUNTIME_PROBE_TIMEOUT");
        assert!(err.reason.contains("invalid duration"), "{err}");

        let err = c
            .apply_env(lookup_from(&[("BACKEND_RUNTIME_ENGINE_PORT", "http")]))
            .unwrap_err();
        assert_eq!(err.reason, "expected a number");
        assert_eq!(c, Config::default(), "a refused value changed the config");
    }

    #[test]
    fn set_refuses_unknown_fields() {
        let err = Config::default().set("failure_treshold", "3").unwrap_err();
        assert!(err.reason.contains("unknown configuration field"), "{err}");
    }

    #[test]
    fn lobby_statuses_are_a_list_of_the_four_a_lobby_may_hear_of() {
        let mut c = Config::default();
        assert_eq!(c.lobby_statuses, [RuntimeStatus::Removed]);
        c.set("lobby_statuses", "removed,engine_unreachable")
            .unwrap();
        assert_eq!(
            c.lobby_statuses,
            [RuntimeStatus::Removed, RuntimeStatus::EngineUnreachable]
        );
        let err = c.set("lobby_statuses", "removed,starting").unwrap_err();
        assert!(err.reason.contains("not told of starting"), "{err}");
        let err = c.set("lobby_statuses", "removed,removed").unwrap_err();
        assert!(err.reason.contains("named twice"), "{err}");
        let err = c.set("lobby_statuses", "removed,gone").unwrap_err();
        assert!(err.reason.contains("gone"), "{err}");
        assert_eq!(
            c.lobby_statuses,
            [RuntimeStatus::Removed, RuntimeStatus::EngineUnreachable],
            "a refused value changes nothing"
        );
        let json: Config = serde_json::from_str(r#"{"lobby_statuses": ["stopped", "running"]}"#)
            .expect("JSON lists");
        assert_eq!(
            json.lobby_statuses,
            [RuntimeStatus::Stopped, RuntimeStatus::Running]
        );
    }
}
