//! What the three steps of a pass share: the ports they work through and what the plan was made
//! from. `observe`, `execute` and `reconciler` build on this module, and on nothing of each
//! other's, so that they read bottom-up.

use std::collections::BTreeMap;
use std::sync::Arc;

use galaxy_runtime_model::{GameId, ProbeOutcome, RuntimeRecord, Timestamp};
use galaxy_runtime_ports::{
    Cache, DockerPort, EnginePort, LeaderLock, LobbyPort, OutboxPort, Scheduler, StorePort,
};
use tokio::sync::Notify;

/// Where a reconciler reads the time of a pass: the wall clock unless the builder is given
/// another (tests, simulations).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The ports a reconciler works through.
pub(crate) struct Ports {
    pub docker: Arc<dyn DockerPort>,
    pub store: Arc<dyn StorePort>,
    pub engine: Arc<dyn EnginePort>,
    /// The lobby and the outbox its events wait in; `None` without a lobby.
    pub lobby: Option<Lobby>,
    pub cache: Arc<dyn Cache>,
    pub scheduler: Arc<dyn Scheduler>,
    pub leader: Option<Arc<dyn LeaderLock>>,
    pub clock: Clock,
}

/// The lobby, with the outbox from which the relay delivers its events and the signal that
/// wakes the relay when a pass has committed one.
#[derive(Clone)]
pub(crate) struct Lobby {
    pub port: Arc<dyn LobbyPort>,
    pub outbox: Arc<dyn OutboxPort>,
    pub wake: Arc<Notify>,
}

/// What a plan was made from, as far as applying it needs: the records it saw (every write is
/// compare-and-set on them), the probe outcomes (for log lines) and the time of the
/// observation (snapshots are stamped with it).
#[derive(Clone, Copy)]
pub(crate) struct PlanBasis<'a> {
    /// The time of the observation.
    pub now: Timestamp,
    /// The records the plan saw.
    pub records: &'a [RuntimeRecord],
    /// The probe outcomes the plan saw.
    pub probes: &'a BTreeMap<GameId, ProbeOutcome>,
}
