//! The plan: what one pass will do (actions) and what it noticed (findings), as data.

use std::collections::BTreeMap;
use std::sync::Arc;

use galaxy_runtime_model::{GameId, RuntimeStatus};
use serde::{Deserialize, Serialize};

/// One change the executor makes through the ports.
///
/// The serde form is the plan JSON of the contract (§5): an object tagged by `kind`.
///
/// The two rare kinds keep their fields behind a box, so that an action is the size of a
/// status change: a full pass's plan is mostly one `publish_snapshot` per game, and sized by
/// an adoption's eight fields a 100k plan was 24 MiB to write, grow and sort (6 MiB now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// R10: record a container nobody recorded, for a game that exists.
    Adopt(Box<Adoption>),
    /// R7: the record follows the container that really runs the game.
    Rebind(Box<Rebinding>),
    /// R6, R9: a compare-and-set status change.
    SetStatus {
        /// The game.
        game_id: GameId,
        /// The status the plan saw; the change applies only if the record still has it.
        from: RuntimeStatus,
        /// The new status.
        to: RuntimeStatus,
        /// Why.
        message: String,
    },
    /// R9: the consecutive probe failure counter.
    SetProbeFailures {
        /// The game.
        game_id: GameId,
        /// The new count.
        failures: u32,
    },
    /// R9: the engine's fresh status.
    PublishSnapshot {
        /// The game.
        game_id: GameId,
        /// The engine's JSON, as it answered (shared with the observation).
        state: Arc<serde_json::Value>,
    },
}

/// The fields of an [`Action::Adopt`] (R10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adoption {
    /// The game.
    pub game_id: GameId,
    /// The container to adopt.
    pub container_id: String,
    /// Its image.
    pub image_ref: String,
    /// Its engine version (R11), possibly empty.
    pub engine_version: String,
    /// `http://<container_name_prefix><game_id>:<engine_port>`.
    pub endpoint: String,
    /// The configured Docker network.
    pub docker_network: String,
    /// The game's turn schedule, from its projection.
    pub turn_schedule: String,
    /// `running` when the container runs, else `stopped`.
    pub status: RuntimeStatus,
    /// The host the container was listed on (§6); omitted when `""`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_host: String,
}

/// The fields of an [`Action::Rebind`] (R7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rebinding {
    /// The game.
    pub game_id: GameId,
    /// The container now on record.
    pub container_id: String,
    /// Its image.
    pub image_ref: String,
    /// Its engine version (R11), possibly empty.
    pub engine_version: String,
    /// The host the container was listed on (§6); omitted when `""`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_host: String,
}

impl Action {
    /// The game the action changes.
    pub fn game_id(&self) -> GameId {
        match self {
            Self::Adopt(adoption) => adoption.game_id,
            Self::Rebind(rebinding) => rebinding.game_id,
            Self::SetStatus { game_id, .. }
            | Self::SetProbeFailures { game_id, .. }
            | Self::PublishSnapshot { game_id, .. } => *game_id,
        }
    }

    /// The `kind` word, as in JSON, logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Adopt(_) => "adopt",
            Self::Rebind(_) => "rebind",
            Self::SetStatus { .. } => "set_status",
            Self::SetProbeFailures { .. } => "set_probe_failures",
            Self::PublishSnapshot { .. } => "publish_snapshot",
        }
    }

    /// The position of the kind in the order of R13.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Self::Adopt(_) => 0,
            Self::Rebind(_) => 1,
            Self::SetStatus { .. } => 2,
            Self::SetProbeFailures { .. } => 3,
            Self::PublishSnapshot { .. } => 4,
        }
    }

    /// Whether the action writes the game's record (compare-and-set on what the plan saw):
    /// a rebind, a status change or a probe-failure counter.
    pub(crate) fn writes_record(&self) -> bool {
        matches!(
            self,
            Self::Rebind(_) | Self::SetStatus { .. } | Self::SetProbeFailures { .. }
        )
    }

    /// Whether this is a `set_status … to: removed`.
    pub fn is_removal(&self) -> bool {
        matches!(
            self,
            Self::SetStatus {
                to: RuntimeStatus::Removed,
                ..
            }
        )
    }

    /// Every `kind` word, in the order of R13.
    pub const KINDS: [&'static str; 5] = [
        "adopt",
        "rebind",
        "set_status",
        "set_probe_failures",
        "publish_snapshot",
    ];
}

/// Something a pass noticed that needs no action, or that it refused to act on.
///
/// Findings sort by kind, in declaration order, then by their fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Finding {
    /// R2: a managed container whose name is not `<prefix><uuid>`.
    UnrecognizedContainer {
        /// The container.
        container_id: String,
        /// Its name without the leading `/`.
        name: String,
    },
    /// R3: another container for a game that already has one kept.
    DuplicateContainer {
        /// The game.
        game_id: GameId,
        /// The container left aside.
        container_id: String,
        /// The container kept.
        kept_container_id: String,
        /// The host of the container left aside (§6); omitted when `""`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        host: String,
        /// The host of the container kept (§6); omitted when `""`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        kept_host: String,
    },
    /// R5: a container for a game whose record is terminal.
    StaleContainer {
        /// The game.
        game_id: GameId,
        /// The container.
        container_id: String,
        /// The record's terminal status.
        status: RuntimeStatus,
    },
    /// R6: a `starting` record still inside its start grace, without a container yet.
    AwaitingContainer {
        /// The game.
        game_id: GameId,
    },
    /// R10: a container for a game the store does not know.
    OrphanContainer {
        /// The game.
        game_id: GameId,
        /// The container.
        container_id: String,
    },
    /// R10: a container of an unrecorded game whose projection could not be loaded: whether to
    /// adopt it or report an orphan is not decided this pass; nothing is touched.
    AdoptionUndecided {
        /// The game.
        game_id: GameId,
        /// The container.
        container_id: String,
        /// Why the projections could not be loaded.
        error: String,
    },
    /// R11: a managed container whose engine version label is not acceptable.
    InvalidLabel {
        /// The container.
        container_id: String,
        /// The label's key.
        label: String,
    },
    /// R12: too many removals at once on one host; none of them was planned.
    RemovalGuardTripped {
        /// The host (§6); omitted when `""`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        host: String,
        /// How many removals the pass would have made on the host.
        would_remove: u64,
        /// How many non-terminal records the host has.
        live: u64,
    },
    /// R6′: a host that failed to list, or that records name but the observation does not
    /// have; its records without a match are unobserved (no action), not missing.
    HostUnavailable {
        /// The host.
        host: String,
        /// Why it failed to list, or `not configured`.
        error: String,
        /// How many of its records are unobserved (possibly 0).
        records: u64,
    },
}

impl Finding {
    /// The `kind` word, as in JSON, logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnrecognizedContainer { .. } => "unrecognized_container",
            Self::DuplicateContainer { .. } => "duplicate_container",
            Self::StaleContainer { .. } => "stale_container",
            Self::AwaitingContainer { .. } => "awaiting_container",
            Self::OrphanContainer { .. } => "orphan_container",
            Self::AdoptionUndecided { .. } => "adoption_undecided",
            Self::InvalidLabel { .. } => "invalid_label",
            Self::RemovalGuardTripped { .. } => "removal_guard_tripped",
            Self::HostUnavailable { .. } => "host_unavailable",
        }
    }

    /// The position of the kind in [`Finding::KINDS`].
    fn rank(&self) -> usize {
        match self {
            Self::UnrecognizedContainer { .. } => 0,
            Self::DuplicateContainer { .. } => 1,
            Self::StaleContainer { .. } => 2,
            Self::AwaitingContainer { .. } => 3,
            Self::OrphanContainer { .. } => 4,
            Self::AdoptionUndecided { .. } => 5,
            Self::InvalidLabel { .. } => 6,
            Self::RemovalGuardTripped { .. } => 7,
            Self::HostUnavailable { .. } => 8,
        }
    }

    /// Every `kind` word, in sort order.
    pub const KINDS: [&'static str; 9] = [
        "unrecognized_container",
        "duplicate_container",
        "stale_container",
        "awaiting_container",
        "orphan_container",
        "adoption_undecided",
        "invalid_label",
        "removal_guard_tripped",
        "host_unavailable",
    ];
}

/// Counts of a plan, by kind (every kind present, zeros included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Actions by kind.
    pub actions: BTreeMap<String, u64>,
    /// Findings by kind.
    pub findings: BTreeMap<String, u64>,
}

impl Summary {
    fn of(actions: &[Action], findings: &[Finding]) -> Self {
        // Counted by position first: a map update per action would allocate per action.
        let mut by_action = [0u64; Action::KINDS.len()];
        for action in actions {
            by_action[usize::from(action.rank())] += 1;
        }
        let mut by_finding = [0u64; Finding::KINDS.len()];
        for finding in findings {
            by_finding[finding.rank()] += 1;
        }
        Self {
            actions: Action::KINDS
                .iter()
                .zip(by_action)
                .map(|(kind, n)| (kind.to_string(), n))
                .collect(),
            findings: Finding::KINDS
                .iter()
                .zip(by_finding)
                .map(|(kind, n)| (kind.to_string(), n))
                .collect(),
        }
    }
}

/// What one pass will do and what it noticed. `#[must_use]`: a plan does nothing until the
/// executor applies it.
#[must_use = "a plan changes nothing until it is applied"]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The actions, sorted by game id, then kind (R13).
    pub actions: Vec<Action>,
    /// The findings, sorted.
    pub findings: Vec<Finding>,
    /// Counts by kind.
    pub summary: Summary,
}

impl Plan {
    /// Builds a plan from unsorted actions and findings, sorting both (R13).
    pub fn new(mut actions: Vec<Action>, mut findings: Vec<Finding>) -> Self {
        // The planner emits at most one action of each kind per game, so (game, kind) is a total
        // order and an unstable sort gives byte-identical output. The UUID as an integer
        // compares as its bytes do, and much faster.
        sort_actions(&mut actions);
        findings.sort();
        let summary = Summary::of(&actions, &findings);
        Self {
            actions,
            findings,
            summary,
        }
    }

    /// Whether the plan has no action.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Sorts actions by (game, kind), moving each action about once: an action is a couple of
/// hundred bytes, and a sort that moves the actions themselves copied a 100k plan about
/// seventeen times over (a fifth of planning it). The keys are sorted instead, with each
/// action's place, and the actions then follow the permutation's cycles in place, so no second
/// plan-sized buffer is needed either.
fn sort_actions(actions: &mut [Action]) {
    let mut keys: Vec<(u128, u8, u32)> = actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let place = u32::try_from(i).expect("fewer than 2^32 actions");
            (a.game_id().as_uuid().as_u128(), a.rank(), place)
        })
        .collect();
    if keys.is_sorted() {
        return;
    }
    // The keys are distinct, so a stable sort gives the same order; it is used because it
    // finds runs that are already in order and merges them, and the actions come mostly in
    // order: those of the records in the records' order (the SQL store lists them by game id),
    // then the adoptions. An unstable sort sorted them all over again: a fifth of the
    // planner's instructions on a fleet of 100k games.
    keys.sort();
    // from[i]: where the action that belongs at i is now; u32::MAX once i holds it.
    let mut from: Vec<u32> = keys.into_iter().map(|(_, _, place)| place).collect();
    for start in 0..from.len() {
        let mut current = start;
        while from[current] != u32::MAX {
            let next = from[current] as usize;
            from[current] = u32::MAX;
            if next == start {
                break;
            }
            actions.swap(current, next);
            current = next;
        }
    }
}

#[cfg(test)]
mod sort_tests {
    use super::*;

    /// A plan of 100k games is mostly `publish_snapshot`s: an action no larger than a status
    /// change keeps it at 6 MiB rather than the 24 MiB it took when every action was the size
    /// of an adoption's fields.
    #[test]
    fn an_action_is_no_larger_than_a_status_change() {
        let status_change =
            size_of::<GameId>() + size_of::<String>() + 2 * size_of::<RuntimeStatus>();
        assert!(
            size_of::<Action>() <= status_change.next_multiple_of(8),
            "an action takes {} bytes",
            size_of::<Action>()
        );
    }

    #[test]
    fn actions_sort_by_game_then_kind_whatever_their_order() {
        let games: Vec<GameId> = (0..40u128)
            .map(|n| {
                GameId::from_uuid(uuid::Uuid::from_u128(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            })
            .collect();
        let mut actions = Vec::new();
        for (i, &game_id) in games.iter().enumerate() {
            actions.push(Action::SetProbeFailures {
                game_id,
                failures: i as u32,
            });
            if i % 3 == 0 {
                actions.push(Action::PublishSnapshot {
                    game_id,
                    state: std::sync::Arc::new(serde_json::json!({ "turn": i })),
                });
            }
            if i % 4 == 0 {
                actions.push(Action::SetStatus {
                    game_id,
                    from: galaxy_runtime_model::RuntimeStatus::Running,
                    to: galaxy_runtime_model::RuntimeStatus::Removed,
                    message: "gone".to_owned(),
                });
            }
        }
        let mut expected = actions.clone();
        expected.sort_by_key(|a| (a.game_id().as_uuid().as_u128(), a.rank()));
        let mut state = 7u64;
        for _ in 0..50 {
            // A shuffle, then the sort.
            for i in (1..actions.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                actions.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut sorted = actions.clone();
            sort_actions(&mut sorted);
            assert_eq!(sorted, expected);
        }
        sort_actions(&mut expected.clone());
        let mut none: Vec<Action> = Vec::new();
        sort_actions(&mut none);
        assert!(none.is_empty());
    }
}
