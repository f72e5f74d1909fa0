//! Step 3 of a pass (CONTRACT §3): the executor carries out a plan through the ports.
//!
//! Every action is independent: a failure is collected and the next action goes on. Actions
//! are applied by kind in the order of R13 — adoptions, rebinds, status changes (one store call
//! each), then probe-failure counters and snapshots (one batched store call each). Within one
//! game this is the plan's own order, so a rebind always precedes that game's status change.
//!
//! Every record write is compare-and-set on what the plan saw of the record (its status and its
//! container), or on what this pass's own earlier write left: a record that a job changed
//! meanwhile is skipped as a conflict. A write the store refuses as fenced means this replica no
//! longer leads: nothing more is written. A status change the lobby wants to hear of carries
//! its event, which the store records in the same transaction; the executor never calls the
//! lobby itself (the relay does, beside the loop).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use galaxy_runtime_model::{
    Config, ContainerSummary, GameId, JobResult, Op, ProbeOutcome, RuntimeRecord, RuntimeStatus,
    Snapshot, Timestamp,
};
use galaxy_runtime_ports::{
    AdoptInsert, AdoptUpdate, Expected, PortError, ProbeFailuresUpdate, Rebind, StatusChange,
};
use log::{debug, info, warn};

use crate::context::{PlanBasis, Ports};
use crate::report::{ActionFailure, PassReport};
use crate::telemetry;
use crate::{Action, Adoption, Plan, Rebinding};

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
    config: &Config,
    basis: PlanBasis<'_>,
    plan: &Plan,
    report: &mut PassReport,
) -> Applied {
    let mut executor = Executor {
        ports,
        config,
        basis,
        current: expectations(basis.records, plan),
        at: (ports.clock)(),
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
        if let Err(reason) = executor.still_leader().await {
            executor.applied.leadership_lost = Some(reason);
        }
        if executor.applied.leadership_lost.is_none() {
            match group[0] {
                Action::Adopt(_) | Action::Rebind(_) | Action::SetStatus { .. } => {
                    for action in group {
                        executor.write_one(action).await;
                        attempted += 1;
                        if executor.applied.leadership_lost.is_some() {
                            break;
                        }
                    }
                }
                Action::SetProbeFailures { .. } => {
                    executor.probe_failures(group).await;
                    attempted += group.len() as u64;
                }
                Action::PublishSnapshot { .. } => {
                    executor.snapshots(group).await;
                    attempted += group.len() as u64;
                }
            }
        }
        if executor.applied.leadership_lost.is_some() {
            executor.report.not_applied = total - attempted;
            break;
        }
    }
    executor.applied
}

/// What the plan's record writes expect, by game: the records of the games with a rebind, a
/// status change or a probe-failure counter, as the plan saw them. Only those: a pass at rest
/// writes no record, and copying every record's ids into a map was a tenth of a quick pass of
/// 100k games that changed nothing. `records` are what [`PlanBasis::records`] holds: after the
/// planner, only the records of the games it writes, so that this reads no other.
fn expectations(records: &[Arc<RuntimeRecord>], plan: &Plan) -> HashMap<GameId, Expected> {
    let written: HashSet<GameId> = plan
        .actions
        .iter()
        .filter(|a| a.writes_record())
        .map(Action::game_id)
        .collect();
    if written.is_empty() {
        return HashMap::new();
    }
    records
        .iter()
        .filter(|r| written.contains(&r.game_id))
        .map(|r| (r.game_id, Expected::of(r)))
        .collect()
}

struct Executor<'a, 'r> {
    ports: &'a Ports,
    config: &'a Config,
    basis: PlanBasis<'a>,
    /// What each game's record holds as far as this pass knows: what the plan saw, then what
    /// this pass's own writes left. The next write of the game expects exactly that.
    current: HashMap<GameId, Expected>,
    /// The time written as `status_changed_at` of the changes this pass makes.
    at: Timestamp,
    /// Games whose record changed under this pass (a conflict): their remaining record writes
    /// are skipped, since the plan no longer fits them. The next pass decides again.
    changed_meanwhile: HashSet<GameId>,
    report: &'r mut PassReport,
    applied: Applied,
}

impl Executor<'_, '_> {
    /// Before each group of actions: a replica that lost the lock stops writing at once (a
    /// fenced store also refuses the writes themselves). A lock that cannot be checked counts
    /// as lost (never write on doubt).
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

    /// A port error of one action: a conflict is counted, a fenced write ends the pass's
    /// writing, anything else is a failure.
    fn refused(&mut self, game_id: GameId, action: &'static str, error: PortError) {
        if error.is_conflict() {
            let detail = match &error {
                PortError::Conflict { message, .. } => message.clone(),
                other => other.to_string(),
            };
            self.conflict(game_id, action, &detail);
        } else if error.is_fenced() {
            warn!("{action} of game {game_id} refused: {error}");
            self.applied.leadership_lost = Some(error.to_string());
        } else {
            self.fail(game_id, action, error);
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
        self.current.insert(record.game_id, Expected::of(&record));
        self.ports.cache.put_runtime(record.clone());
        record
    }

    /// What the next write of `game_id` expects, or why there is none.
    fn expected(&mut self, game_id: GameId, action: &'static str) -> Option<Expected> {
        if self.changed_meanwhile.contains(&game_id) {
            self.conflict(
                game_id,
                action,
                "an earlier write of this pass found it changed",
            );
            return None;
        }
        let expected = self.current.get(&game_id).cloned();
        if expected.is_none() {
            self.fail(game_id, action, no_record(game_id));
        }
        expected
    }

    /// One adoption, rebind or status change: one store call (plus an inspect before a
    /// removal, and the lobby, cache and scheduler after).
    async fn write_one(&mut self, action: &Action) {
        match action {
            Action::Adopt(adoption) => {
                let Adoption {
                    game_id,
                    container_id,
                    image_ref,
                    engine_version,
                    endpoint,
                    docker_network,
                    turn_schedule,
                    status,
                    docker_host,
                } = &**adoption;
                self.adopt(
                    *game_id,
                    RuntimeRecord {
                        game_id: *game_id,
                        status: *status,
                        current_container_id: container_id.clone(),
                        current_image_ref: image_ref.clone(),
                        current_engine_version: engine_version.clone(),
                        engine_endpoint: endpoint.clone(),
                        docker_network: docker_network.clone(),
                        turn_schedule: turn_schedule.clone(),
                        probe_failures: 0,
                        status_changed_at: self.at,
                        docker_host: docker_host.clone(),
                    },
                )
                .await
            }
            Action::Rebind(rebinding) => {
                let Rebinding {
                    game_id,
                    container_id,
                    image_ref,
                    engine_version,
                    docker_host,
                } = &**rebinding;
                let Some(expected) = self.expected(*game_id, action.kind()) else {
                    return;
                };
                let from = expected.current_container_id.clone();
                let rebind = Rebind {
                    game_id: *game_id,
                    expected,
                    container_id: container_id.clone(),
                    image_ref: image_ref.clone(),
                    engine_version: engine_version.clone(),
                    docker_host: docker_host.clone(),
                };
                match self.ports.store.rebind(rebind).await {
                    Ok(record) => {
                        self.stored(action.kind(), record);
                        info!(
                            "rebind game_id={game_id} from_container_id={from:?} \
                             container_id={container_id:?} message=\"the record follows the \
                             container that runs the game\""
                        );
                    }
                    Err(e) => self.refused(*game_id, action.kind(), e),
                }
            }
            Action::SetStatus {
                game_id,
                to,
                message,
                ..
            } => {
                let Some(expected) = self.expected(*game_id, action.kind()) else {
                    return;
                };
                if *to == RuntimeStatus::Removed
                    && !self
                        .confirm_gone(
                            *game_id,
                            &expected.docker_host,
                            &expected.current_container_id,
                        )
                        .await
                {
                    self.report.skipped_removals += 1;
                    return;
                }
                let from = expected.status;
                let change = StatusChange {
                    game_id: *game_id,
                    expected,
                    to: *to,
                    message: message.clone(),
                    at: self.at,
                    event: self.event_of(*to, message),
                };
                let told = change.event.is_some();
                match self.ports.store.transition_status(change).await {
                    Ok(stored) => {
                        self.stored(action.kind(), stored);
                        info!(
                            "set_status game_id={game_id} from={from} to={to} message={message:?}"
                        );
                        if told {
                            // Recorded with the change; the relay delivers it, beside the loop.
                            self.report.events += 1;
                            if let Some(lobby) = &self.ports.lobby {
                                lobby.wake.notify_one();
                            }
                        }
                    }
                    Err(e) => self.refused(*game_id, action.kind(), e),
                }
            }
            Action::SetProbeFailures { .. } | Action::PublishSnapshot { .. } => {
                unreachable!("batched kinds are applied by `probe_failures` and `snapshots`")
            }
        }
    }

    /// R10: the game had no record when the plan was made; a record that appeared since (a
    /// start job's) is a conflict and stays as it is.
    async fn adopt(&mut self, game_id: GameId, record: RuntimeRecord) {
        const KIND: &str = "adopt";
        let update = AdoptUpdate {
            expected: None,
            status: record.status,
            current_container_id: record.current_container_id.clone(),
            current_image_ref: record.current_image_ref.clone(),
            current_engine_version: record.current_engine_version.clone(),
            engine_endpoint: record.engine_endpoint.clone(),
            docker_host: record.docker_host.clone(),
        };
        let wanted = record.clone();
        let answer = self
            .ports
            .store
            .upsert_adopted(AdoptInsert { record }, update)
            .await;
        let answer = match answer {
            // The answer may have been lost after the adoption committed (a timeout, a
            // connection gone): then no later pass adopts again, and a running game would never
            // reach the scheduler. Reading the row tells whether this adoption is what is
            // stored now.
            Err(e) if e.is_retryable() => match self.ports.store.get_record(game_id).await {
                Ok(Some(row)) if is_our_adoption(&row, &wanted) => {
                    debug!("adopt of game {game_id}: the answer was lost, the adoption committed");
                    Ok(row)
                }
                _ => Err(e),
            },
            other => other,
        };
        match answer {
            Ok(record) => {
                let record = self.stored(KIND, record);
                info!(
                    "adopt game_id={game_id} container_id={:?} image_ref={:?} status={} \
                     message=\"container without a runtime record\"",
                    record.current_container_id, record.current_image_ref, record.status
                );
                if record.status == RuntimeStatus::Running {
                    self.ports.scheduler.start_game(&record);
                }
            }
            Err(e) => self.refused(game_id, KIND, e),
        }
    }

    /// Before a removal: the list may have missed a container that still exists (a daemon
    /// hiccup, a listing cut short). Only a `NotFound` from inspecting the recorded container,
    /// or an answer describing another container (Docker also resolves names and id prefixes),
    /// lets the removal go ahead; anything else skips it — never remove on doubt.
    ///
    /// The inspect goes to the record's host (CONTRACT §6): the same id on another host is
    /// another container. A record on a host the reconciler does not have is never removed
    /// (the planner leaves such records unobserved anyway).
    async fn confirm_gone(&self, game_id: GameId, host: &str, container_id: &str) -> bool {
        if container_id.is_empty() {
            return true;
        }
        let Some(docker) = self.ports.docker_of(host) else {
            warn!(
                "not removing game {game_id}: its record is on Docker host {host:?}, which this \
                 reconciler does not have"
            );
            return false;
        };
        match docker.inspect(container_id).await {
            Err(e) if e.is_not_found() => true,
            Ok(answer) if !is_same_container(&answer, container_id) => {
                debug!(
                    "inspect of {container_id:?} for game {game_id} answered with another \
                     container ({:?}): the recorded one is gone",
                    answer.id
                );
                true
            }
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

    /// The lobby event of a change to `to`, when there is a lobby and it wants to hear of `to`
    /// (`lobby_statuses`): the pass's job result, written with the change.
    fn event_of(&self, to: RuntimeStatus, message: &str) -> Option<JobResult> {
        (self.ports.lobby.is_some() && self.config.lobby_statuses.contains(&to)).then(|| {
            JobResult {
                op: Op::Reconcile,
                status: to,
                message: message.to_owned(),
            }
        })
    }

    /// Every probe-failure counter of the plan, in one batched store call.
    async fn probe_failures(&mut self, actions: &[&Action]) {
        const KIND: &str = "set_probe_failures";
        let mut updates = Vec::with_capacity(actions.len());
        for action in actions {
            let Action::SetProbeFailures { game_id, failures } = action else {
                continue;
            };
            if let Some(expected) = self.expected(*game_id, KIND) {
                updates.push(ProbeFailuresUpdate {
                    game_id: *game_id,
                    expected,
                    failures: *failures,
                });
            }
        }
        if updates.is_empty() {
            return;
        }
        match self.ports.store.set_probe_failures(&updates).await {
            Ok(rows) => {
                let updated: HashSet<GameId> = rows.iter().map(|r| r.game_id).collect();
                for record in rows {
                    self.stored(KIND, record);
                }
                for update in &updates {
                    let game_id = update.game_id;
                    if updated.contains(&game_id) {
                        let reason = match self.basis.probes.get(&game_id) {
                            Some(ProbeOutcome::Error(reason)) => format!("{reason:?}"),
                            Some(ProbeOutcome::Ok(_)) => "\"engine answered\"".to_owned(),
                            None => "\"container not probed\"".to_owned(),
                        };
                        info!(
                            "set_probe_failures game_id={game_id} failures={} message={reason}",
                            update.failures
                        );
                    } else {
                        self.conflict(game_id, KIND, "status or container no longer as seen");
                    }
                }
            }
            Err(e) => self.batch_failed(KIND, updates.iter().map(|u| u.game_id), e),
        }
    }

    /// Every snapshot of the plan, in one batched store call.
    async fn snapshots(&mut self, actions: &[&Action]) {
        const KIND: &str = "publish_snapshot";
        let snapshots: Vec<Snapshot> = actions
            .iter()
            .filter_map(|action| match action {
                Action::PublishSnapshot { game_id, state } => Some(Snapshot {
                    game_id: *game_id,
                    state: Arc::clone(state),
                    observed_at: self.basis.now,
                }),
                _ => None,
            })
            .collect();
        match self.ports.store.publish_snapshots(&snapshots).await {
            Ok(()) => {
                self.report.count_applied(KIND, snapshots.len() as u64);
                debug!("published {} engine snapshots", snapshots.len());
            }
            // One row the store refuses fails the whole batch: each snapshot is tried alone,
            // so that it fails alone. Not when the store is unreachable or the lock is lost,
            // where every row would fail the same way.
            Err(e) if snapshots.len() > 1 && !e.is_fenced() && !is_connection_failure(&e) => {
                warn!(
                    "batched {KIND} of {} snapshots failed ({e}); publishing them one by one",
                    snapshots.len()
                );
                let mut published = 0;
                for snapshot in &snapshots {
                    match self
                        .ports
                        .store
                        .publish_snapshots(std::slice::from_ref(snapshot))
                        .await
                    {
                        Ok(()) => published += 1,
                        Err(e) if e.is_fenced() => {
                            self.batch_failed(KIND, std::iter::once(snapshot.game_id), e);
                            break;
                        }
                        Err(e) => self.fail(snapshot.game_id, KIND, e),
                    }
                }
                self.report.count_applied(KIND, published);
            }
            Err(e) => self.batch_failed(KIND, snapshots.iter().map(|s| s.game_id), e),
        }
    }

    /// A failed batch fails each of its actions; each failure keeps the batch's error as its
    /// source. A fenced batch ends the pass's writing instead.
    fn batch_failed(
        &mut self,
        kind: &'static str,
        games: impl Iterator<Item = GameId>,
        error: PortError,
    ) {
        if error.is_fenced() {
            warn!("batched {kind} refused: {error}");
            self.applied.leadership_lost = Some(error.to_string());
            return;
        }
        let shared = Arc::new(error);
        for game_id in games {
            self.fail(
                game_id,
                kind,
                PortError::shared(&shared, &format!("batched {kind}")),
            );
        }
    }
}

/// Whether `error` says the store could not be reached (rather than refusing one call).
fn is_connection_failure(error: &PortError) -> bool {
    matches!(
        error,
        PortError::Unavailable { .. } | PortError::Timeout { .. }
    )
}

/// Whether `answer` (Docker's answer to inspecting `recorded`) describes the recorded
/// container: the same id, or one that extends it (a record holding Docker's short form).
/// Docker resolves an inspect by id, then by name, then by id prefix, so a container *named*
/// like the recorded id answers too, and it is not the recorded container.
fn is_same_container(answer: &ContainerSummary, recorded: &str) -> bool {
    answer.id == recorded || answer.id.starts_with(recorded)
}

/// Whether `row` holds what an adoption of `wanted` writes: its status on its container (a
/// container id names one container for ever, so whoever wrote it, the game runs there).
fn is_our_adoption(row: &RuntimeRecord, wanted: &RuntimeRecord) -> bool {
    row.status == wanted.status
        && row.current_container_id == wanted.current_container_id
        && row.docker_host == wanted.docker_host
}

fn no_record(game_id: GameId) -> PortError {
    PortError::invalid(format!(
        "the plan acts on game {game_id}, which has no record in the observation"
    ))
}
