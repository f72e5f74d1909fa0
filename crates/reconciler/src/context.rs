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

/// One Docker host of a reconciler (CONTRACT §6): its configured name (`""` for the one host
/// of a reconciler given a single Docker port) and its port.
#[derive(Clone)]
pub(crate) struct DockerHost {
    pub name: String,
    pub port: Arc<dyn DockerPort>,
}

/// The ports a reconciler works through.
pub(crate) struct Ports {
    /// The Docker hosts, in the order they were given (the first is the one a record's
    /// `docker_host` of `""` stands for); never empty.
    pub docker: Vec<DockerHost>,
    pub store: Arc<dyn StorePort>,
    pub engine: Arc<dyn EnginePort>,
    /// The lobby and the outbox its events wait in; `None` without a lobby.
    pub lobby: Option<Lobby>,
    pub cache: Arc<dyn Cache>,
    pub scheduler: Arc<dyn Scheduler>,
    pub leader: Option<Arc<dyn LeaderLock>>,
    pub clock: Clock,
    /// Told about the probes of each full pass (a progress line); `None` by default.
    pub progress: Option<Arc<dyn crate::ProbeProgress>>,
}

impl Ports {
    /// The Docker port of a record's host (`""`: the first), if the reconciler has it.
    pub fn docker_of(&self, host: &str) -> Option<&Arc<dyn DockerPort>> {
        if host.is_empty() {
            return self.docker.first().map(|h| &h.port);
        }
        self.docker.iter().find(|h| h.name == host).map(|h| &h.port)
    }

    /// Whether the reconciler has several named hosts (CONTRACT §6) rather than one port.
    pub fn has_named_hosts(&self) -> bool {
        self.docker.iter().any(|h| !h.name.is_empty())
    }
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
    /// The records the plan saw: all of them, or at least those of the games whose record it
    /// writes (what the planner hands over, [`crate::planner::Planned`]).
    pub records: &'a [Arc<RuntimeRecord>],
    /// The probe outcomes the plan saw.
    pub probes: &'a BTreeMap<GameId, ProbeOutcome>,
}
