//! Step 3 of a pass (CONTRACT §3): the executor carries out a plan through the ports.
//!
//! Every action is independent: a failure is collected and the next action goes on. Actions
//! are applied by kind in the order of R13 — adoptions, rebinds, status changes (one store call
//! each), then probe-failure counters and snapshots (batched store calls). Within one game this
//! is the plan's own order, so a rebind always precedes that game's status change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use galaxy_runtime_model::{
    GameId, JobResult, ProbeOutcome, RuntimeRecord, RuntimeStatus, Snapshot, Timestamp,
};
use galaxy_runtime_ports::{
    AdoptInsert, AdoptUpdate, PortError, ProbeFailuresUpdate, Rebind, StatusChange,
};
use log::{debug, info, warn};

use crate::reconciler::Ports;
use crate::report::{ActionFailure, PassReport};
use crate::telemetry;
use crate::{Action, Plan};

/// Rows per batched store call (probe-failure counters, snapshots): small enough for one
/// statement of any SQL store, large enough that 10k games take 20 calls.
pub const BATCH_SIZE: usize = 500;

/// What the plan was made from, as far as applying needs it.
#[derive(Clone, Copy)]
pub(crate) struct Seen<'a> {
    /// The time of the observation (snapshots are stamped with it).
    pub now: Timestamp,
    /// The records the plan saw.
    pub records: &'a [RuntimeRecord],
    /// The probe outcomes the plan saw (for log lines).
    pub probes: &'a BTreeMap<GameId, ProbeOutcome>,
}

/// How applying ended.
#[derive(Default)]
pub(crate) struct Applied {
    /// Every failed action, in the order they were tried.
    pub failures: Vec<ActionFailure>,
    /// Set when leadership was lost: the rest of the plan was not applied.
    pub leadership_lost: Option<String>,
}

/// Applies `plan`, counting into `report`.
pub(crate) async fn apply(
    ports: &Ports,
    seen: Seen<'_>,
    plan: &Plan,
    report: &mut PassReport,
) -> Applied {
    let mut executor = Executor {
        ports,
        seen,
        records: seen.records.iter().map(|r| (r.game_id, r)).collect(),
        at: (ports.clock)(),
        status_after: HashMap::new(),
        changed_meanwhile: HashSet::new(),
        report,
        applied: Applied::default(),
    };

    let mut groups: [Vec<&Action>; 5] = Default::default();
    for action in &plan.actions {
        groups[usize::from(action.rank())].push(action);
    }
    let total = plan.actions.len() as u64;
    let mut attempted = 0u64;
    for group in &groups {
        if group.is_empty() {
            continue;
        }
        match group[0] {
            Action::Adopt { .. } | Action::Rebind { .. } | Action::SetStatus { .. } => {
                if let Err(reason) = executor.still_leader().await {
                    executor.report.not_applied = total - attempted;
                    executor.applied.leadership_lost = Some(reason);
                    break;
                }
                for action in group {
                    executor.row(action).await;
                    attempted += 1;
                }
            }
            Action::SetProbeFailures { .. } | Action::PublishSnapshot { .. } => {
                let mut lost = false;
                for chunk in group.chunks(BATCH_SIZE) {
                    if let Err(reason) = executor.still_leader().await {
                        executor.report.not_applied = total - attempted;
                        executor.applied.leadership_lost = Some(reason);
                        lost = true;
                        break;
                    }
                    executor.batch(chunk).await;
                    attempted += chunk.len() as u64;
                }
                if lost {
                    break;
                }
            }
        }
    }
    executor.applied
}

struct Executor<'a, 'r> {
    ports: &'a Ports,
    seen: Seen<'a>,
    records: HashMap<GameId, &'a RuntimeRecord>,
    /// The time written as `status_changed_at` of the changes this pass makes.
    at: Timestamp,
    /// The status each game's record has after this pass's own writes.
    status_after: HashMap<GameId, RuntimeStatus>,
    /// Games whose record changed under this pass (a conflict): their remaining record writes
    /// are skipped, since the plan no longer fits them. The next pass decides again.
    changed_meanwhile: HashSet<GameId>,
    report: &'r mut PassReport,
    applied: Applied,
}

impl Executor<'_, '_> {
    /// Before each group of actions: a replica that lost the lock must stop writing at once.
    /// A lock that cannot be checked counts as lost (never write on doubt).
    async fn still_leader(&self) -> Result<(), String> {
        let Some(leader) = &self.ports.leader else {
            return Ok(());
        };
        match leader.is_held().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the leader lock is no longer held".to_owned()),
            Err(e) => Err(format!("the leader lock cannot be confirmed: {e}")),
        }
    }

    fn fail(&mut self, game_id: GameId, action: &'static str, error: PortError) {
        warn!("{action} of game {game_id} failed: {error}");
        telemetry::failure(action);
        self.report.failures += 1;
        self.applied.failures.push(ActionFailure {
            game_id,
            action,
            error,
        });
    }

    fn conflict(&mut self, game_id: GameId, action: &'static str, detail: &str) {
        info!("{action} of game {game_id} skipped: the record changed meanwhile ({detail})");
        self.report.conflicts += 1;
        self.changed_meanwhile.insert(game_id);
    }

    fn stored(&mut self, action: &'static str, record: RuntimeRecord) -> RuntimeRecord {
        self.report.count_applied(action, 1);
        self.status_after.insert(record.game_id, record.status);
        self.ports.cache.put_runtime(record.clone());
        record
    }

    /// One adoption, rebind or status change: one store call (plus an inspect before a
    /// removal, and the lobby, cache and scheduler after).
    async fn row(&mut self, action: &Action) {
        let game_id = action.game_id();
        let kind = action.kind();
        if self.changed_meanwhile.contains(&game_id) {
            self.conflict(
                game_id,
                kind,
                "an earlier write of this pass found it changed",
            );
            return;
        }
        match action {
            Action::Adopt {
                container_id,
                image_ref,
                engine_version,
                endpoint,
                docker_network,
                turn_schedule,
                status,
                ..
            } => {
                let insert = AdoptInsert {
                    record: RuntimeRecord {
                        game_id,
                        status: *status,
                        current_container_id: container_id.clone(),
                        current_image_ref: image_ref.clone(),
                        current_engine_version: engine_version.clone(),
                        engine_endpoint: endpoint.clone(),
                        docker_network: docker_network.clone(),
                        turn_schedule: turn_schedule.clone(),
                        probe_failures: 0,
                        status_changed_at: self.at,
                    },
                };
                let update = AdoptUpdate {
                    status: *status,
                    current_container_id: container_id.clone(),
                    current_image_ref: image_ref.clone(),
                    current_engine_version: engine_version.clone(),
                    engine_endpoint: endpoint.clone(),
                };
                match self.ports.store.upsert_adopted(insert, update).await {
                    Ok(record) => {
                        let record = self.stored(kind, record);
                        info!(
                            "adopt game_id={game_id} container_id={container_id:?} image_ref={image_ref:?} \
                             status={} reason=\"container without a runtime record\"",
                            record.status
                        );
                        if record.status == RuntimeStatus::Running {
                            self.ports.scheduler.start_game(&record);
                        }
                    }
                    Err(e) if e.is_conflict() => self.conflict(game_id, kind, &e.to_string()),
                    Err(e) => self.fail(game_id, kind, e),
                }
            }
            Action::Rebind {
                container_id,
                image_ref,
                engine_version,
                ..
            } => {
                let Some(expected) = self
                    .records
                    .get(&game_id)
                    .map(|r| r.current_container_id.clone())
                else {
                    self.fail(game_id, kind, no_record(game_id));
                    return;
                };
                let rebind = Rebind {
                    game_id,
                    expected_container_id: expected.clone(),
                    container_id: container_id.clone(),
                    image_ref: image_ref.clone(),
                    engine_version: engine_version.clone(),
                };
                match self.ports.store.rebind(rebind).await {
                    Ok(record) => {
                        self.stored(kind, record);
                        info!(
                            "rebind game_id={game_id} from_container_id={expected:?} \
                             container_id={container_id:?} reason=\"the record follows the \
                             container that runs the game\""
                        );
                    }
                    Err(e) if e.is_conflict() => self.conflict(game_id, kind, &e.to_string()),
                    Err(e) => self.fail(game_id, kind, e),
                }
            }
            Action::SetStatus {
                from, to, message, ..
            } => {
                let Some(record) = self.records.get(&game_id).copied() else {
                    self.fail(game_id, kind, no_record(game_id));
                    return;
                };
                if *to == RuntimeStatus::Removed && !self.confirm_gone(record).await {
                    self.report.skipped_removals += 1;
                    return;
                }
                let change = StatusChange {
                    game_id,
                    from: *from,
                    to: *to,
                    message: message.clone(),
                    at: self.at,
                };
                match self.ports.store.transition_status(change).await {
                    Ok(stored) => {
                        self.stored(kind, stored);
                        info!(
                            "set_status game_id={game_id} from={from} to={to} reason={message:?}"
                        );
                        if *to == RuntimeStatus::Removed {
                            self.tell_lobby(game_id).await;
                        }
                    }
                    Err(e) if e.is_conflict() => self.conflict(game_id, kind, &e.to_string()),
                    Err(e) => self.fail(game_id, kind, e),
                }
            }
            Action::SetProbeFailures { .. } | Action::PublishSnapshot { .. } => {
                // Batched kinds never reach here; `apply` routes them to `batch`.
                self.batch(&[action]).await;
            }
        }
    }

    /// Before a removal: the list may have missed a container that still exists (a daemon
    /// hiccup, a listing cut short). Only a `NotFound` from inspecting the recorded container
    /// lets the removal go ahead; anything else skips it — never remove on doubt.
    async fn confirm_gone(&self, record: &RuntimeRecord) -> bool {
        let game_id = record.game_id;
        let container_id = &record.current_container_id;
        if container_id.is_empty() {
            return true;
        }
        match self.ports.docker.inspect(container_id).await {
            Err(e) if e.is_not_found() => true,
            Ok(container) => {
                warn!(
                    "not removing game {game_id}: its container {container_id:?} still exists \
                     (state {}) though the listing missed it",
                    container.state
                );
                false
            }
            Err(e) => {
                warn!(
                    "not removing game {game_id}: cannot confirm that its container \
                     {container_id:?} is gone: {e}"
                );
                false
            }
        }
    }

    /// After a removal commits. The removal stands whatever the lobby answers; the lobby may
    /// hear it again from a later job (at-least-once).
    async fn tell_lobby(&mut self, game_id: GameId) {
        let Some(lobby) = &self.ports.lobby else {
            return;
        };
        if let Err(e) = lobby
            .on_runtime_job_result(game_id, JobResult::container_disappeared())
            .await
        {
            warn!("lobby on_runtime_job_result failed for game {game_id}: {e}");
            self.report.lobby_failures += 1;
        }
    }

    /// One batched store call for probe-failure counters or snapshots (all of one kind).
    async fn batch(&mut self, actions: &[&Action]) {
        let mut updates = Vec::new();
        let mut snapshots = Vec::new();
        for action in actions {
            match action {
                Action::SetProbeFailures { game_id, failures } => {
                    if self.changed_meanwhile.contains(game_id) {
                        self.conflict(
                            *game_id,
                            action.kind(),
                            "an earlier write of this pass found it changed",
                        );
                        continue;
                    }
                    let Some(expected_status) = self
                        .status_after
                        .get(game_id)
                        .copied()
                        .or_else(|| self.records.get(game_id).map(|r| r.status))
                    else {
                        self.fail(*game_id, action.kind(), no_record(*game_id));
                        continue;
                    };
                    updates.push(ProbeFailuresUpdate {
                        game_id: *game_id,
                        expected_status,
                        failures: *failures,
                    });
                }
                Action::PublishSnapshot { game_id, state } => snapshots.push(Snapshot {
                    game_id: *game_id,
                    state: serde_json::Value::clone(state),
                    observed_at: self.seen.now,
                }),
                _ => {}
            }
        }
        if !updates.is_empty() {
            self.probe_failures(&updates).await;
        }
        if !snapshots.is_empty() {
            self.snapshots(&snapshots).await;
        }
    }

    async fn probe_failures(&mut self, updates: &[ProbeFailuresUpdate]) {
        const KIND: &str = "set_probe_failures";
        match self.ports.store.set_probe_failures(updates).await {
            Ok(rows) => {
                let updated: HashSet<GameId> = rows.iter().map(|r| r.game_id).collect();
                for record in rows {
                    self.stored(KIND, record);
                }
                for update in updates {
                    let game_id = update.game_id;
                    if updated.contains(&game_id) {
                        let reason = match self.seen.probes.get(&game_id) {
                            Some(ProbeOutcome::Error(reason)) => format!("{reason:?}"),
                            Some(ProbeOutcome::Ok(_)) => "\"engine answered\"".to_owned(),
                            None => "\"container not probed\"".to_owned(),
                        };
                        info!(
                            "set_probe_failures game_id={game_id} failures={} reason={reason}",
                            update.failures
                        );
                    } else {
                        self.conflict(game_id, KIND, "status is no longer the expected one");
                    }
                }
            }
            Err(e) => self.batch_failed(KIND, updates.iter().map(|u| u.game_id), e),
        }
    }

    async fn snapshots(&mut self, snapshots: &[Snapshot]) {
        const KIND: &str = "publish_snapshot";
        match self.ports.store.publish_snapshots(snapshots).await {
            Ok(()) => {
                self.report.count_applied(KIND, snapshots.len() as u64);
                debug!("published {} engine snapshots", snapshots.len());
            }
            Err(e) => self.batch_failed(KIND, snapshots.iter().map(|s| s.game_id), e),
        }
    }

    /// A failed batch fails each of its actions; each failure keeps the batch's error as its
    /// source.
    fn batch_failed(
        &mut self,
        kind: &'static str,
        games: impl Iterator<Item = GameId>,
        error: PortError,
    ) {
        let shared = Arc::new(error);
        for game_id in games {
            self.fail(game_id, kind, share(&shared, &format!("batched {kind}")));
        }
    }
}

fn no_record(game_id: GameId) -> PortError {
    PortError::invalid(format!(
        "the plan acts on game {game_id}, which has no record in the observation"
    ))
}

/// One error for each of several actions that a single call failed, with the same meaning and
/// the original as its source.
pub(crate) fn share(error: &Arc<PortError>, operation: &str) -> PortError {
    let source = Arc::clone(error);
    match &**error {
        PortError::NotFound { what } => PortError::not_found(what.clone()),
        PortError::Conflict { message } => PortError::conflict(message.clone()),
        PortError::Timeout { operation, after } => PortError::timeout(operation.clone(), *after),
        PortError::Invalid { message } => PortError::invalid(message.clone()),
        PortError::Unavailable { .. } => {
            PortError::unavailable(format!("{operation}: {error}"), source)
        }
        _ => PortError::other(format!("{operation}: {error}"), source),
    }
}
