//! Gated ports: every port call a replica makes waits at a gate until the simulation decides
//! what becomes of it — answered, failed, answered with its answer lost, listed partly — so
//! that the simulation, not the runtime's scheduler, chooses the order of everything, and a
//! replica can be cut (crashed) between any two of its calls.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use galaxy_runtime_memory::{MemoryDocker, MemoryLeaderLock, MemoryLobby, MemoryStore};
use galaxy_runtime_model::{
    ContainerState, ContainerSummary, EventId, GameId, GameProjection, LobbyEvent, OutboxEntry,
    RuntimeRecord, Snapshot, Timestamp,
};
use galaxy_runtime_ports::{
    AdoptInsert, AdoptUpdate, DeliveryOutcome, DockerPort, EnginePort, EventFilter, Expected,
    LabelFilter, LeaderLock, LobbyPort, OutboxPort, OutboxStats, PortError, PortResult,
    ProbeFailuresUpdate, Rebind, StatusChange, StorePort,
};

/// Locks a mutex, going on with the data after a panic elsewhere (the run has failed anyway).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What becomes of a call waiting at the gate.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The call goes through to the adapter.
    Go,
    /// The call fails with this error and changes nothing.
    Fail(PortError),
    /// The call goes through, then its caller gets a timeout: a write that committed and whose
    /// answer was lost.
    LoseAnswer,
    /// A Docker listing answers with only the containers whose id hashes with this salt to an
    /// even number (a listing cut short); salt 0 lists nothing.
    ListPart(u64),
}

/// A call waiting at the gate: who makes it, to which port, on what.
pub(crate) type CallKey = (String, u64);

#[derive(Default)]
struct GateState {
    next: u64,
    /// Calls waiting, with the verdict once decided.
    waiting: BTreeMap<CallKey, Waiting>,
    /// Bumped whenever a call arrives or leaves: the simulation runs its futures until this
    /// stands still.
    progress: u64,
}

/// A call at the gate: its verdict once decided, and who to wake then (a probe inside a
/// `FuturesUnordered` is polled again only once woken).
#[derive(Default)]
struct Waiting {
    verdict: Option<Verdict>,
    waker: Option<Waker>,
}

/// The gate all replicas' calls wait at.
#[derive(Clone, Default)]
pub(crate) struct Gate(Arc<Mutex<GateState>>);

/// Takes a waiting call off the gate when its future is dropped (a replica that crashed).
struct Leave {
    gate: Gate,
    key: CallKey,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut state = lock(&self.gate.0);
        if state.waiting.remove(&self.key).is_some() {
            state.progress += 1;
        }
    }
}

impl Gate {
    /// Waits until the simulation decides the call `label`.
    pub(crate) async fn enter(&self, label: String) -> Verdict {
        let key = {
            let mut state = lock(&self.0);
            state.next += 1;
            state.progress += 1;
            let key = (label, state.next);
            state.waiting.insert(key.clone(), Waiting::default());
            key
        };
        let leave = Leave {
            gate: self.clone(),
            key,
        };
        poll_fn(|cx| {
            let mut state = lock(&self.0);
            let Some(waiting) = state.waiting.get_mut(&leave.key) else {
                unreachable!("a call leaves the gate only with its verdict or when dropped");
            };
            match waiting.verdict.take() {
                Some(verdict) => {
                    state.waiting.remove(&leave.key);
                    state.progress += 1;
                    Poll::Ready(verdict)
                }
                None => {
                    waiting.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The calls waiting for a verdict, in a fixed order.
    pub(crate) fn undecided(&self) -> Vec<CallKey> {
        lock(&self.0)
            .waiting
            .iter()
            .filter(|(_, waiting)| waiting.verdict.is_none())
            .map(|(key, _)| key.clone())
            .collect()
    }

    pub(crate) fn decide(&self, key: &CallKey, verdict: Verdict) {
        let waker = lock(&self.0).waiting.get_mut(key).and_then(|waiting| {
            waiting.verdict = Some(verdict);
            waiting.waker.take()
        });
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub(crate) fn progress(&self) -> u64 {
        lock(&self.0).progress
    }
}

/// A flaw the replicas' ports can be given, to show that the simulation catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flaw {
    /// Compare-and-set on the status alone: status changes and probe counters ignore the
    /// container the caller saw (the bug of issue 9).
    StatusOnlyCompare,
    /// Writes are not fenced by the leader lock: a replica that lost it still commits.
    NoFence,
    /// A Docker host that is down answers as an empty daemon would — no containers listed,
    /// every inspect "no such container" — instead of an error (the socket outage that doubled
    /// Nomad's fleets): only with several hosts.
    DownHostListsEmpty,
}

impl Flaw {
    /// The flag's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::StatusOnlyCompare => "status-only-compare",
            Self::NoFence => "no-fence",
            Self::DownHostListsEmpty => "down-host-lists-empty",
        }
    }

    /// The flaw a word names.
    pub fn parse(word: &str) -> Option<Self> {
        [
            Self::StatusOnlyCompare,
            Self::NoFence,
            Self::DownHostListsEmpty,
        ]
        .into_iter()
        .find(|flaw| flaw.name() == word)
    }
}

/// Who calls: replica and incarnation, for the gate's labels.
#[derive(Clone)]
pub(crate) struct Caller {
    pub gate: Gate,
    pub who: String,
}

impl Caller {
    async fn call<T, F>(&self, what: String, call: F) -> PortResult<T>
    where
        F: Future<Output = PortResult<T>>,
    {
        match self.gate.enter(format!("{} {what}", self.who)).await {
            Verdict::Go | Verdict::ListPart(_) => call.await,
            Verdict::Fail(error) => Err(error),
            Verdict::LoseAnswer => {
                let _ = call.await;
                Err(PortError::timeout(
                    format!("{what} (the answer was lost after the call went through)"),
                    Duration::from_secs(5),
                ))
            }
        }
    }
}

/// Docker through the gate.
pub(crate) struct GatedDocker {
    pub caller: Caller,
    pub docker: Arc<MemoryDocker>,
    /// The host's name (`""`: the one unnamed host), at the end of the gate's labels.
    pub host: String,
}

impl GatedDocker {
    /// ` @h1` for host `h1`; nothing for the unnamed host, so single-host labels stay as
    /// they were.
    fn at(&self) -> String {
        if self.host.is_empty() {
            String::new()
        } else {
            format!(" @{}", self.host)
        }
    }
}

/// The host a Docker call's label names (` @h1` at its end), if any.
pub(crate) fn host_in_label(label: &str) -> Option<&str> {
    label.rsplit_once(" @").map(|(_, host)| host)
}

/// Whether a container is kept in a listing cut short with `salt`.
fn kept_in_part(id: &str, salt: u64) -> bool {
    let mut hash = salt;
    for byte in id.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    salt != 0 && hash.is_multiple_of(2)
}

#[async_trait]
impl DockerPort for GatedDocker {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        let label = format!("{} docker.list_managed{}", self.caller.who, self.at());
        match self.caller.gate.enter(label).await {
            Verdict::Go | Verdict::LoseAnswer => self.docker.list_managed(filter).await,
            Verdict::Fail(error) => Err(error),
            Verdict::ListPart(salt) => Ok(self
                .docker
                .list_managed(filter)
                .await?
                .into_iter()
                .filter(|c| kept_in_part(&c.id, salt))
                .collect()),
        }
    }

    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        self.caller
            .call(
                format!("docker.inspect {}{}", short(container_id), self.at()),
                self.docker.inspect(container_id),
            )
            .await
    }
}

/// Engines as the network sees them: an endpoint names a game's container by its name; the
/// running container of that name answers, as its engine health says.
#[derive(Default)]
pub(crate) struct Engines {
    /// Engine health by container id (absent: healthy).
    pub health: Mutex<BTreeMap<String, Health>>,
    pub probes: Mutex<u64>,
}

/// How a container's engine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Healthy,
    Failing,
    Flapping,
}

pub(crate) struct GatedEngine {
    pub caller: Caller,
    /// Every host's daemon: an engine answers wherever its container runs.
    pub docker: Vec<Arc<MemoryDocker>>,
    pub engines: Arc<Engines>,
    pub prefix: String,
}

impl GatedEngine {
    fn answer(&self, endpoint: &str) -> PortResult<serde_json::Value> {
        let probe = {
            let mut probes = lock(&self.engines.probes);
            *probes += 1;
            *probes
        };
        let target = self
            .docker
            .iter()
            .flat_map(|docker| docker.containers())
            .filter(|c| c.state == ContainerState::Running)
            .find(|c| {
                let name = c.name.strip_prefix('/').unwrap_or(&c.name);
                name.starts_with(&self.prefix) && endpoint.contains(&format!("//{name}:"))
            });
        let Some(container) = target else {
            return Err(PortError::Unavailable {
                message: format!("connection refused by {endpoint}"),
                source: None,
            });
        };
        let health = lock(&self.engines.health)
            .get(&container.id)
            .copied()
            .unwrap_or(Health::Healthy);
        let fails = match health {
            Health::Healthy => false,
            Health::Failing => true,
            Health::Flapping => probe % 2 == 0,
        };
        if fails {
            Err(PortError::Other {
                message: format!("HTTP status 500 from {endpoint}"),
                source: None,
            })
        } else {
            Ok(serde_json::json!({ "turn": probe % 97, "container": short(&container.id) }))
        }
    }
}

#[async_trait]
impl EnginePort for GatedEngine {
    async fn status(&self, endpoint: &str) -> PortResult<serde_json::Value> {
        let label = format!("{} engine.status {endpoint}", self.caller.who);
        match self.caller.gate.enter(label).await {
            Verdict::Go | Verdict::ListPart(_) | Verdict::LoseAnswer => self.answer(endpoint),
            Verdict::Fail(error) => Err(error),
        }
    }
}

/// The lobby through the gate.
pub(crate) struct GatedLobby {
    pub caller: Caller,
    pub lobby: Arc<MemoryLobby>,
}

#[async_trait]
impl LobbyPort for GatedLobby {
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()> {
        self.caller
            .call(
                format!("lobby.event {}", event.game_id),
                self.lobby.on_runtime_job_result(event),
            )
            .await
    }
}

/// A replica's leader lock through the gate.
pub(crate) struct GatedLeader {
    pub caller: Caller,
    pub lock: MemoryLeaderLock,
}

#[async_trait]
impl LeaderLock for GatedLeader {
    async fn try_acquire(&self) -> PortResult<bool> {
        self.caller
            .call("leader.try_acquire".to_owned(), self.lock.try_acquire())
            .await
    }

    async fn is_held(&self) -> PortResult<bool> {
        self.caller
            .call("leader.is_held".to_owned(), self.lock.is_held())
            .await
    }

    async fn release(&self) -> PortResult<()> {
        self.lock.release().await
    }
}

/// A replica's store handle (fenced by its lock, unless the flaw says otherwise) through the
/// gate, with the flaw it was given.
pub(crate) struct GatedStore {
    pub caller: Caller,
    pub store: MemoryStore,
    pub flaw: Option<Flaw>,
}

impl GatedStore {
    /// What a compare-and-set compares: what the caller saw, or with the flaw
    /// [`Flaw::StatusOnlyCompare`], its status alone (the container taken from the row).
    fn compared(&self, game_id: GameId, mut expected: Expected) -> Expected {
        if self.flaw == Some(Flaw::StatusOnlyCompare)
            && let Some(row) = self.store.record(game_id)
        {
            expected.current_container_id = row.current_container_id;
            expected.docker_host = row.docker_host;
        }
        expected
    }
}

#[async_trait]
impl StorePort for GatedStore {
    async fn list_records(&self) -> PortResult<Vec<Arc<RuntimeRecord>>> {
        let call = self.store.list_records();
        self.caller
            .call("store.list_records".to_owned(), call)
            .await
    }

    async fn get_record(&self, game_id: GameId) -> PortResult<Option<RuntimeRecord>> {
        let call = self.store.get_record(game_id);
        self.caller
            .call(format!("store.get_record {game_id}"), call)
            .await
    }

    async fn create_record(&self, record: RuntimeRecord) -> PortResult<RuntimeRecord> {
        let what = format!("store.create_record {}", record.game_id);
        self.caller
            .call(what, self.store.create_record(record))
            .await
    }

    async fn load_game_projections(&self, game_ids: &[GameId]) -> PortResult<Vec<GameProjection>> {
        let call = self.store.load_game_projections(game_ids);
        self.caller
            .call("store.load_game_projections".to_owned(), call)
            .await
    }

    async fn transition_status(&self, change: StatusChange) -> PortResult<RuntimeRecord> {
        let what = format!(
            "store.transition_status {} to {}",
            change.game_id, change.to
        );
        self.caller
            .call(what, async {
                let change = StatusChange {
                    expected: self.compared(change.game_id, change.expected.clone()),
                    ..change
                };
                self.store.transition_status(change).await
            })
            .await
    }

    async fn rebind(&self, rebind: Rebind) -> PortResult<RuntimeRecord> {
        let what = format!("store.rebind {}", rebind.game_id);
        self.caller.call(what, self.store.rebind(rebind)).await
    }

    async fn upsert_adopted(
        &self,
        insert: AdoptInsert,
        update: AdoptUpdate,
    ) -> PortResult<RuntimeRecord> {
        let what = format!("store.upsert_adopted {}", insert.record.game_id);
        self.caller
            .call(what, self.store.upsert_adopted(insert, update))
            .await
    }

    async fn set_probe_failures(
        &self,
        updates: &[ProbeFailuresUpdate],
    ) -> PortResult<Vec<RuntimeRecord>> {
        self.caller
            .call("store.set_probe_failures".to_owned(), async {
                let updates: Vec<ProbeFailuresUpdate> = updates
                    .iter()
                    .map(|u| ProbeFailuresUpdate {
                        expected: self.compared(u.game_id, u.expected.clone()),
                        ..u.clone()
                    })
                    .collect();
                self.store.set_probe_failures(&updates).await
            })
            .await
    }

    async fn publish_snapshots(&self, snapshots: &[Snapshot]) -> PortResult<()> {
        let call = self.store.publish_snapshots(snapshots);
        self.caller
            .call("store.publish_snapshots".to_owned(), call)
            .await
    }

    async fn get_snapshot(&self, game_id: GameId) -> PortResult<Option<Snapshot>> {
        let call = self.store.get_snapshot(game_id);
        self.caller
            .call(format!("store.get_snapshot {game_id}"), call)
            .await
    }
}

#[async_trait]
impl OutboxPort for GatedStore {
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> PortResult<Vec<OutboxEntry>> {
        let call = self.store.claim_due(now, lease, limit);
        self.caller.call("outbox.claim_due".to_owned(), call).await
    }

    async fn record_deliveries(&self, outcomes: &[DeliveryOutcome]) -> PortResult<()> {
        let call = self.store.record_deliveries(outcomes);
        self.caller
            .call("outbox.record_deliveries".to_owned(), call)
            .await
    }

    async fn outbox_stats(&self) -> PortResult<OutboxStats> {
        let call = self.store.outbox_stats();
        self.caller.call("outbox.stats".to_owned(), call).await
    }

    async fn prune_delivered(&self, before: Timestamp) -> PortResult<u64> {
        let call = self.store.prune_delivered(before);
        self.caller.call("outbox.prune".to_owned(), call).await
    }

    async fn list_events(&self, filter: &EventFilter) -> PortResult<Vec<OutboxEntry>> {
        let call = self.store.list_events(filter);
        self.caller
            .call("outbox.list_events".to_owned(), call)
            .await
    }

    async fn redeliver(&self, event_id: EventId, now: Timestamp) -> PortResult<OutboxEntry> {
        let call = self.store.redeliver(event_id, now);
        self.caller.call("outbox.redeliver".to_owned(), call).await
    }
}

/// Docker's short form of a container id.
pub(crate) fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Calls of a memory adapter made by the simulation itself (the backend's jobs): they are
/// ready at once, having no real I/O.
pub(crate) fn at_once<T>(future: impl Future<Output = T>) -> T {
    future
        .now_or_never()
        .expect("a memory adapter without latency answers at once")
}
