use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    Config, ContainerSummary, GameId, GameProjection, ProbeOutcome, RuntimeRecord, Timestamp,
};

/// The two kinds of pass (CONTRACT §3, "Full and quick passes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassKind {
    /// Lists, loads projections and probes engines: every rule applies.
    #[default]
    Full,
    /// Lists and loads projections but probes nothing: rule R9 is not applied at all (no
    /// probe, no failure counted, no snapshot, no status change from engine health); every
    /// other rule is. For reacting to Docker events within moments at any fleet size.
    Quick,
}

impl PassKind {
    /// The word of the scenario JSON and of logs and metric labels: `full` or `quick`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Quick => "quick",
        }
    }

    /// Whether this is a full pass.
    pub const fn is_full(&self) -> bool {
        matches!(self, Self::Full)
    }
}

impl fmt::Display for PassKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Docker host of an observation (CONTRACT §6): its name and, when it failed to list, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostObservation {
    /// The host's configured name.
    pub name: String,
    /// Why it failed to list; absent when it listed fine. The records of a host that failed
    /// are unobserved, not missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HostObservation {
    /// A host that listed fine.
    pub fn listed(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            error: None,
        }
    }

    /// A host that failed to list, and why.
    pub fn failed(name: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            error: Some(error.into()),
        }
    }
}

/// Everything one pass observed: the input of planning.
///
/// `probes` holds the outcome of every engine probe the pass made, by game id.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Which kind of pass observed it.
    pub pass: PassKind,
    /// The Docker hosts and how their listing went (CONTRACT §6); empty for the one host `""`
    /// that listed fine.
    pub hosts: Vec<HostObservation>,
    /// The time of the pass.
    pub now: Timestamp,
    /// The managed containers Docker listed. Shared, not owned: an adapter that holds the
    /// containers itself (the memory adapters) lists them without copying the fleet.
    pub containers: Vec<Arc<ContainerSummary>>,
    /// Every runtime record, shared as the containers are.
    pub records: Vec<Arc<RuntimeRecord>>,
    /// The projections of the games that have a container but no record.
    pub games: Vec<GameProjection>,
    /// The probe outcomes, by game id.
    pub probes: BTreeMap<GameId, ProbeOutcome>,
    /// Why the projections could not be loaded, when they could not: the planner then decides
    /// nothing about the unrecorded games (R10), since a failed load is not evidence that a game
    /// does not exist.
    pub projections_error: Option<String>,
}

impl Observation {
    /// An observation of nothing at `now`.
    pub fn empty(now: Timestamp) -> Self {
        Self {
            pass: PassKind::Full,
            hosts: Vec::new(),
            now,
            containers: Vec::new(),
            records: Vec::new(),
            games: Vec::new(),
            probes: BTreeMap::new(),
            projections_error: None,
        }
    }
}

/// An observation together with the configuration it is planned under: the scenario JSON of
/// the contract (§5), which `galaxy-runtime observe` prints and `galaxy-runtime plan` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Which kind of pass it is: `"full"` (the default, also when absent) or `"quick"`.
    #[serde(default, skip_serializing_if = "PassKind::is_full")]
    pub pass: PassKind,
    /// The Docker hosts (CONTRACT §6); absent for the one host `""` that listed fine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostObservation>,
    /// The time of the pass.
    pub now: Timestamp,
    /// The configuration (any subset of fields in input; every field in output).
    #[serde(default)]
    pub config: Config,
    /// The managed containers.
    #[serde(default)]
    pub containers: Vec<Arc<ContainerSummary>>,
    /// Every runtime record.
    #[serde(default)]
    pub records: Vec<Arc<RuntimeRecord>>,
    /// Game projections.
    #[serde(default)]
    pub games: Vec<GameProjection>,
    /// Probe outcomes by game id.
    #[serde(default)]
    pub probes: BTreeMap<GameId, ProbeOutcome>,
    /// Why the projections of the unrecorded games could not be loaded (absent when they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projections_error: Option<String>,
}

/// A scenario document that was refused, with where in it the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The JSON path of the offending value, such as `records[2].status` (`.` for the root).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Line and column in the document, when known.
    pub position: Option<(usize, usize)>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}", self.path)?;
        if let Some((line, column)) = self.position {
            write!(f, " (line {line}, column {column})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Scenario {
    /// Pairs an observation with its configuration.
    pub fn new(observation: Observation, config: Config) -> Self {
        let Observation {
            pass,
            hosts,
            now,
            containers,
            records,
            games,
            probes,
            projections_error,
        } = observation;
        Self {
            pass,
            hosts,
            now,
            config,
            containers,
            records,
            games,
            probes,
            projections_error,
        }
    }

    /// Splits into the observation and the configuration.
    pub fn into_parts(self) -> (Observation, Config) {
        let Self {
            pass,
            hosts,
            now,
            config,
            containers,
            records,
            games,
            probes,
            projections_error,
        } = self;
        (
            Observation {
                pass,
                hosts,
                now,
                containers,
                records,
                games,
                probes,
                projections_error,
            },
            config,
        )
    }

    /// Parses and checks a scenario document. Errors name the offending field by its path.
    ///
    /// Beyond what the types check, two records or two games with the same game id, and two
    /// containers with the same id, are refused.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        let scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let position = (inner.line() > 0).then(|| (inner.line(), inner.column()));
            ScenarioError {
                path,
                message: strip_position(&inner.to_string()),
                position,
            }
        })?;
        scenario.check_unique()?;
        Ok(scenario)
    }

    fn check_unique(&self) -> Result<(), ScenarioError> {
        fn first_duplicate(ids: impl Iterator<Item = GameId>) -> Option<(usize, GameId)> {
            let mut seen = HashSet::new();
            ids.enumerate().find(|(_, id)| !seen.insert(*id))
        }
        let duplicate = |list: &str, (index, id): (usize, GameId)| ScenarioError {
            path: format!("{list}[{index}].game_id"),
            message: format!("duplicate game id {id}: another entry of {list} has it"),
            position: None,
        };
        if let Some(dup) = first_duplicate(self.records.iter().map(|r| r.game_id)) {
            return Err(duplicate("records", dup));
        }
        if let Some(dup) = first_duplicate(self.games.iter().map(|g| g.game_id)) {
            return Err(duplicate("games", dup));
        }
        let mut host_names = HashSet::new();
        if let Some((index, host)) = self
            .hosts
            .iter()
            .enumerate()
            .find(|(_, h)| !host_names.insert(h.name.as_str()))
        {
            return Err(ScenarioError {
                path: format!("hosts[{index}].name"),
                message: format!(
                    "duplicate host {:?}: another entry of hosts has it",
                    host.name
                ),
                position: None,
            });
        }
        let known_host = |host: &str| {
            if self.hosts.is_empty() {
                host.is_empty()
            } else {
                host_names.contains(host)
            }
        };
        let mut container_ids = HashSet::new();
        for (index, c) in self.containers.iter().enumerate() {
            if !known_host(&c.host) {
                return Err(ScenarioError {
                    path: format!("containers[{index}].host"),
                    message: format!("host {:?} is not among the hosts", c.host),
                    position: None,
                });
            }
            if !container_ids.insert((c.host.as_str(), c.id.as_str())) {
                return Err(ScenarioError {
                    path: format!("containers[{index}].id"),
                    message: format!(
                        "duplicate container id {:?}: another entry of containers on its host \
                         has it",
                        c.id
                    ),
                    position: None,
                });
            }
        }
        Ok(())
    }
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60";

    fn record(id: &str, status: &str) -> String {
        format!(
            r#"{{"game_id": "{id}", "status": "{status}", "status_changed_at": "2026-11-27T11:00:00Z"}}"#
        )
    }

    fn error_of(text: &str) -> ScenarioError {
        Scenario::from_json(text).expect_err("accepted a bad scenario")
    }

    #[test]
    fn minimal_scenario_parses_with_defaults() {
        let s = Scenario::from_json(r#"{"now": "2026-11-27T12:00:00Z"}"#).unwrap();
        assert_eq!(s.config, Config::default());
        assert!(s.containers.is_empty() && s.records.is_empty() && s.probes.is_empty());
    }

    #[test]
    fn errors_name_the_path() {
        let e = error_of(&format!(
            r#"{{"now": "2026-11-27T12:00:00Z", "records": [{}, {}]}}"#,
            record(ID, "running"),
            record("6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f61", "runing")
        ));
        assert_eq!(e.path, "records[1].status");
        assert!(e.message.contains("runing"), "{e}");
        assert!(e.position.is_some());

        let e = error_of(r#"{"now": "2026-11-27T12:00:00Z", "config": {"failure_threshold": 0}}"#);
        assert_eq!(e.path, "config.failure_threshold");

        let e = error_of(r#"{"now": "yesterday"}"#);
        assert_eq!(e.path, "now");
        assert!(e.message.contains("invalid timestamp"), "{e}");

        let e = error_of(r#"{"now": "2026-11-27T12:00:00Z", "extra": 1}"#);
        assert!(e.message.contains("unknown field `extra`"), "{e}");

        let e = error_of(r#"{"now": "2026-11-27T12:00:00Z", "probes": {"x": {"ok": 1}}}"#);
        assert!(e.path.starts_with("probes"), "{e}");
        assert!(e.message.contains("invalid game id"), "{e}");
    }

    #[test]
    fn duplicate_records_and_games_are_refused() {
        let e = error_of(&format!(
            r#"{{"now": "2026-11-27T12:00:00Z", "records": [{}, {}]}}"#,
            record(ID, "running"),
            record(ID, "stopped")
        ));
        assert_eq!(e.path, "records[1].game_id");
        let e = error_of(&format!(
            r#"{{"now": "2026-11-27T12:00:00Z", "games": [{{"game_id": "{ID}"}}, {{"game_id": "{}"}}]}}"#,
            ID.to_uppercase()
        ));
        assert_eq!(e.path, "games[1].game_id");
        let container =
            r#"{"id": "c1", "name": "/x", "state": "running", "created": "2026-11-27T11:00:00Z"}"#;
        let e = error_of(&format!(
            r#"{{"now": "2026-11-27T12:00:00Z", "containers": [{container}, {container}]}}"#
        ));
        assert_eq!(e.path, "containers[1].id");
    }

    #[test]
    fn a_scenario_is_full_unless_it_says_quick() {
        let full = Scenario::from_json(r#"{"now": "2026-11-27T12:00:00Z"}"#).unwrap();
        assert_eq!(full.pass, PassKind::Full);
        assert!(
            !serde_json::to_string(&full).unwrap().contains("\"pass\""),
            "a full pass's scenario is written as before"
        );
        let quick =
            Scenario::from_json(r#"{"now": "2026-11-27T12:00:00Z", "pass": "quick"}"#).unwrap();
        assert_eq!(quick.pass, PassKind::Quick);
        assert!(
            serde_json::to_string(&quick)
                .unwrap()
                .contains(r#""pass":"quick""#)
        );
        let e = error_of(r#"{"now": "2026-11-27T12:00:00Z", "pass": "slow"}"#);
        assert_eq!(e.path, "pass");
    }

    #[test]
    fn round_trips_through_json() {
        let text = format!(
            r#"{{"now": "2026-11-27T12:00:00Z", "records": [{}], "probes": {{"{ID}": {{"error": "timeout after 2s"}}}}}}"#,
            record(ID, "running")
        );
        let s = Scenario::from_json(&text).unwrap();
        let again = Scenario::from_json(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(s, again);
    }
}
