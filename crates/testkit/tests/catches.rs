//! The suites are only worth running if they fail broken adapters: each test here breaks one
//! rule of a port (by wrapping an in-memory adapter) and checks that the suite function for that
//! rule panics, naming it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_memory::{EngineAnswer, MemoryDocker, MemoryEngine, MemoryStore};
use galaxy_runtime_model::{
    ContainerState, ContainerSummary, GameId, GameProjection, RuntimeRecord, RuntimeStatus,
    Snapshot,
};
use galaxy_runtime_ports::{
    AdoptInsert, AdoptUpdate, DockerPort, Expected, GameCatalog, LabelFilter, PortError,
    PortResult, ProbeFailuresUpdate, Rebind, StatusChange, StorePort,
};
use galaxy_runtime_testkit::docker::{ContainerSpec, DockerFixture, unique_run_value};
use galaxy_runtime_testkit::engine::{EngineBehaviour, EngineFixture};
use galaxy_runtime_testkit::{docker, engine, store};

/// Runs `check` on its own task and returns its panic message; fails if it does not panic.
async fn panic_message(check: impl Future<Output = ()> + Send + 'static) -> String {
    let error = tokio::spawn(check)
        .await
        .expect_err("the suite must fail an adapter that breaks its rule");
    let payload = error.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Panics unless `message` contains every one of `words`.
fn assert_names(message: &str, words: &[&str]) {
    for word in words {
        assert!(
            message.contains(word),
            "expected {word:?} in the failure: {message}"
        );
    }
}

/// One way of breaking the store contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreFlaw {
    /// `transition_status` moves records out of terminal statuses.
    NoForwardOnly,
    /// `transition_status` reads, yields, then writes: racing writers all win.
    NonAtomicTransition,
    /// `rebind` ignores what the caller expected.
    RebindWithoutCompare,
    /// `rebind` compares the container alone, not the status.
    RebindIgnoresStatus,
    /// Status changes and probe counters compare the status alone, not the container.
    StatusOnlyCompare,
    /// `upsert_adopted` overwrites a record the caller did not see.
    AdoptionOverwritesUnseen,
    /// `upsert_adopted` writes the whole insert record over an existing one.
    UpsertOverwritesEverything,
    /// `set_probe_failures` drops every update after the first 1 000 (a chunking bug).
    FirstChunkOnly,
    /// `load_game_projections` ignores every id after the first 1 000.
    ProjectionsFirstChunkOnly,
    /// `publish_snapshots` keeps the first snapshot of a game.
    SnapshotsNotReplaced,
    /// `list_games` is unsorted.
    UnsortedGames,
}

/// A [`MemoryStore`] with one flaw.
struct FlawedStore {
    inner: MemoryStore,
    flaw: StoreFlaw,
}

impl FlawedStore {
    fn new(flaw: StoreFlaw) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            flaw,
        })
    }
}

#[async_trait]
impl StorePort for FlawedStore {
    async fn list_records(&self) -> PortResult<Vec<Arc<RuntimeRecord>>> {
        self.inner.list_records().await
    }

    async fn get_record(&self, game_id: GameId) -> PortResult<Option<RuntimeRecord>> {
        self.inner.get_record(game_id).await
    }

    async fn create_record(&self, record: RuntimeRecord) -> PortResult<RuntimeRecord> {
        self.inner.create_record(record).await
    }

    async fn load_game_projections(&self, game_ids: &[GameId]) -> PortResult<Vec<GameProjection>> {
        if self.flaw == StoreFlaw::ProjectionsFirstChunkOnly {
            let end = game_ids.len().min(1_000);
            return self.inner.load_game_projections(&game_ids[..end]).await;
        }
        self.inner.load_game_projections(game_ids).await
    }

    async fn transition_status(&self, mut change: StatusChange) -> PortResult<RuntimeRecord> {
        if self.flaw == StoreFlaw::StatusOnlyCompare
            && let Some(record) = self.inner.record(change.game_id)
        {
            change.expected.current_container_id = record.current_container_id;
        }
        match self.flaw {
            StoreFlaw::NoForwardOnly | StoreFlaw::NonAtomicTransition => {
                let Some(mut record) = self.inner.record(change.game_id) else {
                    return Err(PortError::not_found("record"));
                };
                if record.status != change.expected.status {
                    return Err(PortError::conflict("status differs"));
                }
                if self.flaw == StoreFlaw::NonAtomicTransition {
                    tokio::task::yield_now().await;
                }
                record.status = change.to;
                record.status_changed_at = change.at;
                if change.to == RuntimeStatus::Running || change.to.is_terminal() {
                    record.probe_failures = 0;
                }
                self.inner.insert_record(record.clone());
                Ok(record)
            }
            _ => self.inner.transition_status(change).await,
        }
    }

    async fn rebind(&self, rebind: Rebind) -> PortResult<RuntimeRecord> {
        if self.flaw == StoreFlaw::RebindWithoutCompare
            && let Some(record) = self.inner.record(rebind.game_id)
        {
            let rebind = Rebind {
                expected: Expected::of(&record),
                ..rebind
            };
            return self.inner.rebind(rebind).await;
        }
        if self.flaw == StoreFlaw::RebindIgnoresStatus
            && let Some(record) = self.inner.record(rebind.game_id)
        {
            let mut rebind = rebind;
            rebind.expected.status = record.status;
            return self.inner.rebind(rebind).await;
        }
        self.inner.rebind(rebind).await
    }

    async fn upsert_adopted(
        &self,
        insert: AdoptInsert,
        update: AdoptUpdate,
    ) -> PortResult<RuntimeRecord> {
        if self.flaw == StoreFlaw::UpsertOverwritesEverything
            && self
                .inner
                .record(insert.record.game_id)
                .is_some_and(|r| !r.is_terminal())
        {
            self.inner.insert_record(insert.record.clone());
            return Ok(insert.record);
        }
        if self.flaw == StoreFlaw::AdoptionOverwritesUnseen
            && let Some(record) = self.inner.record(insert.record.game_id)
        {
            let update = AdoptUpdate {
                expected: Some(Expected::of(&record)),
                ..update
            };
            return self.inner.upsert_adopted(insert, update).await;
        }
        self.inner.upsert_adopted(insert, update).await
    }

    async fn set_probe_failures(
        &self,
        updates: &[ProbeFailuresUpdate],
    ) -> PortResult<Vec<RuntimeRecord>> {
        if self.flaw == StoreFlaw::FirstChunkOnly {
            let end = updates.len().min(1_000);
            return self.inner.set_probe_failures(&updates[..end]).await;
        }
        if self.flaw == StoreFlaw::StatusOnlyCompare {
            let by_status: Vec<ProbeFailuresUpdate> = updates
                .iter()
                .map(|u| {
                    let mut u = u.clone();
                    if let Some(record) = self.inner.record(u.game_id) {
                        u.expected.current_container_id = record.current_container_id;
                    }
                    u
                })
                .collect();
            return self.inner.set_probe_failures(&by_status).await;
        }
        self.inner.set_probe_failures(updates).await
    }

    async fn publish_snapshots(&self, snapshots: &[Snapshot]) -> PortResult<()> {
        if self.flaw == StoreFlaw::SnapshotsNotReplaced {
            let fresh: Vec<_> = snapshots
                .iter()
                .filter(|s| self.inner.snapshot(s.game_id).is_none())
                .cloned()
                .collect();
            return self.inner.publish_snapshots(&fresh).await;
        }
        self.inner.publish_snapshots(snapshots).await
    }

    async fn get_snapshot(&self, game_id: GameId) -> PortResult<Option<Snapshot>> {
        self.inner.get_snapshot(game_id).await
    }
}

#[async_trait]
impl GameCatalog for FlawedStore {
    async fn put_game(&self, game: GameProjection) -> PortResult<()> {
        self.inner.put_game(game).await
    }

    async fn list_games(&self) -> PortResult<Vec<GameProjection>> {
        let mut games = self.inner.list_games().await?;
        if self.flaw == StoreFlaw::UnsortedGames {
            games.reverse();
        }
        Ok(games)
    }

    async fn remove_game(&self, game_id: GameId) -> PortResult<()> {
        self.inner.remove_game(game_id).await
    }
}

#[tokio::test]
async fn store_suite_catches_a_terminal_record_moving() {
    let s = FlawedStore::new(StoreFlaw::NoForwardOnly);
    let message = panic_message(async move { store::forward_only(&*s).await }).await;
    assert_names(
        &message,
        &["StorePort::transition_status", "forward-only", "Conflict"],
    );
}

#[tokio::test]
async fn store_suite_catches_two_winners_of_a_race() {
    let s = FlawedStore::new(StoreFlaw::NonAtomicTransition);
    let message =
        panic_message(async move { store::concurrent_transitions_one_winner(&*s).await }).await;
    assert_names(&message, &["exactly one of"]);
}

#[tokio::test]
async fn store_suite_catches_a_rebind_without_compare() {
    let s = FlawedStore::new(StoreFlaw::RebindWithoutCompare);
    let message = panic_message(async move { store::rebind_compare_and_set(&*s).await }).await;
    assert_names(
        &message,
        &["StorePort::rebind", "expected container", "Conflict"],
    );
}

#[tokio::test]
async fn store_suite_catches_a_status_change_that_compares_the_status_alone() {
    let s = FlawedStore::new(StoreFlaw::StatusOnlyCompare);
    let message =
        panic_message(async move { store::transition_status_compares_the_container(&*s).await })
            .await;
    assert_names(
        &message,
        &[
            "StorePort::transition_status",
            "compare-and-set on the container",
            "Conflict",
        ],
    );
}

#[tokio::test]
async fn store_suite_catches_probe_counters_that_compare_the_status_alone() {
    let s = FlawedStore::new(StoreFlaw::StatusOnlyCompare);
    let message = panic_message(async move { store::set_probe_failures_batch(&*s).await }).await;
    assert_names(
        &message,
        &[
            "StorePort::set_probe_failures",
            "expected status and container",
        ],
    );
}

#[tokio::test]
async fn store_suite_catches_a_rebind_that_ignores_the_status() {
    let s = FlawedStore::new(StoreFlaw::RebindIgnoresStatus);
    let message = panic_message(async move { store::rebind_compares_the_status(&*s).await }).await;
    assert_names(
        &message,
        &[
            "StorePort::rebind",
            "compare-and-set on the status",
            "Conflict",
        ],
    );
}

#[tokio::test]
async fn store_suite_catches_an_adoption_over_a_record_it_did_not_see() {
    let s = FlawedStore::new(StoreFlaw::AdoptionOverwritesUnseen);
    let message =
        panic_message(async move { store::upsert_adopted_compare_and_set(&*s).await }).await;
    assert_names(
        &message,
        &["StorePort::upsert_adopted", "expected None", "Conflict"],
    );
}

#[tokio::test]
async fn store_suite_catches_an_upsert_that_overwrites_kept_fields() {
    let s = FlawedStore::new(StoreFlaw::UpsertOverwritesEverything);
    let message = panic_message(async move { store::upsert_adopted_updates(&*s).await }).await;
    assert_names(
        &message,
        &["StorePort::upsert_adopted", "keep docker_network"],
    );
}

#[tokio::test]
async fn store_suite_catches_a_batch_cut_at_one_chunk() {
    let s = FlawedStore::new(StoreFlaw::FirstChunkOnly);
    let message =
        panic_message(async move { store::set_probe_failures_large_batch(&*s).await }).await;
    assert_names(&message, &["StorePort::set_probe_failures"]);

    let s = FlawedStore::new(StoreFlaw::ProjectionsFirstChunkOnly);
    let message = panic_message(async move { store::load_game_projections_batch(&*s).await }).await;
    assert_names(&message, &["StorePort::load_game_projections"]);
}

#[tokio::test]
async fn store_suite_catches_a_snapshot_not_replaced() {
    let s = FlawedStore::new(StoreFlaw::SnapshotsNotReplaced);
    let message = panic_message(async move { store::publish_snapshots_batch(&*s).await }).await;
    assert_names(&message, &["StorePort::publish_snapshots", "replace"]);
}

#[tokio::test]
async fn store_suite_catches_unsorted_games() {
    let s = FlawedStore::new(StoreFlaw::UnsortedGames);
    let message = panic_message(async move { store::game_catalog(&*s).await }).await;
    assert_names(&message, &["GameCatalog::list_games", "sorted"]);
}

/// A Docker port that filters on label keys only, forgetting the values.
struct KeyOnlyDocker(Arc<MemoryDocker>);

#[async_trait]
impl DockerPort for KeyOnlyDocker {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        Ok(self
            .0
            .containers()
            .into_iter()
            .filter(|c| filter.labels.keys().all(|k| c.labels.contains_key(k)))
            .map(Arc::new)
            .collect())
    }

    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        self.0.inspect(container_id).await
    }
}

/// Makes containers in a [`MemoryDocker`].
struct Fixture {
    docker: Arc<MemoryDocker>,
    run_value: String,
}

#[async_trait]
impl DockerFixture for Fixture {
    fn run_value(&self) -> String {
        self.run_value.clone()
    }

    fn image_ref(&self) -> String {
        "idle".to_owned()
    }

    async fn create(&self, spec: &ContainerSpec) -> PortResult<String> {
        let state = if spec.running {
            ContainerState::Running
        } else {
            ContainerState::Created
        };
        Ok(self
            .docker
            .create(&spec.name, "idle", spec.labels.clone(), state))
    }

    async fn stop(&self, container_id: &str) -> PortResult<()> {
        self.docker.kill(container_id)
    }

    async fn pause(&self, container_id: &str) -> PortResult<()> {
        self.docker.pause(container_id)
    }

    async fn remove(&self, container_id: &str) -> PortResult<()> {
        self.docker.remove(container_id).map(drop)
    }
}

#[tokio::test]
async fn docker_suite_catches_a_filter_on_keys_only() {
    let memory = Arc::new(MemoryDocker::new());
    let port = KeyOnlyDocker(memory.clone());
    let fixture = Fixture {
        docker: memory,
        run_value: unique_run_value(),
    };
    let message = panic_message(async move {
        docker::list_managed_returns_exactly_the_managed(&port, &fixture).await;
    })
    .await;
    assert_names(&message, &["DockerPort::list_managed", "exactly"]);
}

#[tokio::test]
async fn docker_suite_catches_a_container_reported_in_the_wrong_state() {
    let memory = Arc::new(MemoryDocker::new());
    // A fixture whose pause does nothing stands for a port that misreads the paused state.
    struct NoPause(Fixture);
    #[async_trait]
    impl DockerFixture for NoPause {
        fn run_value(&self) -> String {
            self.0.run_value()
        }
        fn image_ref(&self) -> String {
            self.0.image_ref()
        }
        async fn create(&self, spec: &ContainerSpec) -> PortResult<String> {
            self.0.create(spec).await
        }
        async fn stop(&self, container_id: &str) -> PortResult<()> {
            self.0.stop(container_id).await
        }
        async fn pause(&self, _container_id: &str) -> PortResult<()> {
            Ok(())
        }
        async fn remove(&self, container_id: &str) -> PortResult<()> {
            self.0.remove(container_id).await
        }
    }
    let fixture = NoPause(Fixture {
        docker: memory.clone(),
        run_value: unique_run_value(),
    });
    let message = panic_message(async move {
        docker::inspect_agrees_with_list(&*memory, &fixture).await;
    })
    .await;
    assert_names(&message, &["state"]);
}

/// Serves behaviours from a [`MemoryEngine`] without a timeout, or with wrong failure texts.
struct EngineServer {
    engine: Arc<MemoryEngine>,
    next: AtomicU64,
}

#[async_trait]
impl EngineFixture for EngineServer {
    async fn serve(&self, behaviour: EngineBehaviour) -> PortResult<String> {
        let endpoint = format!("e{}", self.next.fetch_add(1, Ordering::SeqCst));
        match behaviour {
            EngineBehaviour::SlowHeaders(delay) => {
                self.engine.set_json(&endpoint, serde_json::json!({}));
                self.engine.set_latency(&endpoint, delay);
            }
            EngineBehaviour::Refused => self.engine.set_error(&endpoint, "something went wrong"),
            _ => self.engine.set_answer(&endpoint, EngineAnswer::Refused),
        }
        Ok(endpoint)
    }
}

#[tokio::test(start_paused = true)]
async fn engine_suite_catches_a_probe_that_outlives_its_timeout() {
    let engine = Arc::new(MemoryEngine::new());
    let fixture = EngineServer {
        engine: engine.clone(),
        next: AtomicU64::new(0),
    };
    let timeout = Duration::from_secs(2);
    let message = panic_message(async move {
        engine::slow_headers_time_out(&*engine, &fixture, timeout).await;
    })
    .await;
    assert_names(&message, &["EnginePort::status", "within the timeout"]);
}

#[tokio::test]
async fn engine_suite_catches_a_failure_that_does_not_say_what_happened() {
    let engine = Arc::new(MemoryEngine::new());
    let fixture = EngineServer {
        engine: engine.clone(),
        next: AtomicU64::new(0),
    };
    let message = panic_message(async move {
        engine::refused_is_unavailable(&*engine, &fixture, Duration::from_secs(1)).await;
    })
    .await;
    assert_names(&message, &["EnginePort::status", "Unavailable"]);
}
