//! One run: the world, the backend's jobs, the faults, two replicas, and the invariants checked
//! after every step.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use galaxy_runtime_memory::{
    MemoryCache, MemoryDocker, MemoryLeaderLock, MemoryLobby, MemoryScheduler, MemoryStore,
};
use galaxy_runtime_model::{
    Config, ContainerState, ContainerSummary, GameId, GameProjection, PassKind, RuntimeRecord,
    RuntimeStatus, Timestamp,
};
use galaxy_runtime_ports::{
    Expected, LeaderLock, PortError, PortResult, Rebind, StatusChange, StorePort,
};
use galaxy_runtime_reconciler::{Clock, DeliveryReport, PassError, PassReport, Reconciler};
use tokio::time::Instant;

use crate::gate::{
    Caller, Engines, Flaw, Gate, GatedDocker, GatedEngine, GatedLeader, GatedLobby, GatedStore,
    Health, Verdict, at_once, host_in_label, lock, short,
};
use crate::rng::Rng;

/// How a run is made.
#[derive(Debug, Clone)]
pub struct Options {
    /// Steps with faults, before the faults stop and the fleet must converge.
    pub steps: u32,
    /// A flaw given to the replicas' ports (to show that the run catches it).
    pub flaw: Option<Flaw>,
    /// Whether to keep a line per step.
    pub trace: bool,
    /// Docker hosts, 1 to [`MAX_HOSTS`]: one is the one unnamed host of a reconciler given a
    /// single Docker port (the runs before hosts existed, draw for draw); more are named `h0`,
    /// `h1`, … (CONTRACT §6), games move between them, containers are duplicated across them,
    /// a host goes down for a while, and some records name a host no replica has.
    pub hosts: usize,
}

/// The most Docker hosts a run can have.
pub const MAX_HOSTS: usize = 8;

/// The host that some records of a run with several hosts name and no replica has (a host
/// taken out of the configuration): its records are unobserved for good.
const RETIRED_HOST: &str = "retired";

impl Default for Options {
    fn default() -> Self {
        Self {
            steps: DEFAULT_STEPS,
            flaw: None,
            trace: false,
            hosts: 1,
        }
    }
}

/// Steps of a run unless told otherwise.
pub const DEFAULT_STEPS: u32 = 2_000;

/// An invariant that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The step after which it was found (0: the initial fleet; past the fault steps: the
    /// convergence).
    pub step: u32,
    /// Which invariant.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step {}: {}: {}", self.step, self.invariant, self.detail)
    }
}

/// What happened in a run, in numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Passes that ran to their end (full and quick, both replicas, skipped ones included).
    pub passes: u64,
    /// Passes that ended with an error (failed calls, leadership lost, observe failures).
    pub failed_passes: u64,
    /// Passes that ended because the replica lost the lock (a fenced write or the check).
    pub leadership_lost: u64,
    /// Compare-and-set conflicts counted by passes.
    pub conflicts: u64,
    /// Removals skipped because the container could not be confirmed gone.
    pub skipped_removals: u64,
    /// Records marked removed.
    pub removals: u64,
    /// Of those, removals committed while another running container carried the game's name
    /// (allowed: the contract speaks of the container the record names; see
    /// docs/reliability.md).
    pub removed_beside_running: u64,
    /// Lobby events accepted (repeats included).
    pub deliveries: u64,
    /// Replica crashes.
    pub crashes: u64,
    /// Host outages begun (several hosts only).
    pub host_outages: u64,
    /// `host_unavailable` findings of the passes: hosts whose records a pass left unobserved.
    pub hosts_unavailable: u64,
    /// Leader sessions ended by "the server".
    pub sessions_ended: u64,
    /// Backend jobs begun.
    pub jobs: u64,
    /// Port calls decided at the gate.
    pub calls: u64,
}

/// The result of one seed.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The first invariant that did not hold, if any.
    pub violation: Option<Violation>,
    /// What happened.
    pub stats: Stats,
    /// A line per step, when asked for.
    pub trace: Vec<String>,
}

impl Outcome {
    /// Whether every invariant held.
    pub fn holds(&self) -> bool {
        self.violation.is_none()
    }
}

/// Runs one seed on a runtime of its own with a paused clock.
pub fn run(seed: u64, options: &Options) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime can be built");
    runtime.block_on(async {
        let mut sim = Sim::new(seed, options.clone());
        let violation = sim.run().await.err();
        Outcome {
            seed,
            violation,
            stats: sim.stats,
            trace: std::mem::take(&mut sim.trace),
        }
    })
}

type Task = Pin<Box<dyn Future<Output = Done>>>;

/// What a task of a replica ended with.
enum Done {
    Pass(PassKind, Result<PassReport, PassError>),
    Relay(Result<DeliveryReport, PortError>),
}

/// One replica of the reconciler: its lock session and its tasks in flight.
struct Replica {
    index: usize,
    incarnation: u32,
    lock: MemoryLeaderLock,
    reconciler: Reconciler,
    full: Option<Task>,
    quick: Option<Task>,
    relay: Option<Task>,
}

impl Replica {
    fn name(&self) -> String {
        format!("r{}.{}", self.index, self.incarnation)
    }

    fn busy(&self) -> bool {
        self.full.is_some() || self.quick.is_some() || self.relay.is_some()
    }
}

/// A job of the backend, in progress.
#[derive(Debug, Clone)]
struct Job {
    game_id: GameId,
    kind: JobKind,
    stage: u8,
    /// The container the record named when the job began (stop, restart).
    old: String,
    /// The container the job made (start, restart).
    new: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    /// Projection and `starting` record, then the container, then the record onto it, then
    /// `running`.
    Start,
    /// The record `stopped`, then the container stopped; or the other way round.
    Stop { container_first: bool },
    /// A new container and the record moved to it; the old one removed first or last.
    Restart { remove_first: bool },
    /// A container (and projection) without a record: a start job that died.
    CrashedStart,
}

/// Faults that last some steps.
#[derive(Debug, Default, Clone, Copy)]
struct Modes {
    store_down: u32,
    docker_down: u32,
    lobby_down: u32,
    lobby_hangs: u32,
    docker_slow: u32,
    /// Per host (several hosts only): steps left of its outage, during which its daemon
    /// answers nothing while its containers and engines run on.
    host_down: [u32; MAX_HOSTS],
}

/// One Docker host of the world.
struct Host {
    /// Its configured name (`""` for the one unnamed host).
    name: String,
    docker: Arc<MemoryDocker>,
}

/// Wakes nobody, but notes that a wake-up happened: the loop polls everything again.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Sim {
    rng: Rng,
    options: Options,
    config: Config,
    step: u32,
    gate: Gate,
    hosts: Vec<Host>,
    store: MemoryStore,
    lobby: Arc<MemoryLobby>,
    engines: Arc<Engines>,
    clock: Clock,
    replicas: Vec<Replica>,
    jobs: Vec<Job>,
    games: Vec<GameId>,
    modes: Modes,
    checker: Checker,
    stats: Stats,
    trace: Vec<String>,
    flag: Arc<Flag>,
}

/// Midnight, 1 January 2026: the simulated clock's start.
const EPOCH_SECONDS: i64 = 1_767_225_600;

impl Sim {
    fn new(seed: u64, options: Options) -> Self {
        let host_count = options.hosts;
        let start = Instant::now();
        let epoch = Timestamp::from_unix_seconds(EPOCH_SECONDS).expect("a valid time");
        let clock: Clock = Arc::new(move || epoch.saturating_add(start.elapsed()));
        let config = Config {
            start_grace: Duration::from_secs(20),
            failure_threshold: 2.try_into().expect("not zero"),
            probe_timeout: Duration::from_secs(2),
            probe_concurrency: 4.try_into().expect("not zero"),
            lobby_statuses: vec![
                RuntimeStatus::Removed,
                RuntimeStatus::EngineUnreachable,
                RuntimeStatus::Running,
            ],
            lobby_timeout: Duration::from_secs(2),
            // Every advance of the clock is at least this long, so a failed delivery is always
            // due at the next advance whatever the relay's (unseeded) jitter drew: runs replay.
            retry_backoff: Duration::from_millis(2),
            lobby_retry_max: MIN_ADVANCE,
            ..Config::default()
        };
        let mut sim = Self {
            rng: Rng::new(seed),
            options,
            config,
            step: 0,
            gate: Gate::default(),
            hosts: if host_count <= 1 {
                vec![Host {
                    name: String::new(),
                    docker: Arc::new(MemoryDocker::new()),
                }]
            } else {
                (0..host_count.min(MAX_HOSTS))
                    .map(|i| Host {
                        name: format!("h{i}"),
                        docker: Arc::new(MemoryDocker::new()),
                    })
                    .collect()
            },
            store: MemoryStore::new(),
            lobby: Arc::new(MemoryLobby::new()),
            engines: Arc::new(Engines::default()),
            clock,
            replicas: Vec::new(),
            jobs: Vec::new(),
            games: Vec::new(),
            modes: Modes::default(),
            checker: Checker::default(),
            stats: Stats::default(),
            trace: Vec::new(),
            flag: Arc::new(Flag::default()),
        };
        for index in 0..2 {
            let replica = sim.replica(index, 1);
            sim.replicas.push(replica);
        }
        sim
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// A replica's incarnation: a new lock session, a store handle fenced by it, gated ports.
    fn replica(&self, index: usize, incarnation: u32) -> Replica {
        let lock = self.store.leader_lock();
        let handle = match self.options.flaw {
            Some(Flaw::NoFence) => self.store.attributed(&lock),
            _ => self.store.fenced(&lock),
        };
        let caller = Caller {
            gate: self.gate.clone(),
            who: format!("r{index}.{incarnation}"),
        };
        let store = Arc::new(GatedStore {
            caller: caller.clone(),
            store: handle,
            flaw: self.options.flaw,
        });
        let mut builder = Reconciler::builder();
        for host in &self.hosts {
            let port = Arc::new(GatedDocker {
                caller: caller.clone(),
                docker: Arc::clone(&host.docker),
                host: host.name.clone(),
            });
            builder = if host.name.is_empty() {
                builder.docker(port)
            } else {
                builder.docker_host(host.name.clone(), port)
            };
        }
        let reconciler = builder
            .store(store.clone())
            .outbox(store)
            .engine(Arc::new(GatedEngine {
                caller: caller.clone(),
                docker: self.hosts.iter().map(|h| Arc::clone(&h.docker)).collect(),
                engines: Arc::clone(&self.engines),
                prefix: self.config.container_name_prefix.clone(),
            }))
            .lobby(Arc::new(GatedLobby {
                caller: caller.clone(),
                lobby: Arc::clone(&self.lobby),
            }))
            .cache(Arc::new(MemoryCache::new()))
            .scheduler(Arc::new(MemoryScheduler::new()))
            .leader(Arc::new(GatedLeader {
                caller,
                lock: lock.clone(),
            }))
            .config(self.config.clone())
            .clock(Arc::clone(&self.clock))
            .build()
            .expect("the simulation's configuration is valid");
        Replica {
            index,
            incarnation,
            lock,
            reconciler,
            full: None,
            quick: None,
            relay: None,
        }
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.options.trace {
            let at = self.now().saturating_since(
                Timestamp::from_unix_seconds(EPOCH_SECONDS).expect("a valid time"),
            );
            self.trace.push(format!(
                "{:>5} {:>9.3}s {}",
                self.step,
                at.as_secs_f64(),
                line()
            ));
        }
    }

    async fn run(&mut self) -> Result<(), Violation> {
        self.seed_fleet();
        self.checker.start(&self.store);
        self.check()?;
        for step in 1..=self.options.steps {
            self.step = step;
            self.act().await;
            self.settle()?;
            self.tick_modes();
            self.check()?;
        }
        self.step = self.options.steps + 1;
        self.converge().await
    }

    // ----- the world -----

    fn new_game_id(&mut self) -> GameId {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        let game_id = GameId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid());
        self.games.push(game_id);
        game_id
    }

    fn new_container_id(&mut self) -> String {
        (0..4)
            .map(|_| format!("{:016x}", self.rng.next_u64()))
            .collect()
    }

    /// Whether the run has several named hosts.
    fn several_hosts(&self) -> bool {
        self.hosts.len() > 1
    }

    /// A host for a new container: the one host, or one drawn from the seed.
    fn pick_host(&mut self) -> usize {
        if self.several_hosts() {
            self.rng.index(self.hosts.len())
        } else {
            0
        }
    }

    /// Every container of every host, with its host's index, host by host.
    fn containers(&self) -> Vec<(usize, ContainerSummary)> {
        self.hosts
            .iter()
            .enumerate()
            .flat_map(|(i, host)| host.docker.containers().into_iter().map(move |c| (i, c)))
            .collect()
    }

    /// The host holding container `id`, if one does.
    fn host_of(&self, id: &str) -> Option<usize> {
        self.hosts
            .iter()
            .position(|host| host.docker.container(id).is_some())
    }

    /// A running container of `game_id` on a host drawn from the seed, created now; returns
    /// its id.
    fn add_container(&mut self, game_id: GameId) -> String {
        let host = self.pick_host();
        self.add_container_on(host, game_id)
    }

    fn add_container_on(&mut self, host: usize, game_id: GameId) -> String {
        let id = self.new_container_id();
        let mut container =
            MemoryDocker::game_container(&self.config, game_id, &id, ContainerState::Running);
        container.created = self.now();
        self.hosts[host].docker.add(container);
        id
    }

    /// The `docker_host` a record of a container on `host` carries: the host's name, or
    /// (several hosts, on the first, drawn from the seed) `""`, which stands for the first.
    fn host_field(&mut self, host: usize) -> String {
        if host == 0 && self.several_hosts() && self.rng.chance(50) {
            String::new()
        } else {
            self.hosts[host].name.clone()
        }
    }

    fn record(&self, game_id: GameId, status: RuntimeStatus, container_id: &str) -> RuntimeRecord {
        let mut record = RuntimeRecord::new(game_id, status, self.now());
        record.current_container_id = container_id.to_owned();
        record.current_image_ref = "galaxy/engine:1.4".to_owned();
        record.current_engine_version = "1.4.0".to_owned();
        record.engine_endpoint = format!(
            "http://{}{game_id}:{}",
            self.config.container_name_prefix, self.config.engine_port
        );
        record.docker_network = self.config.docker_network.clone();
        record.turn_schedule = "0 */6 * * *".to_owned();
        record
    }

    fn projection(&self, game_id: GameId) -> GameProjection {
        GameProjection {
            game_id,
            turn_schedule: "0 */6 * * *".to_owned(),
        }
    }

    /// The fleet at the start: running games, unrecorded containers (to adopt), orphans,
    /// terminal records (some with a stale container), start jobs without their container.
    fn seed_fleet(&mut self) {
        let running = 3 + self.rng.below(14);
        for _ in 0..running {
            let game_id = self.new_game_id();
            let container_id = self.add_container(game_id);
            let mut record = self.record(game_id, RuntimeStatus::Running, &container_id);
            let host = self.host_of(&container_id).unwrap_or(0);
            record.docker_host = self.host_field(host);
            self.store.insert_record(record);
            self.store.insert_game(self.projection(game_id));
        }
        if self.several_hosts() {
            // Records of a host taken out of the configuration: unobserved for good, unless
            // their game runs on a host that is configured (then rebound there, R4/R7).
            for _ in 0..self.rng.below(3) {
                let game_id = self.new_game_id();
                let container_id = self.new_container_id();
                let mut record = self.record(game_id, RuntimeStatus::Running, &container_id);
                record.docker_host = RETIRED_HOST.to_owned();
                self.store.insert_record(record);
                self.store.insert_game(self.projection(game_id));
                if self.rng.chance(50) {
                    self.add_container(game_id);
                }
            }
        }
        for _ in 0..self.rng.below(3) {
            let game_id = self.new_game_id();
            self.add_container(game_id);
            self.store.insert_game(self.projection(game_id));
        }
        for _ in 0..self.rng.below(2) {
            let game_id = self.new_game_id();
            self.add_container(game_id);
        }
        for _ in 0..self.rng.below(3) {
            let game_id = self.new_game_id();
            let status = if self.rng.chance(50) {
                RuntimeStatus::Removed
            } else {
                RuntimeStatus::Failed
            };
            let container_id = if self.rng.chance(50) {
                self.add_container(game_id)
            } else {
                self.new_container_id()
            };
            let mut record = self.record(game_id, status, &container_id);
            if let Some(host) = self.host_of(&container_id) {
                record.docker_host = self.host_field(host);
            }
            self.store.insert_record(record);
            self.store.insert_game(self.projection(game_id));
        }
        for _ in 0..self.rng.below(2) {
            let game_id = self.new_game_id();
            self.store
                .insert_record(self.record(game_id, RuntimeStatus::Starting, ""));
            self.store.insert_game(self.projection(game_id));
        }
        let (records, containers) = (self.store.records().len(), self.containers().len());
        self.note(|| format!("fleet: {records} records, {containers} containers"));
    }

    // ----- one step -----

    async fn act(&mut self) {
        let waiting = self.gate.undecided();
        let grant = if waiting.is_empty() { 0 } else { 50 };
        // grant, advance, job, container, engine, pass, relay, crash, session, mode
        let choice = self.rng.weighted(&[grant, 10, 9, 6, 3, 8, 5, 1, 1, 3]);
        match choice {
            0 => self.grant(waiting),
            1 => self.advance().await,
            2 => self.job(),
            3 => self.container_fault(),
            4 => self.engine_fault(),
            5 => self.start_pass(),
            6 => self.start_relay(),
            7 => self.crash(),
            8 => {
                let ended = self.store.end_leader_session();
                if ended {
                    self.stats.sessions_ended += 1;
                }
                self.note(|| format!("the server ends the leader's session (held: {ended})"));
            }
            _ => self.mode(),
        }
    }

    /// Decides one waiting call.
    fn grant(&mut self, waiting: Vec<(String, u64)>) {
        let eligible: Vec<&(String, u64)> = waiting
            .iter()
            .filter(|(label, _)| {
                let hangs = self.modes.lobby_hangs > 0 && label.contains(" lobby.");
                let slow = self.modes.docker_slow > 0 && label.contains(" docker.");
                !(hangs || slow)
            })
            .collect();
        if eligible.is_empty() {
            self.note(|| "every waiting call hangs".to_owned());
            return;
        }
        let key = eligible[self.rng.index(eligible.len())].clone();
        let verdict = self.verdict(&key.0);
        self.stats.calls += 1;
        let label = key.0.clone();
        let shown = describe(&verdict);
        self.note(|| format!("{label}: {shown}"));
        self.gate.decide(&key, verdict);
    }

    fn verdict(&mut self, label: &str) -> Verdict {
        let unavailable = |what: &str| {
            Verdict::Fail(PortError::Unavailable {
                message: format!("{what} cannot be reached"),
                source: None,
            })
        };
        let roll = self.rng.below(100);
        if label.contains(" docker.") {
            if self.modes.docker_down > 0 {
                return unavailable("the Docker daemon");
            }
            let down = host_in_label(label).and_then(|name| {
                let i = self.hosts.iter().position(|h| h.name == name)?;
                (self.modes.host_down[i] > 0).then_some(name)
            });
            if let Some(name) = down {
                if self.options.flaw == Some(Flaw::DownHostListsEmpty) {
                    // As an empty daemon answers: nothing listed, nothing found.
                    return if label.contains("list_managed") {
                        Verdict::ListPart(0)
                    } else {
                        Verdict::Fail(PortError::not_found(format!(
                            "no such container (host {name})"
                        )))
                    };
                }
                return unavailable(&format!("the Docker daemon of host {name}"));
            }
            if label.contains("list_managed") {
                return match roll {
                    0..6 => unavailable("the Docker daemon"),
                    6..10 => Verdict::ListPart(0),
                    10..16 => Verdict::ListPart(1 + self.rng.below(1 << 20)),
                    _ => Verdict::Go,
                };
            }
            return if roll < 5 {
                unavailable("the Docker daemon")
            } else {
                Verdict::Go
            };
        }
        if label.contains(" engine.") {
            return if roll < 5 {
                Verdict::Fail(PortError::other("connection reset by the engine", "reset"))
            } else {
                Verdict::Go
            };
        }
        if label.contains(" lobby.") {
            return match roll {
                0..5 => unavailable("the lobby"),
                5..10 => Verdict::LoseAnswer,
                _ => Verdict::Go,
            };
        }
        let write = [
            "transition_status",
            "rebind",
            "upsert_adopted",
            "set_probe_failures",
            "publish_snapshots",
            "create_record",
            "claim_due",
            "record_deliveries",
        ]
        .iter()
        .any(|method| label.contains(method));
        match roll {
            0..4 => unavailable("the store"),
            4..7 => Verdict::Fail(PortError::timeout(
                "the store's answer",
                Duration::from_secs(5),
            )),
            7..12 if write => Verdict::LoseAnswer,
            _ => Verdict::Go,
        }
    }

    async fn advance(&mut self) {
        let millis = match self.rng.below(100) {
            0..70 => 10 + self.rng.below(490),
            70..95 => 500 + self.rng.below(4_500),
            _ => 10_000 + self.rng.below(50_000),
        };
        self.note(|| format!("time advances {millis}ms"));
        tokio::time::advance(Duration::from_millis(millis)).await;
    }

    fn start_pass(&mut self) {
        let index = self.rng.index(self.replicas.len());
        let full = self.rng.chance(50);
        let replica = &mut self.replicas[index];
        let slot = if full {
            &mut replica.full
        } else {
            &mut replica.quick
        };
        if slot.is_some() {
            return;
        }
        let reconciler = replica.reconciler.clone();
        let kind = if full {
            PassKind::Full
        } else {
            PassKind::Quick
        };
        *slot = Some(Box::pin(tokio::task::unconstrained(async move {
            let result = match kind {
                PassKind::Full => reconciler.tick().await,
                PassKind::Quick => reconciler.tick_quick().await,
            };
            Done::Pass(kind, result)
        })));
        let name = replica.name();
        self.note(|| format!("{name} begins a {} pass", kind_word(kind)));
    }

    fn start_relay(&mut self) {
        let index = self.rng.index(self.replicas.len());
        let replica = &mut self.replicas[index];
        if replica.relay.is_some() {
            return;
        }
        let reconciler = replica.reconciler.clone();
        replica.relay = Some(Box::pin(tokio::task::unconstrained(async move {
            Done::Relay(reconciler.deliver_events().await)
        })));
        let name = replica.name();
        self.note(|| format!("{name} begins a relay round"));
    }

    /// A replica dies between two of its calls: its tasks are dropped where they wait, its
    /// lock session ends with its connection, and it comes back as a new process.
    fn crash(&mut self) {
        let index = self.rng.index(self.replicas.len());
        let old = &self.replicas[index];
        let name = old.name();
        let was_busy = old.busy();
        let _ = at_once(old.lock.release());
        let incarnation = old.incarnation + 1;
        let new = self.replica(index, incarnation);
        // Dropping the old replica drops its futures, wherever they wait.
        self.replicas[index] = new;
        self.stats.crashes += 1;
        self.note(|| format!("{name} crashes (busy: {was_busy}) and restarts"));
    }

    fn mode(&mut self) {
        let steps = 5 + self.rng.below(150) as u32;
        let which = self.rng.below(if self.several_hosts() { 6 } else { 5 });
        if which == 5 {
            let host = self.rng.index(self.hosts.len());
            self.modes.host_down[host] = steps;
            self.stats.host_outages += 1;
            let name = self.hosts[host].name.clone();
            self.note(|| format!("the Docker daemon of host {name} is down for {steps} steps"));
            return;
        }
        let modes = &mut self.modes;
        let word = match which {
            0 => {
                modes.store_down = steps;
                self.store.set_unavailable(true);
                "the store is unreachable"
            }
            1 => {
                modes.docker_down = steps;
                "the Docker daemon is down"
            }
            2 => {
                modes.lobby_down = steps;
                self.lobby.set_failing(true);
                "the lobby fails"
            }
            3 => {
                modes.lobby_hangs = steps;
                "the lobby hangs"
            }
            _ => {
                modes.docker_slow = steps;
                "the Docker daemon is slow"
            }
        };
        self.note(|| format!("{word} for {steps} steps"));
    }

    fn tick_modes(&mut self) {
        let modes = &mut self.modes;
        for (left, ends) in [
            (&mut modes.store_down, "store"),
            (&mut modes.docker_down, "docker"),
            (&mut modes.lobby_down, "lobby"),
            (&mut modes.lobby_hangs, "hang"),
            (&mut modes.docker_slow, "slow"),
        ] {
            if *left > 0 {
                *left -= 1;
                if *left == 0 {
                    match ends {
                        "store" => self.store.set_unavailable(false),
                        "lobby" => self.lobby.set_failing(false),
                        _ => {}
                    }
                }
            }
        }
        for left in &mut modes.host_down {
            *left = left.saturating_sub(1);
        }
    }

    fn heal(&mut self) {
        self.modes = Modes::default();
        self.store.set_unavailable(false);
        self.lobby.set_failing(false);
    }

    fn container_fault(&mut self) {
        let containers = self.containers();
        if containers.is_empty() {
            return;
        }
        let (host, container) = containers[self.rng.index(containers.len())].clone();
        let docker = Arc::clone(&self.hosts[host].docker);
        let id = container.id.clone();
        let line = match self.rng.below(6) {
            0 => {
                let _ = docker.kill(&id);
                format!("container {} dies", short(&id))
            }
            1 => {
                let _ = docker.start(&id);
                format!("container {} runs again", short(&id))
            }
            2 => {
                let _ = docker.remove(&id);
                format!("container {} vanishes", short(&id))
            }
            3 => {
                let copy_id = self.new_container_id();
                let mut copy = container.clone();
                copy.id = copy_id.clone();
                copy.created = self.now();
                copy.state = ContainerState::Running;
                // With several hosts, sometimes on another host: a duplicate across hosts.
                let onto = if self.several_hosts() && self.rng.chance(40) {
                    self.rng.index(self.hosts.len())
                } else {
                    host
                };
                self.hosts[onto].docker.add(copy);
                format!(
                    "container {} is duplicated as {}{}",
                    short(&id),
                    short(&copy_id),
                    if onto == host {
                        String::new()
                    } else {
                        format!(" on host {}", self.hosts[onto].name)
                    }
                )
            }
            4 => {
                let name = match self.rng.below(3) {
                    0 if !self.games.is_empty() => {
                        let other = self.games[self.rng.index(self.games.len())];
                        format!("/{}{other}", self.config.container_name_prefix)
                    }
                    1 => format!("/{}", containers[self.rng.index(containers.len())].1.id),
                    _ => format!("/renamed-{}", self.rng.below(1000)),
                };
                let _ = docker.rename(&id, &name);
                format!("container {} is renamed {name}", short(&id))
            }
            _ => {
                let _ = docker.pause(&id);
                format!("container {} is paused", short(&id))
            }
        };
        self.note(|| line);
    }

    fn engine_fault(&mut self) {
        let containers = self.containers();
        if containers.is_empty() {
            return;
        }
        let id = containers[self.rng.index(containers.len())].1.id.clone();
        let health = match self.rng.below(3) {
            0 => Health::Healthy,
            1 => Health::Failing,
            _ => Health::Flapping,
        };
        lock(&self.engines.health).insert(id.clone(), health);
        self.note(|| format!("the engine of {} is now {health:?}", short(&id)));
    }

    // ----- the backend's jobs -----

    fn job(&mut self) {
        if self.jobs.len() < 3 && (self.jobs.is_empty() || self.rng.chance(40)) {
            self.begin_job();
        } else if !self.jobs.is_empty() {
            let i = self.rng.index(self.jobs.len());
            if self.rng.chance(5) {
                let job = self.jobs.remove(i);
                self.note(|| format!("the {:?} job of {} dies", job.kind, job.game_id));
                return;
            }
            self.advance_job(i);
        }
    }

    fn begin_job(&mut self) {
        let busy: BTreeSet<GameId> = self.jobs.iter().map(|j| j.game_id).collect();
        let live: Vec<RuntimeRecord> = self
            .store
            .records()
            .into_iter()
            .filter(|r| !r.is_terminal() && !busy.contains(&r.game_id))
            .collect();
        let kind = match self.rng.below(10) {
            0..3 => JobKind::Start,
            3..5 => JobKind::Stop {
                container_first: self.rng.chance(50),
            },
            5..9 => JobKind::Restart {
                remove_first: self.rng.chance(50),
            },
            _ => JobKind::CrashedStart,
        };
        let (game_id, old) = match kind {
            JobKind::Start | JobKind::CrashedStart => (self.new_game_id(), String::new()),
            JobKind::Stop { .. } | JobKind::Restart { .. } => {
                let candidates: Vec<&RuntimeRecord> = live
                    .iter()
                    .filter(|r| {
                        r.status != RuntimeStatus::Stopped && !r.current_container_id.is_empty()
                    })
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let record = candidates[self.rng.index(candidates.len())];
                (record.game_id, record.current_container_id.clone())
            }
        };
        self.stats.jobs += 1;
        self.jobs.push(Job {
            game_id,
            kind,
            stage: 0,
            old,
            new: String::new(),
        });
        self.note(|| format!("a {kind:?} job begins for {game_id}"));
        let last = self.jobs.len() - 1;
        self.advance_job(last);
    }

    /// One stage of a job; a job whose write conflicts gives up, one whose store call fails
    /// tries the stage again later.
    fn advance_job(&mut self, i: usize) {
        let job = self.jobs[i].clone();
        let game_id = job.game_id;
        let row = self.store.record(game_id);
        let result: PortResult<bool> = match (job.kind, job.stage) {
            (JobKind::Start, 0) => {
                let record = self.record(game_id, RuntimeStatus::Starting, "");
                self.store.insert_game(self.projection(game_id));
                at_once(self.store.create_record(record)).map(|_| false)
            }
            (JobKind::Start, 1)
            | (
                JobKind::Restart {
                    remove_first: false,
                },
                0,
            ) => {
                let id = self.add_container(game_id);
                self.note(|| format!("the job of {game_id} creates {}", short(&id)));
                self.jobs[i].new = id;
                Ok(false)
            }
            (JobKind::Start, 2)
            | (
                JobKind::Restart {
                    remove_first: false,
                },
                1,
            ) => self.job_rebind(row, &job.new).map(|_| false),
            (JobKind::Start, _) => self
                .job_transition(row, RuntimeStatus::Running)
                .map(|_| true),
            (JobKind::Stop { container_first }, stage) => {
                let record_now = (stage == 0) != container_first;
                if record_now {
                    self.job_transition(row, RuntimeStatus::Stopped)
                        .map(|_| stage == 1)
                } else {
                    self.on_host_of(&job.old, |docker, id| {
                        let _ = docker.kill(id);
                    });
                    self.note(|| format!("the stop job of {game_id} stops {}", short(&job.old)));
                    Ok(stage == 1)
                }
            }
            (JobKind::Restart { remove_first }, 0)
            | (
                JobKind::Restart {
                    remove_first: remove_first @ false,
                },
                2,
            ) => {
                self.on_host_of(&job.old, |docker, id| {
                    let _ = docker.remove(id);
                });
                self.note(|| format!("the restart job of {game_id} removes {}", short(&job.old)));
                Ok(!remove_first)
            }
            (JobKind::Restart { .. }, 1) => {
                let id = self.add_container(game_id);
                self.note(|| format!("the restart job of {game_id} creates {}", short(&id)));
                self.jobs[i].new = id;
                Ok(false)
            }
            (JobKind::Restart { .. }, _) => self.job_rebind(row, &job.new).map(|_| true),
            (JobKind::CrashedStart, _) => {
                if self.rng.chance(80) {
                    self.store.insert_game(self.projection(game_id));
                }
                let id = self.add_container(game_id);
                self.note(|| format!("a dying start job of {game_id} leaves {}", short(&id)));
                Ok(true)
            }
        };
        match result {
            Ok(done) => {
                self.jobs[i].stage += 1;
                if done {
                    self.jobs.remove(i);
                    self.note(|| format!("the {:?} job of {game_id} is done", job.kind));
                }
            }
            Err(error) if error.is_conflict() || error.is_not_found() => {
                self.jobs.remove(i);
                self.note(|| format!("the {:?} job of {game_id} gives up: {error}", job.kind));
            }
            Err(error) => {
                self.note(|| format!("the {:?} job of {game_id} waits: {error}", job.kind));
            }
        }
    }

    /// Runs `act` on the daemon holding container `id`, if one does.
    fn on_host_of(&self, id: &str, act: impl FnOnce(&MemoryDocker, &str)) {
        if let Some(host) = self.host_of(id) {
            act(&self.hosts[host].docker, id);
        }
    }

    /// The job moves the record onto `container_id`, on whichever host the job made it.
    fn job_rebind(&self, row: Option<RuntimeRecord>, container_id: &str) -> PortResult<()> {
        let Some(row) = row else {
            return Err(PortError::not_found("the job's record"));
        };
        let docker_host = match self.host_of(container_id) {
            Some(host) => self.hosts[host].name.clone(),
            None => row.docker_host.clone(),
        };
        at_once(self.store.rebind(Rebind {
            game_id: row.game_id,
            expected: Expected::of(&row),
            container_id: container_id.to_owned(),
            image_ref: row.current_image_ref.clone(),
            engine_version: row.current_engine_version.clone(),
            docker_host,
        }))
        .map(|_| ())
    }

    fn job_transition(&self, row: Option<RuntimeRecord>, to: RuntimeStatus) -> PortResult<()> {
        let Some(row) = row else {
            return Err(PortError::not_found("the job's record"));
        };
        if row.is_terminal() {
            return Err(PortError::conflict("the record is terminal"));
        }
        at_once(self.store.transition_status(StatusChange {
            game_id: row.game_id,
            expected: Expected::of(&row),
            to,
            message: "backend job".to_owned(),
            at: self.now(),
            event: None,
        }))
        .map(|_| ())
    }

    // ----- running the tasks -----

    /// Polls every task until none moves: each stops at the gate or ends.
    fn settle(&mut self) -> Result<(), Violation> {
        let waker = Waker::from(Arc::clone(&self.flag));
        let mut cx = Context::from_waker(&waker);
        for _ in 0..100_000 {
            let before = self.gate.progress();
            self.flag.0.store(false, Ordering::SeqCst);
            let mut done = Vec::new();
            for replica in &mut self.replicas {
                for slot in [&mut replica.full, &mut replica.quick, &mut replica.relay] {
                    if let Some(task) = slot
                        && let Poll::Ready(output) = task.as_mut().poll(&mut cx)
                    {
                        *slot = None;
                        done.push((replica.index, replica.incarnation, output));
                    }
                }
            }
            let moved = !done.is_empty()
                || self.gate.progress() != before
                || self.flag.0.load(Ordering::SeqCst);
            for (index, incarnation, output) in done {
                self.finished(index, incarnation, output)?;
            }
            if !moved {
                return Ok(());
            }
        }
        Err(self.violation(
            "progress",
            "the replicas' tasks kept running without waiting at a port".to_owned(),
        ))
    }

    fn finished(&mut self, index: usize, incarnation: u32, output: Done) -> Result<(), Violation> {
        let name = format!("r{index}.{incarnation}");
        match output {
            Done::Pass(kind, result) => {
                self.stats.passes += 1;
                let report = match &result {
                    Ok(report) => report,
                    Err(error) => error.report(),
                };
                self.stats.conflicts += report.conflicts;
                self.stats.hosts_unavailable += report
                    .findings
                    .get("host_unavailable")
                    .copied()
                    .unwrap_or(0);
                self.stats.skipped_removals += report.skipped_removals;
                if let Err(error) = &result {
                    self.stats.failed_passes += 1;
                    if let PassError::Panicked { message, .. } = error {
                        return Err(self.violation(
                            "no pass panics",
                            format!("{name}'s {} pass panicked: {message}", kind_word(kind)),
                        ));
                    }
                    if matches!(error, PassError::LeadershipLost { .. }) {
                        self.stats.leadership_lost += 1;
                    }
                }
                let line = match &result {
                    Ok(report) if report.skipped_not_leader => "skipped, not the leader".to_owned(),
                    Ok(report) => format!(
                        "ok: planned {:?}, applied {:?}, {} conflicts",
                        report.actions, report.applied, report.conflicts
                    ),
                    Err(error) => format!("failed: {error}"),
                };
                self.note(|| format!("{name}'s {} pass ends {line}", kind_word(kind)));
            }
            Done::Relay(result) => {
                let line = match result {
                    Ok(report) => {
                        format!("{} delivered, {} failed", report.delivered, report.failed)
                    }
                    Err(error) => format!("failed: {error}"),
                };
                self.note(|| format!("{name}'s relay round ends: {line}"));
            }
        }
        Ok(())
    }

    /// Decides every waiting call as going through, until the tasks in flight have ended.
    async fn drain(&mut self) -> Result<(), Violation> {
        for _ in 0..10_000 {
            self.settle()?;
            let waiting = self.gate.undecided();
            if waiting.is_empty() {
                if !self.replicas.iter().any(Replica::busy) {
                    return Ok(());
                }
                // Waiting on a timer only.
                tokio::time::advance(Duration::from_secs(1)).await;
                continue;
            }
            for key in waiting {
                self.stats.calls += 1;
                self.note(|| format!("{}: goes through", key.0));
                self.gate.decide(&key, Verdict::Go);
            }
        }
        Err(self.violation(
            "convergence",
            "the tasks in flight did not end once every call went through".to_owned(),
        ))
    }

    /// Runs one pass of `kind` on every replica with every call going through; returns the
    /// report of the replica that led.
    async fn pass_everywhere(&mut self, kind: PassKind) -> Result<Option<PassReport>, Violation> {
        let mut led = None;
        for index in 0..self.replicas.len() {
            let reconciler = self.replicas[index].reconciler.clone();
            let result = Arc::new(std::sync::Mutex::new(None));
            let out = Arc::clone(&result);
            self.replicas[index].full = Some(Box::pin(tokio::task::unconstrained(async move {
                let result = match kind {
                    PassKind::Full => reconciler.tick().await,
                    PassKind::Quick => reconciler.tick_quick().await,
                };
                *lock(&out) = Some(match &result {
                    Ok(report) => Ok(report.clone()),
                    Err(error) => Err(error.to_string()),
                });
                Done::Pass(kind, result)
            })));
            self.drain().await?;
            let result = lock(&result).take();
            match result {
                Some(Ok(report)) if !report.skipped_not_leader => led = Some(report),
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    return Err(self.violation(
                        "convergence",
                        format!(
                            "a {} pass failed once faults stopped: {error}",
                            kind_word(kind)
                        ),
                    ));
                }
                None => unreachable!("drain ends only when the pass has ended"),
            }
        }
        Ok(led)
    }

    /// Faults stop: the tasks in flight end, the start grace passes, a full pass and a quick
    /// pass run, the second plans nothing, and every event reaches the lobby.
    async fn converge(&mut self) -> Result<(), Violation> {
        self.heal();
        self.jobs.clear();
        self.note(|| "faults stop".to_owned());
        self.drain().await?;
        self.check()?;
        tokio::time::advance(self.config.start_grace + Duration::from_secs(1)).await;
        let full = self.pass_everywhere(PassKind::Full).await?;
        self.check()?;
        let quick = self.pass_everywhere(PassKind::Quick).await?;
        self.check()?;
        if full.is_none() || quick.is_none() {
            return Err(self.violation(
                "convergence",
                "no replica led once faults stopped".to_owned(),
            ));
        }
        // A pass whose removal guard tripped may make the next pass's removals pass the guard
        // (its adoptions add live records): then one more pass is allowed to reach the fixed
        // point.
        let guarded = |report: &PassReport| {
            report
                .findings
                .get("removal_guard_tripped")
                .is_some_and(|n| *n > 0)
        };
        let mut second = quick.unwrap_or_default();
        if guarded(full.as_ref().expect("checked above")) && !at_fixed_point(&second) {
            self.note(|| "the removal guard tripped in the first pass: one more pass".to_owned());
            second = self
                .pass_everywhere(PassKind::Quick)
                .await?
                .unwrap_or_default();
            self.check()?;
        }
        if !at_fixed_point(&second) {
            return Err(self.violation(
                "fixed point",
                format!(
                    "the second pass after the faults still plans {:?} ({} removals skipped)",
                    second.actions, second.skipped_removals
                ),
            ));
        }
        for _ in 0..20 {
            if self.store.events().iter().all(|e| !e.is_pending()) {
                break;
            }
            for index in 0..self.replicas.len() {
                let reconciler = self.replicas[index].reconciler.clone();
                self.replicas[index].relay =
                    Some(Box::pin(tokio::task::unconstrained(async move {
                        Done::Relay(reconciler.deliver_events().await)
                    })));
                self.drain().await?;
                self.check()?;
            }
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        let received: BTreeSet<_> = self.lobby.events().iter().map(|e| e.event_id).collect();
        if let Some(lost) = self
            .store
            .events()
            .iter()
            .find(|e| e.is_pending() || !received.contains(&e.event.event_id))
        {
            return Err(self.violation(
                "every event delivered once the lobby recovers",
                format!(
                    "event {} of game {} ({}) never reached the lobby",
                    lost.event.event_id, lost.event.game_id, lost.event.result.status
                ),
            ));
        }
        self.stats.deliveries = self.lobby.events().len() as u64;
        self.stats.removed_beside_running = self.checker.removed_beside_running;
        self.stats.removals = self
            .store
            .records()
            .iter()
            .filter(|r| r.status == RuntimeStatus::Removed)
            .filter(|r| !self.checker.removed_at_start.contains(&r.game_id))
            .count() as u64;
        self.note(|| "converged".to_owned());
        Ok(())
    }

    fn violation(&self, invariant: &'static str, detail: String) -> Violation {
        Violation {
            step: self.step,
            invariant,
            detail,
        }
    }

    fn check(&mut self) -> Result<(), Violation> {
        let mut checker = std::mem::take(&mut self.checker);
        let found = checker.check(self);
        self.checker = checker;
        if let Some((invariant, detail)) = found {
            let violation = self.violation(invariant, detail);
            self.note(|| format!("VIOLATION {violation}"));
            return Err(violation);
        }
        Ok(())
    }
}

/// Whether a pass changed nothing and planned nothing but removals it had to skip.
///
/// A removal the executor skips because the recorded container still exists is no change: a
/// container renamed to another game's name is a duplicate of that game (R3), so its own record
/// never matches it, and every pass plans its removal and skips it.
fn at_fixed_point(report: &PassReport) -> bool {
    let planned: u64 = report.actions.values().sum();
    planned <= report.skipped_removals && report.applied_total() == 0
}

fn kind_word(kind: PassKind) -> &'static str {
    match kind {
        PassKind::Full => "full",
        PassKind::Quick => "quick",
    }
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Go => "goes through".to_owned(),
        Verdict::Fail(error) => format!("fails: {error}"),
        Verdict::LoseAnswer => "goes through, its answer lost".to_owned(),
        Verdict::ListPart(0) => "lists nothing".to_owned(),
        Verdict::ListPart(_) => "lists only some".to_owned(),
    }
}

/// The shortest advance of the simulated clock (see the configuration's `lobby_retry_max`).
const MIN_ADVANCE: Duration = Duration::from_millis(10);

/// What the invariants compare with: the state after the previous step.
#[derive(Default)]
struct Checker {
    records: BTreeMap<GameId, RuntimeRecord>,
    /// Games whose record was removed before the run began (no event tells of them).
    removed_at_start: BTreeSet<GameId>,
    /// Removals committed while another running container carried the game's name.
    removed_beside_running: u64,
    /// The store's and the lobby's call counts at the last full check: records and events
    /// change only through calls, so while neither count moves there is nothing new to check.
    seen_calls: Option<(u64, u64)>,
    /// Lobby events already checked for order.
    lobby_checked: usize,
    /// Per game, the outbox sequence numbers the lobby has accepted.
    accepted: BTreeMap<GameId, BTreeSet<u64>>,
}

impl Checker {
    fn start(&mut self, store: &MemoryStore) {
        for record in store.records() {
            if record.status == RuntimeStatus::Removed {
                self.removed_at_start.insert(record.game_id);
            }
            self.records.insert(record.game_id, record);
        }
    }

    /// The first invariant that does not hold, with what was seen.
    fn check(&mut self, sim: &Sim) -> Option<(&'static str, String)> {
        let written = sim.store.writes_without_lock();
        if written > 0 {
            return Some((
                "no write without the lock",
                format!("{written} writes committed from a session that did not hold the lock"),
            ));
        }
        let calls = (sim.store.calls().total(), sim.lobby.calls());
        if self.seen_calls == Some(calls) {
            return None;
        }
        self.seen_calls = Some(calls);
        let now = sim.now();
        let records: BTreeMap<GameId, RuntimeRecord> = sim
            .store
            .records()
            .into_iter()
            .map(|r| (r.game_id, r))
            .collect();
        for (game_id, before) in &self.records {
            let Some(after) = records.get(game_id) else {
                return Some(("no record lost", format!("the record of {game_id} is gone")));
            };
            if before.is_terminal() && before != after {
                return Some((
                    "no terminal record changes",
                    format!("{game_id} was {before:?}, is {after:?}"),
                ));
            }
            if after.status == RuntimeStatus::Removed && before.status != RuntimeStatus::Removed {
                let named = &after.current_container_id;
                // The record's host (CONTRACT §6): `""` stands for the first.
                let host = if after.docker_host.is_empty() {
                    Some(0)
                } else {
                    sim.hosts.iter().position(|h| h.name == after.docker_host)
                };
                let Some(host) = host else {
                    return Some((
                        "no record of an unobserved host is ever removed",
                        format!(
                            "{game_id} was marked removed, and its host {:?} is not configured",
                            after.docker_host
                        ),
                    ));
                };
                let found = sim.hosts[host].docker.container(named);
                if let Some(container) = &found
                    && sim.modes.host_down[host] > 0
                {
                    return Some((
                        "no record of an unobserved host is ever removed",
                        format!(
                            "{game_id} was marked removed while its host {} is down and its \
                             container {} exists there ({})",
                            sim.hosts[host].name,
                            short(named),
                            container.state
                        ),
                    ));
                }
                if let Some(container) = found {
                    return Some((
                        "no removal of a game whose container exists",
                        format!(
                            "{game_id} was marked removed while its container {} exists ({})",
                            short(named),
                            container.state
                        ),
                    ));
                }
                let name = format!("/{}{game_id}", sim.config.container_name_prefix);
                if sim
                    .containers()
                    .iter()
                    .any(|(_, c)| c.name == name && c.state == ContainerState::Running)
                {
                    self.removed_beside_running += 1;
                }
                if named.is_empty()
                    && before.status == RuntimeStatus::Starting
                    && now.saturating_since(before.status_changed_at) < sim.config.start_grace
                {
                    return Some((
                        "no removal inside the start grace",
                        format!(
                            "{game_id} was marked removed {:?} after it began starting",
                            now.saturating_since(before.status_changed_at)
                        ),
                    ));
                }
            }
        }
        let events = sim.store.events();
        let mut removals: BTreeMap<GameId, u64> = BTreeMap::new();
        for entry in &events {
            if entry.event.result.status == RuntimeStatus::Removed {
                *removals.entry(entry.event.game_id).or_default() += 1;
            }
        }
        for (game_id, record) in &records {
            let expected = u64::from(
                record.status == RuntimeStatus::Removed && !self.removed_at_start.contains(game_id),
            );
            let told = removals.get(game_id).copied().unwrap_or(0);
            if told != expected {
                return Some((
                    "every removal yields exactly one event",
                    format!(
                        "{game_id} is {}, and its outbox holds {told} removal events",
                        record.status
                    ),
                ));
            }
        }

        let by_id: BTreeMap<_, _> = events
            .iter()
            .map(|e| (e.event.event_id, (e.event.game_id, e.seq)))
            .collect();
        let received = sim.lobby.events();
        for event in &received[self.lobby_checked.min(received.len())..] {
            let Some(&(game_id, seq)) = by_id.get(&event.event_id) else {
                return Some((
                    "the lobby hears only of committed events",
                    format!(
                        "the lobby got event {} that the outbox never held",
                        event.event_id
                    ),
                ));
            };
            let accepted = self.accepted.entry(game_id).or_default();
            let earlier = events
                .iter()
                .filter(|e| e.event.game_id == game_id && e.seq < seq)
                .find(|e| !accepted.contains(&e.seq));
            if let Some(earlier) = earlier {
                return Some((
                    "events in commit order per game",
                    format!(
                        "the lobby got event {} of {game_id} (seq {seq}) before event {} (seq {})",
                        event.event_id, earlier.event.event_id, earlier.seq
                    ),
                ));
            }
            accepted.insert(seq);
        }
        self.lobby_checked = received.len();
        let got: BTreeSet<_> = received.iter().map(|e| e.event_id).collect();
        if let Some(entry) = events
            .iter()
            .find(|e| e.delivered_at.is_some() && !got.contains(&e.event.event_id))
        {
            return Some((
                "no event marked delivered unheard",
                format!(
                    "event {} is marked delivered, the lobby never got it",
                    entry.event.event_id
                ),
            ));
        }
        self.records = records;
        None
    }
}
