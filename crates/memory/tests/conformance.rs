//! Every conformance suite of `galaxy-runtime-testkit` against the in-memory adapters, on each
//! plain `cargo test`. The fixtures the Docker and engine suites need are here, so the memory
//! crate depends on the test kit only for its tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_memory::{
    AlwaysLeader, EngineAnswer, MemoryCache, MemoryDocker, MemoryEngine, MemoryLobby,
    MemoryScheduler, MemoryStore,
};
use galaxy_runtime_model::ContainerState;
use galaxy_runtime_ports::PortResult;
use galaxy_runtime_testkit::docker::{ContainerSpec, DockerFixture, unique_run_value};
use galaxy_runtime_testkit::engine::{EngineBehaviour, EngineFixture};
use galaxy_runtime_testkit::{cache, docker, engine, leader, lobby, outbox, scheduler, store};

/// Makes containers in a [`MemoryDocker`] for the Docker suite.
struct MemoryDockerFixture {
    docker: Arc<MemoryDocker>,
    run_value: String,
}

impl MemoryDockerFixture {
    const IMAGE: &'static str = "galaxy-testkit/idle:memory";

    fn new(docker: Arc<MemoryDocker>) -> Self {
        Self {
            docker,
            run_value: unique_run_value(),
        }
    }
}

#[async_trait]
impl DockerFixture for MemoryDockerFixture {
    fn run_value(&self) -> String {
        self.run_value.clone()
    }

    fn image_ref(&self) -> String {
        Self::IMAGE.to_owned()
    }

    async fn create(&self, spec: &ContainerSpec) -> PortResult<String> {
        let state = if spec.running {
            ContainerState::Running
        } else {
            ContainerState::Created
        };
        Ok(self
            .docker
            .create(&spec.name, Self::IMAGE, spec.labels.clone(), state))
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

/// Serves engine behaviours by configuring endpoints of a [`MemoryEngine`].
struct MemoryEngineFixture {
    engine: Arc<MemoryEngine>,
    next: AtomicU64,
}

#[async_trait]
impl EngineFixture for MemoryEngineFixture {
    async fn serve(&self, behaviour: EngineBehaviour) -> PortResult<String> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let endpoint = format!("http://engine-{n}.memory:8080");
        let e = &self.engine;
        match behaviour {
            EngineBehaviour::Json(value) => e.set_json(&endpoint, value),
            EngineBehaviour::Status(code, body) => {
                e.set_answer(&endpoint, EngineAnswer::Status(code, body));
            }
            EngineBehaviour::NotJson => e.set_answer(
                &endpoint,
                EngineAnswer::Body("<html><body>It works!</body></html>".to_owned()),
            ),
            EngineBehaviour::SlowHeaders(delay) | EngineBehaviour::SlowBody(delay) => {
                e.set_json(&endpoint, serde_json::json!({"turn": 1}));
                e.set_latency(&endpoint, delay);
            }
            EngineBehaviour::Oversized(bytes) => {
                // A valid JSON array of `bytes` bytes: `[0,0,…,0]`.
                let zeros = bytes.saturating_sub(1) / 2;
                let body = format!("[{}0]", "0,".repeat(zeros.saturating_sub(1)));
                e.set_answer(&endpoint, EngineAnswer::Body(body));
            }
            EngineBehaviour::Redirect => {
                e.set_answer(&endpoint, EngineAnswer::Status(302, String::new()));
            }
            // An endpoint never configured refuses the connection.
            EngineBehaviour::Refused => {}
        }
        Ok(endpoint)
    }
}

#[tokio::test]
async fn store_suite() {
    store::run_all(&MemoryStore::new()).await;
}

#[tokio::test]
async fn outbox_suite() {
    outbox::run_all(&MemoryStore::new()).await;
}

/// The suites never assume they own the store: several runs on one store at once all pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_on_a_shared_store() {
    let shared = Arc::new(MemoryStore::new());
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move { store::run_all(&*shared).await })
        })
        .collect();
    for run in runs {
        run.await.expect("a store suite run failed");
    }
    assert!(shared.records().len() > 3 * 2 * store::LARGE_BATCH);
}

#[tokio::test]
async fn docker_suite() {
    let docker = Arc::new(MemoryDocker::new());
    let fixture = MemoryDockerFixture::new(docker.clone());
    docker::run_all(&*docker, &fixture).await;
    assert!(
        docker.containers().is_empty(),
        "the suite removes what it created"
    );
}

#[tokio::test]
async fn engine_suite() {
    let timeout = Duration::from_millis(200);
    let engine = Arc::new(MemoryEngine::new());
    engine.set_timeout(Some(timeout));
    let fixture = MemoryEngineFixture {
        engine: engine.clone(),
        next: AtomicU64::new(0),
    };
    engine::run_all(&*engine, &fixture, timeout).await;
}

#[tokio::test]
async fn lobby_suite() {
    let memory = MemoryLobby::new();
    lobby::run_all(&memory).await;
    lobby::delivers_in_order(&memory, &|game_id| memory.results_for(game_id)).await;
}

#[test]
fn cache_suite() {
    cache::run_all(&MemoryCache::new());
}

#[test]
fn scheduler_suite() {
    let memory = MemoryScheduler::new();
    scheduler::run_all(&memory, &|game_id| memory.scheduled_count(game_id));
}

#[tokio::test]
async fn leader_suite() {
    leader::run_all(&AlwaysLeader::new()).await;
    let store = MemoryStore::new();
    leader::run_all(&store.leader_lock()).await;
    leader::exclusive(&store.leader_lock(), &store.leader_lock()).await;
    let lock = store.leader_lock();
    leader::fenced_writes_need_the_lock(&store.fenced(&lock), &store, &lock).await;
}
