//! The reconcile loop under paused time: start-up pass, interval, triggers, cancellation,
//! shutdown, errors and panics.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_memory::{
    DockerMethod, EngineAnswer, MemoryCache, MemoryDocker, MemoryEngine, MemoryLobby,
    MemoryScheduler, MemoryStore,
};
use galaxy_runtime_model::{Config, ContainerState, ContainerSummary, GameId, RuntimeStatus};
use galaxy_runtime_ports::{Component, DockerPort, LabelFilter, PortError, PortResult};
use galaxy_runtime_reconciler::Reconciler;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

const INTERVAL: Duration = Duration::from_secs(30);

/// A Docker daemon that counts passes (one listing each) and can panic on chosen listings.
struct CountingDocker {
    inner: MemoryDocker,
    listings: AtomicUsize,
    panic_on: Vec<usize>,
    /// How long a listing takes, in milliseconds (tokio time).
    list_latency_ms: AtomicUsize,
}

#[async_trait]
impl DockerPort for CountingDocker {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        let n = self.listings.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(
            !self.panic_on.contains(&n),
            "docker client bug on listing {n}"
        );
        let latency = self.list_latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            sleep(Duration::from_millis(latency as u64)).await;
        }
        self.inner.list_managed(filter).await
    }
    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        self.inner.inspect(container_id).await
    }
}

struct Fleet {
    reconciler: Reconciler,
    docker: Arc<CountingDocker>,
    store: Arc<MemoryStore>,
}

impl Fleet {
    /// One running game whose engine takes `latency` to answer: a pass takes that long.
    fn new(latency: Duration, jitter: Duration, panic_on: Vec<usize>) -> Self {
        let config = Config {
            reconcile_interval: INTERVAL,
            reconcile_jitter: jitter,
            probe_timeout: Duration::from_secs(60),
            ..Config::default()
        };
        let game = GameId::new_random();
        let docker = Arc::new(CountingDocker {
            inner: MemoryDocker::new(),
            listings: AtomicUsize::new(0),
            panic_on,
            list_latency_ms: AtomicUsize::new(0),
        });
        docker.inner.add(MemoryDocker::game_container(
            &config,
            game,
            "c1",
            ContainerState::Running,
        ));
        let store = Arc::new(MemoryStore::new());
        store.insert_record(support::record(game, RuntimeStatus::Running, "c1"));
        let engine = Arc::new(MemoryEngine::new());
        engine.set_default_answer(Some(EngineAnswer::Json(serde_json::json!({"turn": 1}))));
        engine.set_default_latency(latency);
        let reconciler = Reconciler::builder()
            .docker(docker.clone())
            .store(store.clone())
            .engine(engine)
            .lobby(Arc::new(MemoryLobby::new()))
            .outbox(store.clone())
            .cache(Arc::new(MemoryCache::new()))
            .scheduler(Arc::new(MemoryScheduler::new()))
            .config(config)
            .build()
            .expect("built");
        Self {
            reconciler,
            docker,
            store,
        }
    }

    fn passes(&self) -> usize {
        self.docker.listings.load(Ordering::SeqCst)
    }

    fn snapshots_published(&self) -> u64 {
        self.store.calls().snapshots_published
    }

    fn spawn(&self, cancel: &CancellationToken) -> JoinHandle<PortResult<()>> {
        let reconciler = self.reconciler.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move { reconciler.run(cancel).await })
    }
}

/// Sleeps until `at` after `start`.
async fn until(start: Instant, at: Duration) {
    tokio::time::sleep_until(start + at).await;
}

#[tokio::test(start_paused = true)]
async fn start_up_pass_at_once_then_one_per_interval() {
    let fleet = Fleet::new(Duration::ZERO, Duration::ZERO, vec![]);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);

    until(start, Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 1, "start-up pass at once");
    assert_eq!(fleet.snapshots_published(), 1);
    until(start, INTERVAL - Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 1);
    until(start, INTERVAL + Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 2);
    until(start, 3 * INTERVAL + Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 4);
    assert!(fleet.reconciler.is_running());

    cancel.cancel();
    run.await.unwrap().expect("loop ends cleanly");
    assert!(!fleet.reconciler.is_running());
    until(start, 10 * INTERVAL).await;
    assert_eq!(fleet.passes(), 4, "no pass after cancellation");
}

/// A trigger makes a quick pass at once, which never waits for the full pass's probing (the
/// start-up pass probes an engine that takes 5 s) and does not move the interval: the next full
/// pass comes 30 s after the first began.
#[tokio::test(start_paused = true)]
async fn a_trigger_makes_a_quick_pass_that_never_waits_for_a_full_pass() {
    let pass = Duration::from_secs(5);
    let fleet = Fleet::new(pass, Duration::ZERO, vec![]);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);

    until(start, Duration::from_secs(1)).await;
    assert_eq!(fleet.passes(), 1, "the full start-up pass probes until 5s");
    let handle = fleet.reconciler.trigger_handle();
    let as_fn = handle.clone().into_fn();
    fleet.reconciler.trigger();
    handle.trigger();
    as_fn();
    until(start, Duration::from_secs(1) + Duration::from_millis(1)).await;
    assert_eq!(
        fleet.passes(),
        2,
        "one quick pass at once, beside the full pass in flight; the triggers folded"
    );
    until(start, INTERVAL - Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 2);
    assert_eq!(
        fleet.snapshots_published(),
        1,
        "the quick pass probed nothing"
    );
    until(start, INTERVAL + Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 3, "the full passes keep their interval");

    cancel.cancel();
    run.await.unwrap().unwrap();
}

/// Triggers that arrive during a quick pass fold into one follow-up quick pass.
#[tokio::test(start_paused = true)]
async fn triggers_during_a_quick_pass_fold_into_one_follow_up() {
    let fleet = Fleet::new(Duration::ZERO, Duration::ZERO, vec![]);
    fleet.docker.list_latency_ms.store(2_000, Ordering::SeqCst);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);
    // The full start-up pass lists from 0 to 2 s; a quick pass from 0.5 s to 2.5 s.
    until(start, Duration::from_millis(500)).await;
    fleet.reconciler.trigger();
    for at in [1_000, 1_500, 2_000] {
        until(start, Duration::from_millis(at)).await;
        fleet.reconciler.trigger();
    }
    until(start, Duration::from_millis(2_400)).await;
    assert_eq!(fleet.passes(), 2, "the full pass and the first quick pass");
    // One follow-up quick pass, from 2.5 s to 4.5 s, and nothing after it.
    until(start, Duration::from_millis(2_600)).await;
    assert_eq!(fleet.passes(), 3);
    until(start, Duration::from_secs(20)).await;
    assert_eq!(
        fleet.passes(),
        3,
        "the triggers folded into one follow-up pass"
    );
    cancel.cancel();
    run.await.unwrap().unwrap();
}

/// An event storm (a trigger every 10 ms for 2 s) makes quick passes at least
/// `quick_pass_min_gap` (200 ms) apart, not one per event.
#[tokio::test(start_paused = true)]
async fn an_event_storm_is_bounded_by_the_minimum_gap() {
    let fleet = Fleet::new(Duration::ZERO, Duration::ZERO, vec![]);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);
    until(start, Duration::from_millis(1)).await;
    for i in 1..=200 {
        until(start, Duration::from_millis(10 * i)).await;
        fleet.reconciler.trigger();
    }
    until(start, Duration::from_millis(2_500)).await;
    let quick = fleet.passes() - 1;
    assert!(
        (9..=11).contains(&quick),
        "{quick} quick passes for 200 events over 2 s"
    );
    cancel.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_trigger_between_passes_wakes_the_loop_at_once() {
    let fleet = Fleet::new(Duration::ZERO, Duration::ZERO, vec![]);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);
    until(start, Duration::from_secs(10)).await;
    assert_eq!(fleet.passes(), 1);
    fleet.reconciler.trigger();
    until(start, Duration::from_secs(10) + Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 2);
    cancel.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn cancellation_mid_pass_finishes_the_pass_and_stops() {
    let pass = Duration::from_secs(5);
    let fleet = Fleet::new(pass, Duration::ZERO, vec![]);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);

    until(start, Duration::from_secs(1)).await;
    assert_eq!(fleet.snapshots_published(), 0, "the pass is probing");
    cancel.cancel();
    run.await.unwrap().expect("loop ends cleanly");
    assert_eq!(
        start.elapsed(),
        pass,
        "returned when the pass in flight finished"
    );
    assert_eq!(
        fleet.snapshots_published(),
        1,
        "the pass in flight was applied"
    );
    until(start, 5 * INTERVAL).await;
    assert_eq!(fleet.passes(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_the_loop_after_the_pass_in_flight_and_waits() {
    let pass = Duration::from_secs(5);
    let fleet = Fleet::new(pass, Duration::ZERO, vec![]);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);

    until(start, Duration::from_secs(1)).await;
    fleet.reconciler.shutdown().await.expect("shut down");
    assert_eq!(start.elapsed(), pass);
    assert!(!fleet.reconciler.is_running());
    assert_eq!(fleet.snapshots_published(), 1);
    run.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_without_a_loop_returns_at_once() {
    let fleet = Fleet::new(Duration::ZERO, Duration::ZERO, vec![]);
    let start = Instant::now();
    fleet.reconciler.shutdown().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_port_does_not_kill_the_loop() {
    let fleet = Fleet::new(Duration::ZERO, Duration::ZERO, vec![1]);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);

    until(start, Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 1);
    assert_eq!(fleet.snapshots_published(), 0, "the start-up pass panicked");
    until(start, INTERVAL + Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 2);
    assert_eq!(fleet.snapshots_published(), 1, "the next pass worked");
    // A pass after a panic is not blocked by the panicked one (no poisoned lock).
    fleet
        .reconciler
        .tick()
        .await
        .expect("manual pass works too");
    cancel.cancel();
    run.await.unwrap().unwrap();
}

/// An error that retrying cannot mend (here a listing Docker answered as malformed) waits for
/// the next interval.
#[tokio::test(start_paused = true)]
async fn a_pass_error_is_logged_and_the_loop_goes_on() {
    let fleet = Fleet::new(Duration::ZERO, Duration::ZERO, vec![]);
    fleet.docker.inner.fail_next(
        DockerMethod::ListManaged,
        PortError::invalid("the daemon's answer does not parse"),
    );
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);
    until(start, Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 1);
    assert_eq!(
        fleet.store.calls().list_records,
        0,
        "a failed listing reads no records"
    );
    until(start, INTERVAL - Duration::from_millis(1)).await;
    assert_eq!(
        fleet.passes(),
        1,
        "not worth retrying: no pass before the interval"
    );
    until(start, INTERVAL + Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 2);
    assert_eq!(fleet.snapshots_published(), 1);
    cancel.cancel();
    run.await.unwrap().unwrap();
}

/// A transient failure (the daemon is away) is retried with jittered exponential backoff —
/// after 0.5–1 s, then 1–2 s, then 2–4 s … — well before the interval, and a success resets it.
#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_sooner_with_growing_delays() {
    let fleet = Fleet::new(Duration::ZERO, Duration::ZERO, vec![]);
    fleet.docker.inner.set_unavailable(true);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);
    // Failed passes at 0, then within [0.5, 1] s, then within a further [1, 2] s, [2, 4] s.
    until(start, Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 1);
    until(start, Duration::from_millis(499)).await;
    assert_eq!(
        fleet.passes(),
        1,
        "the first retry waits at least half of 1s"
    );
    until(start, Duration::from_millis(1_001)).await;
    assert_eq!(fleet.passes(), 2, "the first retry comes within 1s");
    until(start, Duration::from_millis(1_499)).await;
    assert_eq!(fleet.passes(), 2, "the second waits at least 1s more");
    until(start, Duration::from_millis(3_002)).await;
    assert_eq!(fleet.passes(), 3, "the second comes within 2s more");
    until(start, Duration::from_millis(7_003)).await;
    assert_eq!(fleet.passes(), 4, "the third comes within 4s more");
    // The daemon is back: the next retry succeeds, and then only the interval wakes the loop.
    fleet.docker.inner.set_unavailable(false);
    until(start, Duration::from_millis(15_004)).await;
    assert_eq!(
        fleet.passes(),
        5,
        "the fourth retry (within 8s more) succeeds"
    );
    assert_eq!(fleet.snapshots_published(), 1);
    until(start, INTERVAL - Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 5, "after a success, no retry");
    cancel.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn never_two_passes_at_once() {
    let pass = Duration::from_secs(5);
    let fleet = Fleet::new(pass, Duration::ZERO, vec![]);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);
    until(start, Duration::from_secs(1)).await;
    // A manual pass waits for the loop's pass in flight, then takes its own 5s.
    fleet.reconciler.tick().await.expect("pass ok");
    assert_eq!(start.elapsed(), 2 * pass);
    assert_eq!(fleet.passes(), 2);
    cancel.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_second_run_is_refused() {
    let fleet = Fleet::new(Duration::ZERO, Duration::ZERO, vec![]);
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);
    sleep(Duration::from_millis(1)).await;
    let err = fleet
        .reconciler
        .run(cancel.clone())
        .await
        .expect_err("already running");
    assert!(err.is_conflict(), "{err}");
    cancel.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_periodic_passes_within_its_bound() {
    let jitter = Duration::from_secs(10);
    let fleet = Fleet::new(Duration::ZERO, jitter, vec![]);
    let start = Instant::now();
    let cancel = CancellationToken::new();
    let run = fleet.spawn(&cancel);
    until(start, Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 1, "the start-up pass has no jitter");
    until(start, INTERVAL - Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 1);
    until(start, INTERVAL + jitter + Duration::from_millis(1)).await;
    assert_eq!(fleet.passes(), 2);
    cancel.cancel();
    run.await.unwrap().unwrap();
}

/// Records what a [`ProbeProgress`] is told.
#[derive(Default)]
struct Progress(std::sync::Mutex<Vec<String>>);

impl galaxy_runtime_reconciler::ProbeProgress for Progress {
    fn started(&self, total: usize) {
        self.0.lock().unwrap().push(format!("started {total}"));
    }
    fn probed(&self, failed: bool) {
        self.0
            .lock()
            .unwrap()
            .push(if failed { "failed" } else { "ok" }.to_owned());
    }
    fn finished(&self) {
        self.0.lock().unwrap().push("finished".to_owned());
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_pass_tells_its_progress_probe_by_probe_and_a_quick_pass_tells_nothing() {
    let config = Config::default();
    let docker = Arc::new(MemoryDocker::new());
    let store = Arc::new(MemoryStore::new());
    let engine = Arc::new(MemoryEngine::new());
    for n in 0..5 {
        let game = GameId::new_random();
        let id = format!("c{n}");
        docker.add(MemoryDocker::game_container(
            &config,
            game,
            &id,
            ContainerState::Running,
        ));
        let endpoint = format!("http://engine-{n}:8080");
        let mut record = support::record(game, RuntimeStatus::Running, &id);
        record.engine_endpoint = endpoint.clone();
        store.insert_record(record);
        if n < 2 {
            engine.set_error(&endpoint, "connection refused");
        } else {
            engine.set_json(&endpoint, serde_json::json!({"turn": n}));
        }
    }
    let progress = Arc::new(Progress::default());
    let reconciler = Reconciler::builder()
        .docker(docker)
        .store(store.clone())
        .engine(engine)
        .lobby(Arc::new(MemoryLobby::new()))
        .outbox(store)
        .cache(Arc::new(MemoryCache::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(config)
        .probe_progress(progress.clone())
        .build()
        .expect("built");

    reconciler.tick().await.expect("a full pass");
    let told = std::mem::take(&mut *progress.0.lock().unwrap());
    assert_eq!(
        told.first().map(String::as_str),
        Some("started 5"),
        "{told:?}"
    );
    assert_eq!(
        told.last().map(String::as_str),
        Some("finished"),
        "{told:?}"
    );
    let count = |what: &str| told.iter().filter(|t| *t == what).count();
    assert_eq!((count("ok"), count("failed")), (3, 2), "{told:?}");

    reconciler.tick_quick().await.expect("a quick pass");
    assert!(
        progress.0.lock().unwrap().is_empty(),
        "a quick pass probes nothing"
    );
}

/// An engine whose probe holds its thread (work the pass does synchronously, as planning a
/// large fleet does) until it is let go, or at most 20 s.
struct HoldingEngine {
    probing: std::sync::mpsc::SyncSender<()>,
    let_go: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

#[async_trait]
impl galaxy_runtime_ports::EnginePort for HoldingEngine {
    async fn status(&self, _endpoint: &str) -> PortResult<serde_json::Value> {
        let _ = self.probing.try_send(());
        let _ = self
            .let_go
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
        Ok(serde_json::json!({"turn": 1}))
    }
}

/// On a multi-thread runtime a quick pass runs on a thread of its own, beside the full pass:
/// while the full pass's probe holds its thread, a triggered quick pass still lists, plans and
/// removes the game whose container vanished. (On one task with the full pass it could only
/// run once the probe let go.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_pass_runs_on_another_thread_while_a_full_pass_holds_its_own() {
    let config = Config::default();
    let world = galaxy_runtime_memory::MemoryPorts::new();
    world.add_running_game(&config, GameId::new_random());
    let vanished = world.add_running_game(&config, GameId::new_random());
    let (docker, store) = (world.docker.clone(), world.store.clone());
    let (probing, started) = std::sync::mpsc::sync_channel(2);
    let (let_go, held) = std::sync::mpsc::channel();
    let reconciler = Reconciler::builder()
        .docker(docker.clone())
        .store(store.clone())
        .engine(Arc::new(HoldingEngine {
            probing,
            let_go: std::sync::Mutex::new(held),
        }))
        .without_lobby()
        .cache(Arc::new(MemoryCache::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(Config {
            probe_concurrency: std::num::NonZeroUsize::new(1).unwrap(),
            ..config.clone()
        })
        .build()
        .expect("built");
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let reconciler = reconciler.clone();
        let cancel = cancel.clone();
        async move { reconciler.run(cancel).await }
    });
    tokio::task::spawn_blocking(move || started.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .expect("the start-up full pass probes");

    docker
        .remove(&vanished.current_container_id)
        .expect("the container exists");
    let vanished = vanished.game_id;
    reconciler.trigger();
    let removed = tokio::task::spawn_blocking({
        let store = store.clone();
        move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if store.record(vanished).map(|r| r.status) == Some(RuntimeStatus::Removed) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            false
        }
    })
    .await
    .unwrap();
    // Let every probe go, whatever was seen, so that the loop can end.
    for _ in 0..4 {
        let _ = let_go.send(());
    }
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert!(
        removed,
        "the quick pass removed the vanished game while the full pass's probe held its thread"
    );
}
