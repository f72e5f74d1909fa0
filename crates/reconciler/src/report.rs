//! What one pass saw and did ([`PassReport`]) and how it failed ([`PassError`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use galaxy_runtime_model::{GameId, PassKind, Timestamp};
use galaxy_runtime_ports::PortError;
use serde::{Serialize, Serializer};

use crate::{Action, Finding, Plan};

/// What one pass saw and did. Every count map holds every kind, zeros included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassReport {
    /// Which kind of pass it was.
    pub pass: PassKind,
    /// The time of the pass (its observation's `now`); `None` when it did not get that far.
    pub now: Option<Timestamp>,
    /// Whether the pass was skipped because another replica holds the leader lock.
    pub skipped_not_leader: bool,
    /// Managed containers listed.
    pub containers: u64,
    /// Runtime records listed.
    pub records: u64,
    /// Engines the pass set out to probe (R9), whether or not they could be addressed.
    pub probes: u64,
    /// Planned actions by kind.
    pub actions: BTreeMap<String, u64>,
    /// Findings by kind.
    pub findings: BTreeMap<String, u64>,
    /// Actions that took effect, by kind.
    pub applied: BTreeMap<String, u64>,
    /// Actions skipped because the record changed meanwhile (compare-and-set conflicts).
    pub conflicts: u64,
    /// `set_status … to: removed` actions not applied because the container could not be
    /// confirmed gone.
    pub skipped_removals: u64,
    /// Lobby events recorded in the outbox with their status changes (delivered by the relay,
    /// beside the loop).
    pub events: u64,
    /// Actions that failed.
    pub failures: u64,
    /// Actions not attempted because leadership was lost during the pass.
    pub not_applied: u64,
    /// How long each step took.
    pub durations: PassDurations,
}

/// How long each step of a pass took, in seconds in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PassDurations {
    /// Listing, loading and probing.
    #[serde(serialize_with = "seconds")]
    pub observe: Duration,
    /// Planning.
    #[serde(serialize_with = "seconds")]
    pub plan: Duration,
    /// Applying.
    #[serde(serialize_with = "seconds")]
    pub apply: Duration,
}

fn seconds<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(d.as_secs_f64())
}

fn zeros(kinds: &[&str]) -> BTreeMap<String, u64> {
    kinds.iter().map(|k| (k.to_string(), 0)).collect()
}

impl Default for PassReport {
    fn default() -> Self {
        Self {
            pass: PassKind::Full,
            now: None,
            skipped_not_leader: false,
            containers: 0,
            records: 0,
            probes: 0,
            actions: zeros(&Action::KINDS),
            findings: zeros(&Finding::KINDS),
            applied: zeros(&Action::KINDS),
            conflicts: 0,
            skipped_removals: 0,
            events: 0,
            failures: 0,
            not_applied: 0,
            durations: PassDurations::default(),
        }
    }
}

impl PassReport {
    /// Records the plan's counts.
    pub(crate) fn set_plan(&mut self, plan: &Plan) {
        self.actions = plan.summary.actions.clone();
        self.findings = plan.summary.findings.clone();
    }

    /// Counts one applied action.
    pub(crate) fn count_applied(&mut self, kind: &str, n: u64) {
        *self.applied.entry(kind.to_owned()).or_default() += n;
    }

    /// Total applied actions.
    pub fn applied_total(&self) -> u64 {
        self.applied.values().sum()
    }
}

/// The step of observation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObserveStep {
    /// `DockerPort::list_managed`.
    ListContainers,
    /// `StorePort::list_records`.
    ListRecords,
    /// `StorePort::load_game_projections`.
    LoadProjections,
}

impl fmt::Display for ObserveStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ListContainers => "list managed containers",
            Self::ListRecords => "list runtime records",
            Self::LoadProjections => "load game projections",
        })
    }
}

/// One action that failed, naming its game and kind.
#[derive(Debug, thiserror::Error)]
#[error("{action} {game_id}: {error}")]
pub struct ActionFailure {
    /// The game.
    pub game_id: GameId,
    /// The action's `kind` word (`adopt`, `set_status`, …).
    pub action: &'static str,
    /// What the port answered.
    #[source]
    pub error: PortError,
}

/// Why a pass did not complete cleanly. Every variant carries the report of what the pass did
/// up to that point ([`PassError::report`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    /// Reading failed; the pass wrote nothing.
    #[error("{step}: {source}")]
    Observe {
        /// Which read failed.
        step: ObserveStep,
        /// The port's error.
        #[source]
        source: PortError,
        /// What the pass did (nothing was written).
        report: Box<PassReport>,
    },
    /// Some actions failed; every other action was still applied. Lists every failure, one a
    /// line, as Go's `errors.Join` does.
    #[error("{}", join(.failures))]
    Actions {
        /// Every failed action, in plan order.
        failures: Vec<ActionFailure>,
        /// What the pass did.
        report: Box<PassReport>,
    },
    /// The leader lock was lost (or could not be confirmed) while applying: the rest of the
    /// plan was not applied.
    #[error("leadership lost: {reason}; {} actions not applied{}", .report.not_applied, tail(.failures))]
    LeadershipLost {
        /// Why leadership is considered lost.
        reason: String,
        /// The actions that had failed before.
        failures: Vec<ActionFailure>,
        /// What the pass did.
        report: Box<PassReport>,
    },
    /// The leader lock could not be asked; the pass did nothing.
    #[error("leader lock: {source}")]
    LeaderLock {
        /// The port's error.
        #[source]
        source: PortError,
        /// What the pass did (nothing).
        report: Box<PassReport>,
    },
    /// A port panicked during the pass; what the pass did until then is unknown in detail.
    #[error("pass panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
        /// An almost empty report.
        report: Box<PassReport>,
    },
}

fn join(failures: &[ActionFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail(failures: &[ActionFailure]) -> String {
    if failures.is_empty() {
        String::new()
    } else {
        format!("\n{}", join(failures))
    }
}

impl PassError {
    /// What the pass did before it failed.
    pub fn report(&self) -> &PassReport {
        match self {
            Self::Observe { report, .. }
            | Self::Actions { report, .. }
            | Self::LeadershipLost { report, .. }
            | Self::LeaderLock { report, .. }
            | Self::Panicked { report, .. } => report,
        }
    }

    /// The failed actions, if any.
    pub fn failures(&self) -> &[ActionFailure] {
        match self {
            Self::Actions { failures, .. } | Self::LeadershipLost { failures, .. } => failures,
            _ => &[],
        }
    }

    /// Whether the pass wrote nothing at all because reading failed.
    pub fn is_observe(&self) -> bool {
        matches!(self, Self::Observe { .. })
    }

    /// Whether trying the pass again soon may succeed: a read that failed for a transient
    /// reason, or actions of which one at least failed so ([`PortError::is_retryable`]).
    /// Leadership lost is not: another replica leads now. A panic is not: it would panic again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Observe { source, .. } | Self::LeaderLock { source, .. } => source.is_retryable(),
            Self::Actions { failures, .. } => failures.iter().any(|f| f.error.is_retryable()),
            Self::LeadershipLost { .. } | Self::Panicked { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_error_lists_every_failure() {
        let a: GameId = "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60".parse().unwrap();
        let b: GameId = "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f61".parse().unwrap();
        let err = PassError::Actions {
            failures: vec![
                ActionFailure {
                    game_id: a,
                    action: "set_status",
                    error: PortError::invalid("bad row"),
                },
                ActionFailure {
                    game_id: b,
                    action: "adopt",
                    error: PortError::conflict("x"),
                },
            ],
            report: Box::default(),
        };
        assert_eq!(
            err.to_string(),
            "set_status 6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60: invalid: bad row\n\
             adopt 6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f61: conflict: x"
        );
        assert_eq!(err.failures().len(), 2);
        assert!(!err.is_observe());
    }

    #[test]
    fn observe_error_names_the_step_and_keeps_the_source() {
        let err = PassError::Observe {
            step: ObserveStep::ListContainers,
            source: PortError::unavailable("docker", std::io::Error::other("refused")),
            report: Box::default(),
        };
        assert_eq!(
            err.to_string(),
            "list managed containers: unavailable: docker"
        );
        let source = std::error::Error::source(&err).expect("source kept");
        assert!(std::error::Error::source(source).is_some());
        assert!(err.is_observe());
    }

    #[test]
    fn report_serialises_every_kind_and_seconds() {
        let mut report = PassReport::default();
        report.durations.observe = Duration::from_millis(1500);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["durations"]["observe"], 1.5);
        assert_eq!(json["actions"]["adopt"], 0);
        assert_eq!(json["findings"]["orphan_container"], 0);
        assert_eq!(json["applied"]["publish_snapshot"], 0);
    }
}
