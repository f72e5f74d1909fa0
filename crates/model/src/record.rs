use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{GameId, Timestamp};

/// What the backend believes about a game's engine container.
///
/// `removed` and `failed` are terminal: a record in a terminal status never changes status again
/// (see [`RuntimeStatus::check_transition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeStatus {
    /// A start job created (or is creating) the container.
    Starting,
    /// The container runs and its engine answers.
    Running,
    /// The container runs but its engine stopped answering.
    EngineUnreachable,
    /// The game was stopped on purpose; its container may still exist.
    Stopped,
    /// The container is gone. Terminal.
    Removed,
    /// A job failed for good. Terminal.
    Failed,
}

impl RuntimeStatus {
    /// Every status, in declaration order.
    pub const ALL: [RuntimeStatus; 6] = [
        Self::Starting,
        Self::Running,
        Self::EngineUnreachable,
        Self::Stopped,
        Self::Removed,
        Self::Failed,
    ];

    /// `removed` and `failed`.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Removed | Self::Failed)
    }

    /// The snake_case word of the contract, as in JSON and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::EngineUnreachable => "engine_unreachable",
            Self::Stopped => "stopped",
            Self::Removed => "removed",
            Self::Failed => "failed",
        }
    }

    /// The forward-only rule: any status may move to any other, except out of a terminal one.
    ///
    /// Moving to the same status is allowed (a repeated write is harmless), also when terminal.
    pub fn check_transition(self, to: RuntimeStatus) -> Result<(), StatusTransitionError> {
        if self.is_terminal() && self != to {
            Err(StatusTransitionError { from: self, to })
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for RuntimeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuntimeStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown runtime status {s:?}: expected one of starting, running, \
                     engine_unreachable, stopped, removed, failed"
                )
            })
    }
}

/// A transition out of a terminal status, which the forward-only rule forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status {from} is terminal and cannot change to {to}")]
pub struct StatusTransitionError {
    /// The terminal status.
    pub from: RuntimeStatus,
    /// The refused target.
    pub to: RuntimeStatus,
}

/// One row of `runtime_records`: what the backend believes runs for a game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeRecord {
    /// The game.
    pub game_id: GameId,
    /// The believed status.
    pub status: RuntimeStatus,
    /// The container believed to run the game; empty when unknown.
    #[serde(default)]
    pub current_container_id: String,
    /// The image of that container.
    #[serde(default)]
    pub current_image_ref: String,
    /// The engine version label of that container (empty when absent or invalid).
    #[serde(default)]
    pub current_engine_version: String,
    /// Where the engine answers, such as `http://galaxy-game-<id>:8080`.
    #[serde(default)]
    pub engine_endpoint: String,
    /// The Docker network the container is attached to.
    #[serde(default)]
    pub docker_network: String,
    /// The game's turn schedule (a cron expression owned by the lobby).
    #[serde(default)]
    pub turn_schedule: String,
    /// Consecutive failed engine probes.
    #[serde(default)]
    pub probe_failures: u32,
    /// When `status` last changed.
    pub status_changed_at: Timestamp,
    /// The Docker host the container runs on (CONTRACT §6); `""` stands for the first host
    /// of the observation (the only one, without several hosts). Omitted in JSON when `""`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_host: String,
}

impl RuntimeRecord {
    /// A record with the given status and every optional field empty.
    pub fn new(game_id: GameId, status: RuntimeStatus, status_changed_at: Timestamp) -> Self {
        Self {
            game_id,
            status,
            current_container_id: String::new(),
            current_image_ref: String::new(),
            current_engine_version: String::new(),
            engine_endpoint: String::new(),
            docker_network: String::new(),
            turn_schedule: String::new(),
            probe_failures: 0,
            status_changed_at,
            docker_host: String::new(),
        }
    }

    /// Whether the record's status is terminal.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

/// The lobby's view of a game, read from the store: enough to adopt its container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameProjection {
    /// The game.
    pub game_id: GameId,
    /// Its turn schedule.
    #[serde(default)]
    pub turn_schedule: String,
}

/// What probing one engine gave: its status JSON, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ProbeOutcome {
    /// The engine answered; the JSON it returned, as is. Shared, because the plan's
    /// `publish_snapshot` carries the very same document and fleets are large.
    Ok(Arc<serde_json::Value>),
    /// No usable answer; a short human-readable reason such as `timeout after 2s`.
    Error(String),
}

impl ProbeOutcome {
    /// Whether the engine answered.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok(_))
    }

    /// The outcome of an engine's answer `state`: [`ProbeOutcome::Ok`] when a store can keep
    /// it as a snapshot, else an error naming why ([`unstorable_reason`]).
    pub fn of_answer(state: serde_json::Value) -> Self {
        match unstorable_reason(&state) {
            Some(reason) => Self::Error(reason),
            None => Self::Ok(Arc::new(state)),
        }
    }
}

/// Why a store cannot keep `state` as a snapshot, or `None` when it can.
///
/// A NUL character (`\u0000`) in a string or a key is refused by PostgreSQL's `jsonb`; an
/// answer holding one is a failed probe rather than a snapshot that fails to publish (and, in a
/// batch, takes others down with it).
///
/// ```
/// use galaxy_runtime_model::unstorable_reason;
/// use serde_json::json;
///
/// assert_eq!(unstorable_reason(&json!({"turn": 3, "s": "ok"})), None);
/// assert_eq!(
///     unstorable_reason(&json!({"players": [{"name": "a\u{0}b"}]})).as_deref(),
///     Some("the status holds a NUL character (\\u0000) at $.players[0].name, which the store cannot keep")
/// );
/// ```
pub fn unstorable_reason(state: &serde_json::Value) -> Option<String> {
    fn find(value: &serde_json::Value, path: &mut String) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = find(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(fields) => fields.iter().any(|(key, item)| {
                let len = path.len();
                path.push('.');
                path.push_str(&crate::text::escape_foreign(key, 40));
                let found = key.contains('\0') || find(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = "$".to_owned();
    find(state, &mut path).then(|| {
        format!("the status holds a NUL character (\\u0000) at {path}, which the store cannot keep")
    })
}

/// A status snapshot of one engine, as published to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The game.
    pub game_id: GameId,
    /// The engine's status JSON, as it answered. Shared with the probe outcome and the plan's
    /// `publish_snapshot` it came from: a 100k pass would otherwise copy every engine's JSON
    /// once more into the batch it hands the store (48 MiB of its peak, docs/performance.md §7).
    pub state: Arc<serde_json::Value>,
    /// When the probe was made.
    pub observed_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_are_removed_and_failed() {
        let terminal: Vec<_> = RuntimeStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, [RuntimeStatus::Removed, RuntimeStatus::Failed]);
    }

    #[test]
    fn forward_only() {
        use RuntimeStatus::*;
        assert!(Running.check_transition(Removed).is_ok());
        assert!(Stopped.check_transition(Running).is_ok());
        assert!(Removed.check_transition(Removed).is_ok());
        assert_eq!(
            Removed.check_transition(Running),
            Err(StatusTransitionError {
                from: Removed,
                to: Running
            })
        );
        assert!(Failed.check_transition(Removed).is_err());
    }

    #[test]
    fn status_words_round_trip() {
        for s in RuntimeStatus::ALL {
            assert_eq!(s.as_str().parse::<RuntimeStatus>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("Running".parse::<RuntimeStatus>().is_err());
    }

    #[test]
    fn probe_outcome_json() {
        let ok: ProbeOutcome = serde_json::from_str(r#"{"ok": {"turn": 3}}"#).unwrap();
        assert_eq!(ok, ProbeOutcome::Ok(serde_json::json!({"turn": 3}).into()));
        let err: ProbeOutcome = serde_json::from_str(r#"{"error": "timeout"}"#).unwrap();
        assert_eq!(err, ProbeOutcome::Error("timeout".into()));
        assert!(serde_json::from_str::<ProbeOutcome>(r#"{"maybe": 1}"#).is_err());
    }
}
