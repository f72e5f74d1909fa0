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
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<ContainerSummary>> {
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
