//! Behaviour of whole passes on the in-memory adapters: a fleet where containers die, appear,
//! are duplicated, renamed and relabelled, engines flap, start and stop jobs race the
//! reconciler and the daemon goes away — over many passes, with the invariants checked after
//! every one:
//!
//! - convergence: once the world stops changing, the next pass makes no adoption, rebind or
//!   status change;
//! - forward-only: no record ever leaves a terminal status;
//! - every removal the reconciler made was told to the lobby, every running adoption started;
//! - a pass never removes more than the removal guard allows;
//! - a pass that cannot list writes nothing.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use galaxy_runtime_memory::{
    MemoryCache, MemoryDocker, MemoryEngine, MemoryLobby, MemoryScheduler, MemoryStore, StoreMethod,
};
use galaxy_runtime_model::{
    Config, ContainerState, GameId, GameProjection, JobResult, RuntimeRecord, RuntimeStatus,
    Timestamp,
};
use galaxy_runtime_ports::{Cache, Expected, PortError, StatusChange, StorePort};
use galaxy_runtime_reconciler::{PassReport, Reconciler};
use galaxy_runtime_testkit::store::restart_onto;
use serde_json::json;

/// A tiny deterministic generator, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())].clone())
    }
    fn game_id(&mut self) -> GameId {
        let bytes: [u8; 16] =
            (u128::from(self.next()) << 64 | u128::from(self.next())).to_be_bytes();
        GameId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

struct World {
    config: Config,
    clock: Arc<Mutex<Timestamp>>,
    docker: Arc<MemoryDocker>,
    store: Arc<MemoryStore>,
    engine: Arc<MemoryEngine>,
    lobby: Arc<MemoryLobby>,
    cache: Arc<MemoryCache>,
    scheduler: Arc<MemoryScheduler>,
    reconciler: Reconciler,
    rng: Rng,
    next_container: u64,
}

impl World {
    fn new(seed: u64, failure_threshold: u32) -> Self {
        let config = Config {
            failure_threshold: NonZeroU32::new(failure_threshold).unwrap(),
            ..Config::default()
        };
        let clock = Arc::new(Mutex::new(
            "2026-11-27T12:00:00Z".parse::<Timestamp>().unwrap(),
        ));
        let docker = Arc::new(MemoryDocker::new());
        let store = Arc::new(MemoryStore::new());
        let engine = Arc::new(MemoryEngine::new());
        let lobby = Arc::new(MemoryLobby::new());
        let cache = Arc::new(MemoryCache::new());
        let scheduler = Arc::new(MemoryScheduler::new());
        let now = Arc::clone(&clock);
        let reconciler = Reconciler::builder()
            .docker(docker.clone())
            .store(store.clone())
            .engine(engine.clone())
            .lobby(lobby.clone())
            .outbox(store.clone())
            .cache(cache.clone())
            .scheduler(scheduler.clone())
            .config(config.clone())
            .clock(Arc::new(move || *now.lock().unwrap()))
            .build()
            .unwrap();
        Self {
            config,
            clock,
            docker,
            store,
            engine,
            lobby,
            cache,
            scheduler,
            reconciler,
            rng: Rng(seed | 1),
            next_container: 0,
        }
    }

    fn now(&self) -> Timestamp {
        *self.clock.lock().unwrap()
    }

    fn endpoint(&self, game: GameId) -> String {
        format!(
            "http://{}{game}:{}",
            self.config.container_name_prefix, self.config.engine_port
        )
    }

    fn add_container(&mut self, game: GameId, state: ContainerState) -> String {
        self.next_container += 1;
        let id = format!("c{:06}", self.next_container);
        let mut container = MemoryDocker::game_container(&self.config, game, &id, state);
        container.created = self.now();
        self.docker.add(container);
        id
    }

    fn recorded_games(&self) -> Vec<GameId> {
        self.store.records().iter().map(|r| r.game_id).collect()
    }

    fn container_ids(&self) -> Vec<String> {
        self.docker.containers().into_iter().map(|c| c.id).collect()
    }

    /// One random change of the world (a few of them per step).
    async fn change(&mut self) {
        match self.rng.below(13) {
            // A game with a projection whose container nobody recorded: adopted.
            0 | 1 => {
                let game = self.rng.game_id();
                self.store.insert_game(GameProjection {
                    game_id: game,
                    turn_schedule: "0 */6 * * *".to_owned(),
                });
                self.engine
                    .set_json(&self.endpoint(game), json!({"turn": 0}));
                self.add_container(game, ContainerState::Running);
            }
            // A container of a game nobody knows: an orphan.
            2 => {
                let game = self.rng.game_id();
                self.add_container(game, ContainerState::Running);
            }
            // A container dies, or is removed, or comes back.
            3 => {
                if let Some(id) = self.rng.pick(&self.container_ids()) {
                    self.docker.kill(&id).unwrap();
                }
            }
            4 => {
                if let Some(id) = self.rng.pick(&self.container_ids()) {
                    self.docker.remove(&id).unwrap();
                }
            }
            5 => {
                if let Some(id) = self.rng.pick(&self.container_ids()) {
                    self.docker.start(&id).unwrap();
                }
            }
            // A second container for a recorded game (a start job retried by hand).
            6 => {
                if let Some(game) = self.rng.pick(&self.recorded_games()) {
                    let state = if self.rng.chance(50) {
                        ContainerState::Running
                    } else {
                        ContainerState::Exited
                    };
                    self.add_container(game, state);
                }
            }
            // An engine flaps.
            7 | 8 => {
                if let Some(game) = self.rng.pick(&self.recorded_games()) {
                    let endpoint = self.endpoint(game);
                    if self.rng.chance(50) {
                        self.engine.set_error(&endpoint, "connection reset by peer");
                    } else {
                        self.engine
                            .set_json(&endpoint, json!({"turn": self.rng.below(100)}));
                    }
                }
            }
            // A start job: a `starting` record, its container now or later.
            9 => {
                let game = self.rng.game_id();
                self.next_container += 1;
                let container_id = format!("c{:06}", self.next_container);
                let mut record = RuntimeRecord::new(game, RuntimeStatus::Starting, self.now());
                record.current_container_id = container_id.clone();
                record.engine_endpoint = self.endpoint(game);
                record.docker_network = self.config.docker_network.clone();
                self.store.create_record(record).await.unwrap();
                self.engine
                    .set_json(&self.endpoint(game), json!({"turn": 0}));
                if self.rng.chance(60) {
                    let mut c = MemoryDocker::game_container(
                        &self.config,
                        game,
                        &container_id,
                        ContainerState::Running,
                    );
                    c.created = self.now();
                    self.docker.add(c);
                }
            }
            // A stop job races the reconciler: its status change and its container's death.
            10 => {
                let live: Vec<RuntimeRecord> = self
                    .store
                    .records()
                    .into_iter()
                    .filter(|r| !r.is_terminal())
                    .collect();
                if let Some(record) = self.rng.pick(&live) {
                    let change = StatusChange {
                        game_id: record.game_id,
                        expected: Expected::of(&record),
                        to: RuntimeStatus::Stopped,
                        message: "stopped by the lobby".to_owned(),
                        at: self.now(),
                        event: None,
                    };
                    let _ = self.store.transition_status(change).await;
                    let _ = self.docker.kill(&record.current_container_id);
                }
            }
            // Someone relabels a container as unmanaged, or renames it: the listing misses it
            // or cannot name its game.
            11 => {
                if let Some(id) = self.rng.pick(&self.container_ids()) {
                    if self.rng.chance(50) {
                        self.docker
                            .set_label(&id, &self.config.managed_label, "no")
                            .unwrap();
                    } else {
                        self.docker.rename(&id, "/somebody-else").unwrap();
                    }
                }
            }
            // Time passes (start grace runs out).
            _ => {
                let minutes = 1 + self.rng.below(3) as u64;
                let mut clock = self.clock.lock().unwrap();
                *clock = clock.saturating_add(Duration::from_secs(60 * minutes));
            }
        }
    }

    fn statuses(&self) -> BTreeMap<GameId, RuntimeStatus> {
        self.store
            .records()
            .into_iter()
            .map(|r| (r.game_id, r.status))
            .collect()
    }
}

fn changes(report: &PassReport) -> u64 {
    report.applied["adopt"] + report.applied["rebind"] + report.applied["set_status"]
}

/// Runs `steps` steps of random changes, each followed by passes, checking every invariant.
async fn simulate(seed: u64, failure_threshold: u32, steps: usize) {
    let mut world = World::new(seed, failure_threshold);
    let mut terminal: HashMap<GameId, RuntimeStatus> = HashMap::new();
    let mut passes = 0;
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for step in 0..steps {
        let n = 1 + world.rng.below(4);
        for _ in 0..n {
            world.change().await;
        }

        // Now and then the daemon goes away for a pass: nothing may be written.
        if world.rng.chance(5) {
            world.docker.set_unavailable(true);
            let before = world.store.records();
            let writes = world.store.calls().writes();
            let err = world.reconciler.tick().await.expect_err("daemon down");
            assert!(err.is_observe(), "seed {seed} step {step}: {err}");
            assert_eq!(world.store.records(), before);
            assert_eq!(world.store.calls().writes(), writes);
            world.docker.set_unavailable(false);
        }

        let before = world.statuses();
        let lobby_before = world.lobby.results().len();
        let live_before = before.values().filter(|s| !s.is_terminal()).count();
        let report = world
            .reconciler
            .tick()
            .await
            .unwrap_or_else(|e| panic!("seed {seed} step {step}: pass failed: {e}"));
        // The relay delivers what the pass recorded (the loop runs it beside the passes).
        world
            .reconciler
            .deliver_events()
            .await
            .unwrap_or_else(|e| panic!("seed {seed} step {step}: relay failed: {e}"));
        passes += 1;
        let after = world.statuses();
        for (kind, n) in report.applied.iter().chain(report.findings.iter()) {
            *totals.entry(kind.clone()).or_default() += n;
        }
        *totals.entry("skipped_removals".to_owned()).or_default() += report.skipped_removals;

        // Forward-only, checked against every status ever seen terminal.
        for (game, status) in &after {
            if let Some(was) = terminal.get(game) {
                assert_eq!(status, was, "seed {seed} step {step}: {game} left {was}");
            }
        }
        for (game, status) in &after {
            if status.is_terminal() {
                terminal.entry(*game).or_insert(*status);
            }
        }

        // Every removal this pass made was told to the lobby, once.
        let removed: Vec<GameId> = after
            .iter()
            .filter(|(g, s)| {
                **s == RuntimeStatus::Removed && before.get(g) != Some(&RuntimeStatus::Removed)
            })
            .map(|(g, _)| *g)
            .collect();
        let told: Vec<GameId> = world.lobby.results()[lobby_before..]
            .iter()
            .map(|(g, r)| {
                assert_eq!(*r, JobResult::container_disappeared());
                *g
            })
            .collect();
        assert_eq!(told, removed, "seed {seed} step {step}: lobby told");

        // The removal guard: never more removals than it allows.
        let k = removed.len() as f64;
        assert!(
            k <= f64::from(world.config.removal_guard_min)
                || k <= world.config.removal_guard_fraction * live_before as f64,
            "seed {seed} step {step}: {k} removals of {live_before} live"
        );

        // Running adoptions are scheduled; the cache holds what the store returned.
        for record in world.store.records() {
            if !before.contains_key(&record.game_id) && record.status == RuntimeStatus::Running {
                assert!(
                    world.scheduler.is_scheduled(record.game_id),
                    "seed {seed}: not started"
                );
            }
            if let Some(cached) = world.cache.get_runtime(record.game_id)
                && report.applied_total() > 0
                && after.get(&record.game_id) != before.get(&record.game_id)
            {
                assert_eq!(
                    cached.status, record.status,
                    "seed {seed} step {step}: cache"
                );
            }
        }

        // Convergence: with nothing changed, `failure_threshold` passes at most settle the
        // probe counters; the pass after makes no adoption, rebind or status change.
        for _ in 1..failure_threshold {
            world.reconciler.tick().await.unwrap();
            passes += 1;
        }
        let again = world.reconciler.tick().await.unwrap();
        passes += 1;
        assert_eq!(
            changes(&again),
            0,
            "seed {seed} step {step}: a pass with nothing changed changed something: {again:?}"
        );
        assert_eq!(again.conflicts, 0);
    }
    assert!(passes >= steps * 2);
    // The simulation really went through every case it is meant to exercise.
    for kind in [
        "adopt",
        "rebind",
        "set_status",
        "set_probe_failures",
        "publish_snapshot",
        "duplicate_container",
        "orphan_container",
        "stale_container",
        "awaiting_container",
        "unrecognized_container",
        "skipped_removals",
    ] {
        assert!(totals[kind] > 0, "seed {seed}: no {kind} in {totals:?}");
    }
    let statuses = world.statuses();
    assert!(
        statuses.len() > 10,
        "seed {seed}: the fleet grew ({} records)",
        statuses.len()
    );
    assert!(
        statuses.values().any(|s| *s == RuntimeStatus::Removed),
        "seed {seed}: some removals happened"
    );
    assert!(
        world.scheduler.started().len() > 1,
        "seed {seed}: some adoptions happened"
    );
}

#[tokio::test(start_paused = true)]
async fn fleet_converges_and_stays_forward_only_with_threshold_one() {
    for seed in [1, 7, 42, 2026, 31337] {
        simulate(seed, 1, 150).await;
    }
}

#[tokio::test(start_paused = true)]
async fn fleet_converges_and_stays_forward_only_with_the_default_threshold() {
    for seed in [3, 99, 12345] {
        simulate(seed, 3, 150).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_daemon_that_suddenly_lists_nothing_removes_nothing() {
    let mut world = World::new(5, 1);
    for _ in 0..30 {
        let game = world.rng.game_id();
        world.store.insert_game(GameProjection {
            game_id: game,
            turn_schedule: String::new(),
        });
        world.engine.set_json(&world.endpoint(game), json!({}));
        world.add_container(game, ContainerState::Running);
    }
    let report = world.reconciler.tick().await.unwrap();
    assert_eq!(report.applied["adopt"], 30);
    let stash = world.docker.containers();
    world.docker.clear();
    for _ in 0..3 {
        let report = world.reconciler.tick().await.unwrap();
        assert_eq!(report.findings["removal_guard_tripped"], 1);
        assert_eq!(report.applied_total(), 0);
    }
    assert!(
        world
            .store
            .records()
            .iter()
            .all(|r| r.status == RuntimeStatus::Running)
    );
    for container in stash {
        world.docker.add(container);
    }
    let report = world.reconciler.tick().await.unwrap();
    assert_eq!(changes(&report), 0);
    assert_eq!(report.applied["publish_snapshot"], 30);
}

#[tokio::test(start_paused = true)]
async fn an_unmanaged_container_is_never_removed_under_a_record() {
    let mut world = World::new(11, 1);
    let game = world.rng.game_id();
    world.store.insert_game(GameProjection {
        game_id: game,
        turn_schedule: String::new(),
    });
    world.engine.set_json(&world.endpoint(game), json!({}));
    let id = world.add_container(game, ContainerState::Running);
    world.reconciler.tick().await.unwrap();
    world
        .docker
        .set_label(&id, "galaxy.managed", "false")
        .unwrap();
    for _ in 0..3 {
        let report = world.reconciler.tick().await.unwrap();
        assert_eq!(report.skipped_removals, 1);
    }
    assert_eq!(
        world.store.record(game).unwrap().status,
        RuntimeStatus::Running
    );
    world.docker.remove(&id).unwrap();
    let report = world.reconciler.tick().await.unwrap();
    world.reconciler.deliver_events().await.unwrap();
    assert_eq!(report.applied["set_status"], 1);
    assert_eq!(
        world.store.record(game).unwrap().status,
        RuntimeStatus::Removed
    );
    assert_eq!(
        world.lobby.results_for(game),
        [JobResult::container_disappeared()]
    );
}

/// A pass plans the removal of a game whose container vanished; before it applies, a restart
/// job starts a new container and points the record at it. The memory store hands a pass the
/// rows it holds, not copies, so this is where the job's write could show through the listing
/// the plan was made from — and the compare-and-set would then compare with the job's row and
/// let the removal through. The listing must stay what was listed: the removal is a conflict.
#[tokio::test(start_paused = true)]
async fn a_record_moved_after_the_listing_is_not_removed() {
    let mut world = World::new(17, 1);
    let game = world.rng.game_id();
    let record = RuntimeRecord {
        current_container_id: "c-vanished".to_owned(),
        ..RuntimeRecord::new(game, RuntimeStatus::Running, world.now())
    };
    world.store.insert_record(record.clone());

    let (scenario, plan) = world.reconciler.tick_dry_run().await.unwrap();
    assert!(plan.actions.iter().any(|a| a.is_removal()), "{plan:?}");

    let new = world.add_container(game, ContainerState::Running);
    world
        .store
        .rebind(restart_onto(&record, &new))
        .await
        .unwrap();
    assert_eq!(
        scenario.records[0].current_container_id, "c-vanished",
        "the listing is what was listed"
    );

    let report = world.reconciler.apply(&scenario, &plan).await.unwrap();
    assert_eq!(report.conflicts, 1, "{report:?}");
    assert_eq!(report.applied["set_status"], 0, "{report:?}");
    let now = world.store.record(game).unwrap();
    assert_eq!(now.status, RuntimeStatus::Running);
    assert_eq!(now.current_container_id, new);
    assert!(
        world.lobby.results().is_empty(),
        "nothing is sent to the lobby"
    );
}

/// A quick pass finds the unrecorded games while it plans and loads their projections in
/// between: an unrecorded container is adopted by a quick pass, and when the load fails the
/// adoption fails with the load's error — nothing adopted, nothing called an orphan — and the
/// next quick pass adopts it.
#[tokio::test(start_paused = true)]
async fn a_quick_pass_loads_the_projections_of_the_games_it_finds_unrecorded() {
    let mut world = World::new(23, 1);
    let recorded = world.rng.game_id();
    let recorded_container = world.add_container(recorded, ContainerState::Running);
    world.store.insert_record(RuntimeRecord {
        current_container_id: recorded_container,
        ..RuntimeRecord::new(recorded, RuntimeStatus::Running, world.now())
    });
    let unrecorded = world.rng.game_id();
    let container = world.add_container(unrecorded, ContainerState::Running);
    world.store.insert_game(GameProjection {
        game_id: unrecorded,
        turn_schedule: "0 * * * *".to_owned(),
    });

    world.store.fail_next(
        StoreMethod::LoadGameProjections,
        PortError::invalid("projections unreachable"),
    );
    let failed = world.reconciler.tick_quick().await.unwrap_err();
    let report = failed.report();
    assert_eq!(report.failures, 1, "{report:?}");
    assert_eq!(
        report.findings.get("adoption_undecided"),
        Some(&1),
        "{report:?}"
    );
    assert_eq!(
        report.findings.get("orphan_container"),
        Some(&0),
        "{report:?}"
    );
    assert!(world.store.record(unrecorded).is_none(), "nothing adopted");
    assert!(
        failed.to_string().contains("load game projections"),
        "{failed}"
    );

    world.store.reset_calls();
    let report = world.reconciler.tick_quick().await.unwrap();
    assert_eq!(report.applied.get("adopt"), Some(&1), "{report:?}");
    assert_eq!(report.probes, 0, "{report:?}");
    assert_eq!(
        world.store.calls().load_game_projections,
        1,
        "one load, of one game"
    );
    let adopted = world.store.record(unrecorded).expect("adopted");
    assert_eq!(adopted.current_container_id, container);
    assert_eq!(adopted.turn_schedule, "0 * * * *");
}
