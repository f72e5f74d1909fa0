//! Several Docker hosts on the in-memory adapters (CONTRACT §6): listed concurrently, each
//! under `docker_list_timeout`; a host that fails leaves its records untouched while the other
//! hosts' removals go ahead; a move between hosts rebinds; a removal is confirmed on the
//! record's own host.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_memory::{
    MemoryCache, MemoryDocker, MemoryEngine, MemoryScheduler, MemoryStore,
};
use galaxy_runtime_model::{
    Config, ContainerState, ContainerSummary, GameId, RuntimeRecord, RuntimeStatus, Timestamp,
};
use galaxy_runtime_ports::{DockerPort, LabelFilter, PortResult};
use galaxy_runtime_reconciler::{BuildError, PassReport, Reconciler, ReconcilerBuilder};

/// A daemon that answers like `inner`, after `delay`.
struct Slow {
    inner: Arc<MemoryDocker>,
    delay: Duration,
}

#[async_trait]
impl DockerPort for Slow {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        tokio::time::sleep(self.delay).await;
        self.inner.list_managed(filter).await
    }

    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        self.inner.inspect(container_id).await
    }
}

fn config() -> Config {
    Config {
        docker_list_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

/// A running game on `docker` whose record names `host`; returns the record.
fn game_on(docker: &MemoryDocker, store: &MemoryStore, host: &str) -> RuntimeRecord {
    let config = config();
    let game_id = GameId::new_random();
    let container_id = MemoryDocker::new_container_id();
    docker.add(MemoryDocker::game_container(
        &config,
        game_id,
        &container_id,
        ContainerState::Running,
    ));
    let record = RuntimeRecord {
        current_container_id: container_id,
        docker_host: host.to_owned(),
        ..RuntimeRecord::new(
            game_id,
            RuntimeStatus::Stopped,
            "2026-11-27T11:00:00Z".parse::<Timestamp>().unwrap(),
        )
    };
    store.insert_record(record.clone());
    record
}

fn builder(store: &MemoryStore) -> ReconcilerBuilder {
    Reconciler::builder()
        .store(Arc::new(store.clone()))
        .engine(Arc::new(MemoryEngine::new()))
        .cache(Arc::new(MemoryCache::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .without_lobby()
        .config(config())
}

fn status(store: &MemoryStore, record: &RuntimeRecord) -> RuntimeStatus {
    store.record(record.game_id).unwrap().status
}

fn found(report: &PassReport, kind: &str) -> u64 {
    report.findings.get(kind).copied().unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_host_that_fails_to_list_keeps_its_games_while_the_other_host_s_removals_go_ahead() {
    let (a, b) = (Arc::new(MemoryDocker::new()), Arc::new(MemoryDocker::new()));
    let store = MemoryStore::new();
    let on_a = game_on(&a, &store, "a");
    let gone_from_a = game_on(&a, &store, "");
    let on_b = game_on(&b, &store, "b");
    let reconciler = builder(&store)
        .docker_host("a", a.clone())
        .docker_host("b", b.clone())
        .build()
        .unwrap();

    a.remove(&gone_from_a.current_container_id).unwrap();
    b.clear();
    b.set_unavailable(true);
    let report = reconciler.tick().await.expect("one host listing is enough");
    assert_eq!(status(&store, &gone_from_a), RuntimeStatus::Removed);
    assert_eq!(
        status(&store, &on_b),
        RuntimeStatus::Stopped,
        "b is unobserved"
    );
    assert_eq!(status(&store, &on_a), RuntimeStatus::Stopped);
    assert_eq!(found(&report, "host_unavailable"), 1);

    // Back again, with b's container gone for real: now it is removed, confirmed on b.
    b.set_unavailable(false);
    reconciler.tick().await.unwrap();
    assert_eq!(status(&store, &on_b), RuntimeStatus::Removed);
    assert!(b.calls().inspect >= 1, "the removal was confirmed on b");
}

#[tokio::test(start_paused = true)]
async fn a_slow_host_holds_the_pass_up_no_longer_than_its_timeout() {
    let (a, b) = (Arc::new(MemoryDocker::new()), Arc::new(MemoryDocker::new()));
    let store = MemoryStore::new();
    let on_b = game_on(&b, &store, "b");
    let gone_from_a = game_on(&a, &store, "a");
    a.remove(&gone_from_a.current_container_id).unwrap();
    let slow = Arc::new(Slow {
        inner: b.clone(),
        delay: Duration::from_secs(3600),
    });
    let reconciler = builder(&store)
        .docker_host("a", a.clone())
        .docker_host("b", slow)
        .build()
        .unwrap();

    let started = tokio::time::Instant::now();
    let report = reconciler.tick().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "the pass waited {took:?}, not about docker_list_timeout (2s)"
    );
    assert_eq!(found(&report, "host_unavailable"), 1);
    assert_eq!(status(&store, &on_b), RuntimeStatus::Stopped);
    assert_eq!(status(&store, &gone_from_a), RuntimeStatus::Removed);
}

#[tokio::test(start_paused = true)]
async fn a_pass_fails_only_when_every_host_fails() {
    let (a, b) = (Arc::new(MemoryDocker::new()), Arc::new(MemoryDocker::new()));
    let store = MemoryStore::new();
    let record = game_on(&a, &store, "a");
    a.set_unavailable(true);
    b.set_unavailable(true);
    let reconciler = builder(&store)
        .docker_host("a", a.clone())
        .docker_host("b", b.clone())
        .build()
        .unwrap();
    let error = reconciler.tick().await.expect_err("no host listed");
    assert!(error.is_observe(), "{error}");
    let text = galaxy_runtime_ports::error_chain(&error);
    assert!(
        text.contains("every Docker host failed to list; Docker host \"b\""),
        "the pass's error names a host: {text}"
    );
    assert_eq!(status(&store, &record), RuntimeStatus::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_container_moved_to_another_host_is_rebound_with_its_host() {
    let (a, b) = (Arc::new(MemoryDocker::new()), Arc::new(MemoryDocker::new()));
    let store = MemoryStore::new();
    let record = game_on(&a, &store, "a");
    // The same container id on b: another daemon, so another container.
    let moved = a.remove(&record.current_container_id).unwrap();
    b.add(moved);
    let reconciler = builder(&store)
        .docker_host("a", a.clone())
        .docker_host("b", b.clone())
        .build()
        .unwrap();
    let report = reconciler.tick().await.unwrap();
    assert_eq!(report.applied.get("rebind").copied(), Some(1), "{report:?}");
    let stored = store.record(record.game_id).unwrap();
    assert_eq!(stored.docker_host, "b");
    assert_eq!(stored.current_container_id, record.current_container_id);
    assert_eq!(stored.status, RuntimeStatus::Stopped);
    // And the next pass has nothing to do.
    let again = reconciler.tick().await.unwrap();
    assert_eq!(again.applied_total(), 0, "{again:?}");
}

#[tokio::test(start_paused = true)]
async fn a_removal_is_confirmed_on_the_record_s_host() {
    let (a, b) = (Arc::new(MemoryDocker::new()), Arc::new(MemoryDocker::new()));
    let store = MemoryStore::new();
    let record = game_on(&b, &store, "b");
    // b lists nothing any more; a happens to have a container with the same id, of another
    // game. Inspecting a would find it and block the removal for ever.
    let mut other = b.remove(&record.current_container_id).unwrap();
    other.name = format!("/galaxy-game-{}", GameId::new_random());
    other.labels.clear();
    a.add(other);
    let reconciler = builder(&store)
        .docker_host("a", a.clone())
        .docker_host("b", b.clone())
        .build()
        .unwrap();
    reconciler.tick().await.unwrap();
    assert_eq!(status(&store, &record), RuntimeStatus::Removed);
    assert_eq!(a.calls().inspect, 0, "nothing was asked of host a");
}

#[tokio::test]
async fn hosts_must_be_told_apart() {
    let store = MemoryStore::new();
    let docker = || Arc::new(MemoryDocker::new());
    let refused = |b: ReconcilerBuilder| match b.build() {
        Err(BuildError::Hosts(message)) => message,
        other => panic!("expected BuildError::Hosts, got {other:?}"),
    };
    let message = refused(
        builder(&store)
            .docker_host("a", docker())
            .docker_host("a", docker()),
    );
    assert!(
        message.contains("two Docker hosts are named \"a\""),
        "{message}"
    );
    let message = refused(builder(&store).docker_host("Host A", docker()));
    assert!(message.contains("a-z 0-9"), "{message}");
    let message = refused(builder(&store).docker(docker()).docker_host("b", docker()));
    assert!(message.contains("both"), "{message}");
}

/// A daemon like `inner` whose published ports are reached at `address`.
struct Published {
    inner: Arc<MemoryDocker>,
    address: Option<&'static str>,
}

#[async_trait]
impl DockerPort for Published {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        self.inner.list_managed(filter).await
    }

    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        self.inner.inspect(container_id).await
    }

    fn published_address(&self) -> Option<String> {
        self.address.map(str::to_owned)
    }
}

#[tokio::test]
async fn published_port_probes_each_engine_at_its_own_host_s_address() {
    let (a, b, c) = (
        Arc::new(MemoryDocker::new()),
        Arc::new(MemoryDocker::new()),
        Arc::new(MemoryDocker::new()),
    );
    let store = MemoryStore::new();
    let running = |docker: &MemoryDocker, host: &str, port: Option<u16>| {
        let record = game_on(docker, &store, host);
        let mut container = docker.remove(&record.current_container_id).unwrap();
        container.published_ports = port.into_iter().map(|p| (8080, p)).collect();
        docker.add(container);
        let mut record = store.record(record.game_id).unwrap();
        record.status = RuntimeStatus::Running;
        store.insert_record(record.clone());
        record
    };
    let on_a = running(&a, "a", Some(32768));
    // A record of `""` is on the first host, a.
    let on_a_too = running(&a, "", Some(32769));
    let on_b = running(&b, "b", Some(32768));
    let unpublished = running(&b, "b", None);
    let on_c = running(&c, "c", Some(32768));
    let engine = Arc::new(MemoryEngine::new());
    for endpoint in [
        "http://10.0.0.1:32768",
        "http://10.0.0.1:32769",
        "http://[fd00::2]:32768",
    ] {
        engine.set_json(endpoint, serde_json::json!({"turn": 1}));
    }
    let reconciler = builder(&store)
        .engine(engine.clone())
        .config(Config {
            engine_addressing: galaxy_runtime_model::EngineAddressing::PublishedPort,
            ..config()
        })
        .docker_host(
            "a",
            Arc::new(Published {
                inner: a,
                address: Some("10.0.0.1"),
            }),
        )
        .docker_host(
            "b",
            Arc::new(Published {
                inner: b,
                address: Some("fd00::2"),
            }),
        )
        .docker_host(
            "c",
            Arc::new(Published {
                inner: c,
                address: None,
            }),
        )
        .build()
        .unwrap();
    let scenario = reconciler.observe().await.expect("observed");
    let probe = |record: &RuntimeRecord| scenario.probes[&record.game_id].clone();
    for record in [&on_a, &on_a_too, &on_b] {
        assert!(probe(record).is_ok(), "{:?}", probe(record));
    }
    assert_eq!(engine.probes_of("http://10.0.0.1:32768"), 1);
    assert_eq!(engine.probes_of("http://10.0.0.1:32769"), 1);
    assert_eq!(engine.probes_of("http://[fd00::2]:32768"), 1);
    assert_eq!(
        probe(&unpublished),
        galaxy_runtime_model::ProbeOutcome::Error(
            "container publishes no host port for engine port 8080".to_owned()
        )
    );
    assert_eq!(
        probe(&on_c),
        galaxy_runtime_model::ProbeOutcome::Error(
            "Docker host \"c\" has no address for its published ports".to_owned()
        )
    );
    assert_eq!(engine.probes(), 3, "no guess was probed");
}
