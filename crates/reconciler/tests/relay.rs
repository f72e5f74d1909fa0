//! The lobby is always told: events recorded with their status changes reach the lobby through
//! the relay, at least once, in commit order per game, with their ids, beside the loop and never
//! inside a pass — whatever the lobby does, and across crashes and replicas.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_memory::{
    MemoryCache, MemoryDocker, MemoryEngine, MemoryLobby, MemoryScheduler, MemoryStore,
};
use galaxy_runtime_model::{Config, EventId, GameId, LobbyEvent, RuntimeStatus, Timestamp};
use galaxy_runtime_ports::{Component, LeaderLock, LobbyPort, PortError, PortResult};
use galaxy_runtime_reconciler::Reconciler;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A lobby that answers after a latency, fails while told to, and records every attempt with
/// its time and the events in flight at once.
#[derive(Default)]
struct WatchedLobby {
    inner: MemoryLobby,
    state: Mutex<Watched>,
}

#[derive(Default)]
struct Watched {
    /// (time since start, event id, accepted) of every attempt, in order.
    attempts: Vec<(Duration, EventId, bool)>,
    in_flight: BTreeSet<EventId>,
    /// Whether one event was ever in flight twice at once.
    overlapped: bool,
    failing_until: Option<Instant>,
    start: Option<Instant>,
}

impl WatchedLobby {
    fn new(start: Instant) -> Self {
        let lobby = Self::default();
        lobby.state.lock().unwrap().start = Some(start);
        lobby
    }

    fn fail_until(&self, at: Instant) {
        self.state.lock().unwrap().failing_until = Some(at);
    }

    fn attempts(&self) -> Vec<(Duration, EventId, bool)> {
        self.state.lock().unwrap().attempts.clone()
    }
}

#[async_trait]
impl LobbyPort for WatchedLobby {
    async fn on_runtime_job_result(&self, event: &LobbyEvent) -> PortResult<()> {
        let failing = {
            let mut state = self.state.lock().unwrap();
            if !state.in_flight.insert(event.event_id) {
                state.overlapped = true;
            }
            state
                .failing_until
                .is_some_and(|until| Instant::now() < until)
        };
        let answer = if failing {
            Err(PortError::unavailable(
                "lobby answered 503",
                std::io::Error::other("service unavailable"),
            ))
        } else {
            self.inner.on_runtime_job_result(event).await
        };
        let mut state = self.state.lock().unwrap();
        state.in_flight.remove(&event.event_id);
        let since = Instant::now() - state.start.unwrap_or_else(Instant::now);
        state.attempts.push((since, event.event_id, answer.is_ok()));
        answer
    }
}

/// A world of `games` running games, and a reconciler on it with `lobby`.
struct World {
    docker: Arc<MemoryDocker>,
    store: Arc<MemoryStore>,
    records: Vec<galaxy_runtime_model::RuntimeRecord>,
}

impl World {
    fn new(config: &Config, games: usize) -> Self {
        let docker = Arc::new(MemoryDocker::new());
        let store = Arc::new(MemoryStore::new());
        let records = (0..games)
            .map(|i| {
                let game = support::gid(i as u32);
                let id = format!("c{i}");
                docker.add(MemoryDocker::game_container(
                    config,
                    game,
                    &id,
                    galaxy_runtime_model::ContainerState::Running,
                ));
                let record = support::record(game, RuntimeStatus::Running, &id);
                store.insert_record(record.clone());
                record
            })
            .collect();
        Self {
            docker,
            store,
            records,
        }
    }

    fn reconciler(
        &self,
        config: &Config,
        lobby: Arc<dyn LobbyPort>,
        leader: Option<galaxy_runtime_memory::MemoryLeaderLock>,
        start: Timestamp,
        clock_base: Instant,
    ) -> Reconciler {
        let engine = Arc::new(MemoryEngine::new());
        engine.set_default_answer(Some(galaxy_runtime_memory::EngineAnswer::Json(
            serde_json::json!({"turn": 1}),
        )));
        let store: Arc<MemoryStore> = match &leader {
            Some(lock) => Arc::new(self.store.fenced(lock)),
            None => self.store.clone(),
        };
        let builder = Reconciler::builder()
            .docker(self.docker.clone())
            .store(store.clone())
            .outbox(store)
            .engine(engine)
            .lobby(lobby)
            .cache(Arc::new(MemoryCache::new()))
            .scheduler(Arc::new(MemoryScheduler::new()))
            .config(config.clone())
            // The pass clock follows tokio's (paused) clock.
            .clock(Arc::new(move || start.saturating_add(clock_base.elapsed())));
        match leader {
            Some(lock) => builder.leader(Arc::new(lock) as Arc<dyn LeaderLock>),
            None => builder,
        }
        .build()
        .expect("every port given")
    }

    /// Every container removed: every game's record will be marked removed.
    fn remove_all(&self) {
        for record in &self.records {
            let _ = self.docker.remove(&record.current_container_id);
        }
    }
}

fn config() -> Config {
    Config {
        reconcile_interval: Duration::from_secs(30),
        lobby_timeout: Duration::from_secs(2),
        retry_backoff: Duration::from_secs(1),
        lobby_retry_max: Duration::from_secs(16),
        outbox_sweep: Duration::from_secs(5),
        ..Config::default()
    }
}

fn start_time() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

/// A removal's event reaches the lobby once the loop runs, with the outbox's id and the
/// commit time of the change; it is recorded as delivered.
#[tokio::test(start_paused = true)]
async fn the_loop_delivers_each_removal_with_its_id() {
    let config = config();
    let world = World::new(&config, 3);
    world.remove_all();
    let base = Instant::now();
    let lobby = Arc::new(WatchedLobby::new(base));
    let reconciler = world.reconciler(&config, lobby.clone(), None, start_time(), base);
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (reconciler, cancel) = (reconciler.clone(), cancel.clone());
        async move { reconciler.run(cancel).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = world.store.events();
    assert_eq!(events.len(), 3, "one event per removal: {events:?}");
    let delivered: BTreeSet<EventId> = lobby.inner.events().iter().map(|e| e.event_id).collect();
    let recorded: BTreeSet<EventId> = events.iter().map(|e| e.event.event_id).collect();
    assert_eq!(
        delivered, recorded,
        "the lobby got exactly the outbox's events"
    );
    assert!(events.iter().all(|e| e.delivered_at.is_some()));
    for event in lobby.inner.events() {
        let record = world.store.record(event.game_id).unwrap();
        assert_eq!(event.at, record.status_changed_at, "at is the commit time");
        assert_eq!(event.result.status, RuntimeStatus::Removed);
    }
    cancel.cancel();
    run.await.unwrap().unwrap();
}

/// A lobby that hangs: the pass completes in its usual time (it never waits for the lobby),
/// each attempt gives up after `lobby_timeout`, and the event is delivered once the lobby
/// answers again.
#[tokio::test(start_paused = true)]
async fn a_hanging_lobby_never_slows_a_pass() {
    let config = config();
    let world = World::new(&config, 1);
    world.remove_all();
    let base = Instant::now();
    let lobby = Arc::new(WatchedLobby::new(base));
    lobby.inner.set_latency(Duration::from_secs(3_600));
    let reconciler = world.reconciler(&config, lobby.clone(), None, start_time(), base);
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (reconciler, cancel) = (reconciler.clone(), cancel.clone());
        async move { reconciler.run(cancel).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let record = world.store.record(world.records[0].game_id).unwrap();
    assert_eq!(
        record.status,
        RuntimeStatus::Removed,
        "the pass applied at once"
    );
    // A second pass, triggered while the relay's attempt hangs, runs at once too.
    world.store.insert_record(support::record(
        support::gid(7),
        RuntimeStatus::Running,
        "gone",
    ));
    reconciler.trigger();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        world.store.record(support::gid(7)).unwrap().status,
        RuntimeStatus::Removed,
        "a pass does not wait for the lobby"
    );
    // The hanging attempts time out; the lobby recovers; both events arrive.
    tokio::time::sleep(Duration::from_secs(10)).await;
    lobby.inner.set_latency(Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(lobby.inner.events().len(), 2, "{:?}", lobby.attempts());
    assert!(
        world
            .store
            .events()
            .iter()
            .all(|e| e.delivered_at.is_some())
    );
    cancel.cancel();
    run.await.unwrap().unwrap();
}

/// A lobby that answers 503 for a while: every event is retried with growing delays (1 s,
/// 2 s, 4 s …, jittered in the upper half, capped), none is lost, and a game's events arrive
/// in commit order, the next only after the previous was accepted.
#[tokio::test(start_paused = true)]
async fn a_failing_lobby_is_retried_with_growing_delays_and_nothing_is_lost() {
    let config = Config {
        lobby_statuses: vec![RuntimeStatus::EngineUnreachable, RuntimeStatus::Removed],
        failure_threshold: std::num::NonZeroU32::MIN,
        ..config()
    };
    let world = World::new(&config, 4);
    let base = Instant::now();
    let lobby = Arc::new(WatchedLobby::new(base));
    lobby.fail_until(base + Duration::from_secs(40));
    let reconciler = world.reconciler(&config, lobby.clone(), None, start_time(), base);
    // Each game: its container exits (engine_unreachable), then vanishes (removed): two
    // events per game, in that order.
    for record in &world.records {
        world.docker.kill(&record.current_container_id).unwrap();
    }
    reconciler.tick().await.expect("first pass");
    world.remove_all();
    reconciler.tick().await.expect("second pass");
    assert_eq!(world.store.events().len(), 8);

    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (reconciler, cancel) = (reconciler.clone(), cancel.clone());
        async move { reconciler.run(cancel).await }
    });
    tokio::time::sleep(Duration::from_secs(120)).await;
    cancel.cancel();
    run.await.unwrap().unwrap();

    let events = world.store.events();
    assert!(
        events.iter().all(|e| e.delivered_at.is_some()),
        "none lost: {events:?}"
    );
    let accepted: Vec<LobbyEvent> = lobby.inner.events();
    // Per game, in commit order.
    let mut by_game: BTreeMap<GameId, Vec<RuntimeStatus>> = BTreeMap::new();
    for event in &accepted {
        by_game
            .entry(event.game_id)
            .or_default()
            .push(event.result.status);
    }
    for statuses in by_game.values() {
        assert_eq!(
            statuses,
            &[RuntimeStatus::EngineUnreachable, RuntimeStatus::Removed],
            "a game's events in commit order"
        );
    }
    assert_eq!(by_game.len(), 4);
    // The first event of a game was tried at growing intervals while the lobby failed.
    let first = events[0].event.event_id;
    let times: Vec<Duration> = lobby
        .attempts()
        .iter()
        .filter(|(_, id, _)| *id == first)
        .map(|(at, _, _)| *at)
        .collect();
    assert!(times.len() >= 4, "retried: {times:?}");
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // The relay never pauses less than 50 ms between rounds (so that a due time not quite due
    // does not spin): an event due within 50 ms after another's is tried up to 50 ms late.
    let min_pause = Duration::from_millis(50);
    for (i, gap) in gaps.iter().take(4).enumerate() {
        let ceiling = Duration::from_secs(1 << i);
        assert!(
            *gap >= ceiling / 2 && *gap <= ceiling + min_pause,
            "retry {i} after {gap:?}, expected within the upper half of {ceiling:?}: {gaps:?}"
        );
    }
    // The second event of a game was never tried before its first was accepted.
    for (game, _) in by_game {
        let of_game: Vec<&galaxy_runtime_model::OutboxEntry> =
            events.iter().filter(|e| e.event.game_id == game).collect();
        let accepted_first = lobby
            .attempts()
            .iter()
            .find(|(_, id, ok)| *id == of_game[0].event.event_id && *ok)
            .map(|(at, _, _)| *at)
            .unwrap();
        let tried_second = lobby
            .attempts()
            .iter()
            .find(|(_, id, _)| *id == of_game[1].event.event_id)
            .map(|(at, _, _)| *at)
            .unwrap();
        assert!(tried_second >= accepted_first);
    }
}

/// A process that dies after its removal committed (before any delivery): the event waits in
/// the outbox, and the next process delivers it, with the same id.
#[tokio::test(start_paused = true)]
async fn after_a_crash_the_next_process_delivers_what_was_committed() {
    let config = config();
    let world = World::new(&config, 2);
    world.remove_all();
    let base = Instant::now();
    let first = world.reconciler(
        &config,
        Arc::new(MemoryLobby::new()),
        None,
        start_time(),
        base,
    );
    first.tick().await.expect("the pass commits its removals");
    let committed: BTreeSet<EventId> = world
        .store
        .events()
        .iter()
        .map(|e| e.event.event_id)
        .collect();
    assert_eq!(committed.len(), 2);
    drop(first); // the process dies: its relay never ran

    let lobby = Arc::new(WatchedLobby::new(base));
    let second = world.reconciler(&config, lobby.clone(), None, start_time(), base);
    let report = second.deliver_events().await.expect("a round");
    assert_eq!(report.delivered, 2);
    let delivered: BTreeSet<EventId> = lobby.inner.events().iter().map(|e| e.event_id).collect();
    assert_eq!(delivered, committed, "the same events, by id");
}

/// Two replicas on one store, both running their loops: the leader delivers; when it loses the
/// lock the other takes over. Every event is delivered, and no event is ever in flight to the
/// lobby from both at once.
#[tokio::test(start_paused = true)]
async fn two_replicas_never_send_one_event_at_once() {
    // Forty removals at once would trip the removal guard; here they are meant.
    let config = Config {
        removal_guard_min: 100,
        ..config()
    };
    let world = World::new(&config, 40);
    world.remove_all();
    let base = Instant::now();
    let lobby = Arc::new(WatchedLobby::new(base));
    lobby.inner.set_latency(Duration::from_millis(300));
    let (lock_a, lock_b) = (world.store.leader_lock(), world.store.leader_lock());
    let a = world.reconciler(&config, lobby.clone(), Some(lock_a), start_time(), base);
    let b = world.reconciler(&config, lobby.clone(), Some(lock_b), start_time(), base);
    let cancel = CancellationToken::new();
    let runs: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|reconciler| {
            let cancel = cancel.clone();
            tokio::spawn(async move { reconciler.run(cancel).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The leader's session ends mid-delivery; the other replica takes over at its next pass.
    world.store.end_leader_session();
    tokio::time::sleep(Duration::from_secs(120)).await;
    cancel.cancel();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    assert!(
        !lobby.state.lock().unwrap().overlapped,
        "an event was in flight from two relays at once"
    );
    let delivered: BTreeSet<EventId> = lobby.inner.events().iter().map(|e| e.event_id).collect();
    assert_eq!(delivered.len(), 40, "every event delivered");
    assert!(
        world
            .store
            .events()
            .iter()
            .all(|e| e.delivered_at.is_some())
    );
    assert_eq!(world.store.writes_without_lock(), 0);
}
