//! End to end on the real Docker engine: the Docker adapter, the engine HTTP adapter and the
//! reconciler, with the in-memory store, lobby, cache and scheduler, and
//! `engine_addressing = container_ip` (the tests run on the Docker host).
//!
//! - a labelled `galaxy-game-<uuid>` container of a known game is adopted, scheduled, and its
//!   engine's status published as the game's snapshot;
//! - with the loop running and the events watcher wired to the reconciler's trigger, `docker rm
//!   -f` marks the record `removed` within 2 seconds (the interval is an hour: only the event can
//!   explain it) and the lobby is told;
//! - an engine that stops answering inside a running container makes the record
//!   `engine_unreachable` after exactly `failure_threshold` passes, and `running` again once it
//!   answers;
//! - a Docker daemon that cannot be reached fails connecting, and fails a pass, with a message
//!   naming Docker and the socket, and the pass writes nothing;
//! - with `engine_addressing = published_port`, an engine whose port 8080 is published
//!   (`-p 127.0.0.1::8080`) is probed at 127.0.0.1 (the socket's host) and the published port,
//!   and one that publishes nothing is a failed probe saying so.
//!
//! Each test has its own managed-label value and network ([`Scope`]), so tests running in
//! parallel never see each other's containers, and everything they make is removed when the
//! scope drops, also when a test fails.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use common::{Command, Scope, SocketProxy, TempDir};
use galaxy_runtime_docker::{ContainerEvents, DockerAdapter, DockerConfig, EventsConfig};
use galaxy_runtime_engine_http::HttpEngine;
use galaxy_runtime_memory::{MemoryCache, MemoryLobby, MemoryScheduler, MemoryStore};
use galaxy_runtime_model::{
    Config, ContainerState, EngineAddressing, GameId, GameProjection, JobResult, Op, RuntimeRecord,
    RuntimeStatus, Timestamp,
};
use galaxy_runtime_ports::{Component, DockerPort, EnginePort, ErrorKind, LabelFilter};
use galaxy_runtime_reconciler::{ObserveStep, PassError, Reconciler};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The turn schedule the lobby keeps for the tests' games.
const TURN_SCHEDULE: &str = "0 */6 * * *";

/// What the test image's engine answers on `/status`.
fn image_status() -> Value {
    serde_json::from_str(include_str!("../../../../testing/engine-image/www/status"))
        .expect("testing/engine-image/www/status is JSON")
}

/// The configuration of a backend on the Docker host managing the scope's containers on
/// `network`: engines probed on their container address, periodic passes so rare that only
/// triggers explain a pass.
fn config_for(scope: &Scope, network: &str) -> Config {
    Config {
        managed_label: common::MANAGED_LABEL.to_owned(),
        managed_label_value: scope.managed_value.clone(),
        docker_network: network.to_owned(),
        engine_addressing: EngineAddressing::ContainerIp,
        reconcile_interval: Duration::from_secs(3600),
        reconcile_jitter: Duration::ZERO,
        ..Config::default()
    }
}

/// A reconciler on a Docker adapter and the real engine HTTP adapter, with in-memory everything
/// else, kept at hand to look at.
struct Backend {
    config: Config,
    store: Arc<MemoryStore>,
    lobby: Arc<MemoryLobby>,
    cache: Arc<MemoryCache>,
    scheduler: Arc<MemoryScheduler>,
    reconciler: Reconciler,
}

impl Backend {
    fn new(docker: &DockerAdapter, config: Config) -> Self {
        let store = Arc::new(MemoryStore::new());
        let lobby = Arc::new(MemoryLobby::new());
        let cache = Arc::new(MemoryCache::new());
        let scheduler = Arc::new(MemoryScheduler::new());
        let reconciler = Self::reconciler_on(docker, &config, &store, &lobby, &cache, &scheduler);
        Self {
            config,
            store,
            lobby,
            cache,
            scheduler,
            reconciler,
        }
    }

    /// Another reconciler on `docker`, sharing this backend's store, lobby, cache and scheduler.
    fn with_docker(&self, docker: &DockerAdapter) -> Reconciler {
        Self::reconciler_on(
            docker,
            &self.config,
            &self.store,
            &self.lobby,
            &self.cache,
            &self.scheduler,
        )
    }

    fn reconciler_on(
        docker: &DockerAdapter,
        config: &Config,
        store: &Arc<MemoryStore>,
        lobby: &Arc<MemoryLobby>,
        cache: &Arc<MemoryCache>,
        scheduler: &Arc<MemoryScheduler>,
    ) -> Reconciler {
        Reconciler::builder()
            .docker(Arc::new(docker.clone()))
            .engine(Arc::new(HttpEngine::from_config(config)))
            .store(store.clone())
            .lobby(lobby.clone())
            .outbox(store.clone())
            .cache(cache.clone())
            .scheduler(scheduler.clone())
            .config(config.clone())
            .build()
            .expect("every port is given and the configuration is valid")
    }

    /// A game the lobby knows (its projection is in the store), with no record yet; returns its
    /// id and its container's name.
    fn known_game(&self) -> (GameId, String) {
        let game_id = GameId::new_random();
        self.store.insert_game(GameProjection {
            game_id,
            turn_schedule: TURN_SCHEDULE.to_owned(),
        });
        (
            game_id,
            format!("{}{game_id}", self.config.container_name_prefix),
        )
    }

    fn record(&self, game_id: GameId) -> RuntimeRecord {
        self.store
            .record(game_id)
            .unwrap_or_else(|| panic!("game {game_id} has no runtime record"))
    }

    async fn tick(&self, what: &str) -> galaxy_runtime_reconciler::PassReport {
        self.reconciler
            .tick()
            .await
            .unwrap_or_else(|e| panic!("{what}: the pass failed: {e}"))
    }
}

/// Polls `done` every 10ms until it holds; how long that took. Panics naming `what` after
/// `limit`.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if done() {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `answer` until it is `Ok`, up to 10 seconds, and returns it.
async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    mut answer: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        match answer().await {
            Ok(value) => return value,
            Err(error) if started.elapsed() < Duration::from_secs(10) => {
                eprintln!("{what}: not yet: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("{what}: not within 10s: {error}"),
        }
    }
}

/// The endpoint of a container's engine on `network`, as a backend on the host reaches it.
async fn engine_url(scope: &Scope, id: &str, network: &str) -> String {
    let address = scope
        .raw_address(id, network)
        .await
        .unwrap_or_else(|| panic!("container {id} has no address on {network}"));
    format!("http://{address}:8080")
}

/// Waits until the engine of a freshly started container answers (httpd needs a moment), so
/// that what a pass sees does not depend on how fast it boots.
async fn engine_answers(engine: &HttpEngine, url: &str) -> Value {
    retry(&format!("the engine at {url} answers"), || {
        engine.status(url)
    })
    .await
}

#[tokio::test]
async fn a_labelled_container_of_a_known_game_is_adopted_and_its_snapshot_published() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let network = scope.network().await;
    let backend = Backend::new(&adapter, config_for(&scope, &network));
    let (game_id, name) = backend.known_game();
    let id = scope
        .make(
            &name,
            &scope.managed_labels(),
            Command::Engine,
            Some(&network),
            ContainerState::Running,
        )
        .await;
    // A managed container of a game the lobby does not know: reported, never touched.
    let orphan_game = GameId::new_random();
    scope
        .make(
            &format!("{}{orphan_game}", backend.config.container_name_prefix),
            &scope.managed_labels(),
            Command::Idle,
            Some(&network),
            ContainerState::Running,
        )
        .await;
    let engine = HttpEngine::from_config(&backend.config);
    let url = engine_url(&scope, &id, &network).await;
    assert_eq!(engine_answers(&engine, &url).await, image_status());

    let report = backend.tick("first pass").await;
    assert_eq!(report.containers, 2, "{report:?}");
    assert_eq!(report.applied["adopt"], 1, "{report:?}");
    assert_eq!(report.findings["orphan_container"], 1, "{report:?}");
    let adopted = backend.record(game_id);
    assert_eq!(adopted.status, RuntimeStatus::Running);
    assert_eq!(adopted.current_container_id, id);
    assert_eq!(adopted.current_image_ref, common::IMAGE);
    assert_eq!(adopted.current_engine_version, "", "no version label");
    assert_eq!(adopted.engine_endpoint, format!("http://{name}:8080"));
    assert_eq!(adopted.docker_network, network);
    assert_eq!(adopted.turn_schedule, TURN_SCHEDULE);
    assert_eq!(adopted.probe_failures, 0);
    assert!(backend.store.record(orphan_game).is_none());
    assert!(backend.scheduler.is_scheduled(game_id));
    assert_eq!(backend.scheduler.calls(), vec![adopted.clone()]);
    assert_eq!(backend.cache.records(), vec![adopted.clone()]);
    assert!(backend.lobby.results().is_empty());

    // The next pass probes the adopted game's engine on its container address.
    let before = Timestamp::now();
    let report = backend.tick("second pass").await;
    assert_eq!(report.probes, 1, "{report:?}");
    assert_eq!(report.applied["publish_snapshot"], 1, "{report:?}");
    assert_eq!(report.applied_total(), 1, "{report:?}");
    let snapshot = backend
        .store
        .snapshot(game_id)
        .expect("the snapshot is published");
    assert_eq!(*snapshot.state, image_status());
    assert!(snapshot.observed_at >= before);
    assert_eq!(
        backend.record(game_id),
        adopted,
        "a healthy game's record stays"
    );
    assert_eq!(backend.scheduler.calls().len(), 1, "scheduled once");
}

#[tokio::test]
async fn published_port_addressing_reaches_the_engine_through_the_port_docker_published() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let network = scope.network().await;
    let config = Config {
        engine_addressing: EngineAddressing::PublishedPort,
        ..config_for(&scope, &network)
    };
    let backend = Backend::new(&adapter, config);
    let (published_game, published_name) = backend.known_game();
    let (unpublished_game, unpublished_name) = backend.known_game();
    let published = scope
        .make_published(&published_name, &scope.managed_labels(), &network)
        .await;
    scope
        .make(
            &unpublished_name,
            &scope.managed_labels(),
            Command::Engine,
            Some(&network),
            ContainerState::Running,
        )
        .await;
    assert_eq!(
        adapter.published_address().as_deref(),
        Some("127.0.0.1"),
        "a daemon on a Unix socket publishes on this machine"
    );
    let listed = adapter
        .list_managed(&LabelFilter::single(
            common::MANAGED_LABEL,
            &scope.managed_value,
        ))
        .await
        .expect("list");
    let container = listed.iter().find(|c| c.id == published).expect("listed");
    let host_port = *container
        .published_ports
        .get(&8080)
        .expect("the engine port is published");
    assert_ne!(
        host_port, 8080,
        "an ephemeral port, not the container's own"
    );
    let inspected = adapter.inspect(&published).await.expect("inspect");
    assert_eq!(
        inspected.published_ports, container.published_ports,
        "inspect agrees with the list"
    );
    let url = format!("http://127.0.0.1:{host_port}");
    let engine = HttpEngine::from_config(&backend.config);
    assert_eq!(engine_answers(&engine, &url).await, image_status());

    backend.tick("adoption").await;
    let before = Timestamp::now();
    let report = backend.tick("a pass with probes").await;
    assert_eq!(report.probes, 2, "{report:?}");
    let snapshot = backend
        .store
        .snapshot(published_game)
        .expect("the engine answered through its published port");
    assert_eq!(*snapshot.state, image_status());
    assert!(snapshot.observed_at >= before);
    assert!(backend.store.snapshot(unpublished_game).is_none());
    let scenario = backend.reconciler.observe().await.expect("observe");
    assert_eq!(
        scenario.probes[&unpublished_game],
        galaxy_runtime_model::ProbeOutcome::Error(
            "container publishes no host port for engine port 8080".to_owned()
        ),
        "never a guessed port"
    );
    assert!(scenario.probes[&published_game].is_ok());
    assert_eq!(backend.record(unpublished_game).probe_failures, 1);
}

#[tokio::test]
async fn a_removed_container_is_marked_removed_within_two_seconds_through_events() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let network = scope.network().await;
    let backend = Backend::new(&adapter, config_for(&scope, &network));
    let (game_id, name) = backend.known_game();
    let id = scope
        .make(
            &name,
            &scope.managed_labels(),
            Command::Engine,
            Some(&network),
            ContainerState::Running,
        )
        .await;
    let engine = HttpEngine::from_config(&backend.config);
    engine_answers(&engine, &engine_url(&scope, &id, &network).await).await;

    // The host's wiring: the events watcher triggers the loop's passes.
    let cancel = CancellationToken::new();
    // Stops the loop and the watcher however the test ends.
    let _stop = cancel.clone().drop_guard();
    let filter = LabelFilter::single(
        &backend.config.managed_label,
        &backend.config.managed_label_value,
    );
    let watcher = ContainerEvents::new(
        &adapter,
        filter,
        EventsConfig::from_config(&backend.config),
        backend.reconciler.trigger_handle().into_fn(),
    )
    .spawn(cancel.clone());
    let reconciler = backend.reconciler.clone();
    let running = tokio::spawn({
        let cancel = cancel.clone();
        async move { reconciler.run(cancel).await }
    });

    // The start-up pass adopts the game.
    wait_until(
        "the start-up pass adopts the game",
        Duration::from_secs(10),
        || {
            backend
                .store
                .record(game_id)
                .is_some_and(|r| r.status == RuntimeStatus::Running)
        },
    )
    .await;
    // Docker gives no sign of when it starts sending events: managed containers are made until
    // one of them triggers a pass, proof that the watcher is subscribed.
    let mut subscribed = false;
    for _ in 0..10 {
        let passes = backend.store.calls().list_records;
        scope
            .make(
                &format!("galaxy-rt-sentinel-{}", GameId::new_random()),
                &scope.managed_labels(),
                Command::Idle,
                Some(&network),
                ContainerState::Running,
            )
            .await;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && backend.store.calls().list_records == passes {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if backend.store.calls().list_records > passes {
            subscribed = true;
            break;
        }
    }
    assert!(
        subscribed,
        "no managed container's create and start ever triggered a pass"
    );
    // A triggered pass is a quick pass (CONTRACT §3): it lists and applies, and probes no
    // engine, so it changed nothing for the adopted game.
    assert_eq!(
        backend.record(game_id).status,
        RuntimeStatus::Running,
        "a quick pass leaves engine health alone"
    );
    assert!(backend.lobby.results().is_empty());

    let started = Instant::now();
    scope.remove(&id).await.expect("docker rm -f");
    wait_until(
        "the record is marked removed after docker rm -f",
        Duration::from_secs(2),
        || backend.record(game_id).status == RuntimeStatus::Removed,
    )
    .await;
    let took = started.elapsed();
    eprintln!("docker rm -f to record removed: {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    wait_until("the lobby is told", Duration::from_secs(1), || {
        !backend.lobby.results_for(game_id).is_empty()
    })
    .await;
    assert_eq!(
        backend.lobby.results_for(game_id),
        vec![JobResult {
            op: Op::Reconcile,
            status: RuntimeStatus::Removed,
            message: "container disappeared".to_owned(),
        }]
    );
    let removed = backend.record(game_id);
    assert!(
        backend.cache.records().contains(&removed),
        "the cache has the removed record"
    );

    cancel.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the loop stops when cancelled")
        .expect("the loop task does not panic");
    assert!(ended.is_ok(), "{ended:?}");
    assert!(!backend.reconciler.is_running());
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("the watcher stops when cancelled")
        .expect("the watcher task does not panic");
}

#[tokio::test]
async fn an_engine_that_stops_answering_is_unreachable_after_the_threshold_then_running_again() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let network = scope.network().await;
    let backend = Backend::new(&adapter, config_for(&scope, &network));
    let threshold = backend.config.failure_threshold.get();
    let (game_id, name) = backend.known_game();
    let id = scope
        .make(
            &name,
            &scope.managed_labels(),
            Command::DetachedEngine,
            Some(&network),
            ContainerState::Running,
        )
        .await;
    let engine = HttpEngine::from_config(&backend.config);
    let url = engine_url(&scope, &id, &network).await;
    engine_answers(&engine, &url).await;

    backend.tick("adopting pass").await;
    backend.tick("probing pass").await;
    let healthy = backend.record(game_id);
    assert_eq!(
        (healthy.status, healthy.probe_failures),
        (RuntimeStatus::Running, 0)
    );
    let first_snapshot = backend.store.snapshot(game_id).expect("snapshot");

    scope.stop_engine(&id).await;
    let refused = retry("the stopped engine refuses", || async {
        match engine.status(&url).await {
            Ok(answer) => Err(format!("it still answers {answer}")),
            Err(error) => Ok(error),
        }
    })
    .await;
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");

    for pass in 1..=threshold {
        let report = backend.tick(&format!("failing pass {pass}")).await;
        assert_eq!(report.probes, 1, "{report:?}");
        let record = backend.record(game_id);
        assert_eq!(record.probe_failures, pass, "after failing pass {pass}");
        let expected = if pass < threshold {
            RuntimeStatus::Running
        } else {
            RuntimeStatus::EngineUnreachable
        };
        assert_eq!(record.status, expected, "after failing pass {pass}");
        assert_eq!(report.applied["set_status"], u64::from(pass == threshold));
    }
    let container = adapter.inspect(&id).await.expect("inspect");
    assert_eq!(
        container.state,
        ContainerState::Running,
        "only the engine stopped"
    );
    assert_eq!(
        backend.store.snapshot(game_id),
        Some(first_snapshot.clone()),
        "no snapshot from an engine that does not answer"
    );

    scope.start_engine(&id).await;
    engine_answers(&engine, &url).await;
    let report = backend.tick("pass after the engine came back").await;
    assert_eq!(report.applied["set_status"], 1, "{report:?}");
    assert_eq!(report.applied["set_probe_failures"], 1, "{report:?}");
    assert_eq!(report.applied["publish_snapshot"], 1, "{report:?}");
    let record = backend.record(game_id);
    assert_eq!(
        (record.status, record.probe_failures),
        (RuntimeStatus::Running, 0)
    );
    assert_eq!(record.current_container_id, id);
    let snapshot = backend.store.snapshot(game_id).expect("snapshot");
    assert_eq!(*snapshot.state, image_status());
    assert!(snapshot.observed_at > first_snapshot.observed_at);
    assert!(backend.lobby.results().is_empty(), "nothing was removed");
    assert_eq!(
        backend.scheduler.calls().len(),
        1,
        "scheduled once, at adoption"
    );
}

#[tokio::test]
async fn a_docker_host_pointing_at_no_socket_fails_to_connect_naming_the_path() {
    // Needs no daemon: it checks what a host whose DOCKER_HOST points nowhere gets.
    let path = "/nonexistent/galaxy-runtime-e2e/docker.sock";
    let config = DockerConfig::from_lookup(|name| {
        (name == "DOCKER_HOST").then(|| format!("unix://{path}").into())
    })
    .expect("a valid environment");
    let error = DockerAdapter::connect(config)
        .await
        .expect_err("there is no socket there");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    let text = error.to_string();
    for part in [path, "DOCKER_HOST", "Docker daemon", "does not exist"] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}

#[tokio::test]
async fn a_pass_against_a_daemon_that_went_away_fails_clearly_and_writes_nothing() {
    let Some(adapter) = common::docker().await else {
        return;
    };
    let scope = Scope::new(&adapter);
    let network = scope.network().await;
    let backend = Backend::new(&adapter, config_for(&scope, &network));
    let (game_id, name) = backend.known_game();
    scope
        .make(
            &name,
            &scope.managed_labels(),
            Command::Idle,
            Some(&network),
            ContainerState::Running,
        )
        .await;

    // DOCKER_HOST names a socket in front of the daemon; stopping it is the daemon going away
    // for this process only.
    let dir = TempDir::new();
    let socket = dir.0.join("docker.sock");
    let proxy = SocketProxy::start(&socket, &common::daemon_socket(&adapter));
    let host = format!("unix://{}", socket.display());
    let through_proxy = DockerAdapter::connect(
        DockerConfig::from_lookup(|name| (name == "DOCKER_HOST").then(|| host.clone().into()))
            .expect("a valid environment"),
    )
    .await
    .expect("connect through the proxy");
    let reconciler = backend.with_docker(&through_proxy);
    let report = reconciler
        .tick()
        .await
        .expect("a pass while the daemon answers");
    assert_eq!(report.applied["adopt"], 1, "{report:?}");

    // A running game whose container is gone: a pass that could see the daemon would mark it
    // removed, so a pass that cannot must not.
    let vanished_game = GameId::new_random();
    let mut vanished = RuntimeRecord::new(vanished_game, RuntimeStatus::Running, Timestamp::now());
    vanished.current_container_id = format!(
        "{}{}",
        GameId::new_random().as_uuid().simple(),
        GameId::new_random().as_uuid().simple()
    );
    vanished.docker_network = network.clone();
    backend.store.insert_record(vanished.clone());
    let records = backend.store.records();
    let cache_puts = backend.cache.puts();
    let scheduled = backend.scheduler.calls().len();

    backend.store.reset_calls();
    proxy.stop().await;
    let dead = reconciler.tick().await.expect_err("the daemon is gone");
    std::fs::remove_file(&socket).expect("remove the socket file");
    let missing = reconciler.tick().await.expect_err("the socket is gone");
    for (error, cause) in [
        (&dead, "connection refused"),
        (&missing, "no such file or directory"),
    ] {
        eprintln!("pass error: {error}");
        let PassError::Observe { step, source, .. } = error else {
            panic!("not an observe failure: {error}");
        };
        assert_eq!(*step, ObserveStep::ListContainers, "{error}");
        assert_eq!(source.kind(), ErrorKind::Unavailable, "{error}");
        let text = error.to_string();
        assert!(
            text.to_lowercase().contains(cause),
            "{cause:?} missing from: {text}"
        );
        for part in [
            "list managed containers",
            "Docker daemon",
            &socket.display().to_string(),
            "DOCKER_HOST",
            "is the Docker daemon running?",
        ] {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
        assert_eq!(error.report().applied_total(), 0, "{error}");
    }
    let calls = backend.store.calls();
    assert_eq!(calls.writes(), 0, "{calls:?}");
    assert_eq!(
        calls.list_records, 0,
        "records are not even read when containers cannot be listed"
    );
    assert_eq!(backend.store.records(), records, "no record changed");
    assert_eq!(backend.cache.puts(), cache_puts);
    assert_eq!(backend.lobby.calls(), 0);
    assert_eq!(backend.scheduler.calls().len(), scheduled);

    // The same pass on the daemon itself does write: what the failed passes held back.
    let report = backend.tick("a pass on the daemon itself").await;
    assert_eq!(report.applied["set_status"], 1, "{report:?}");
    assert_eq!(backend.record(vanished_game).status, RuntimeStatus::Removed);
    assert_eq!(backend.record(game_id).status, RuntimeStatus::Running);
}
