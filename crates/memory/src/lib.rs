//! In-memory implementations of every galaxy-runtime port, for tests, examples and simulations.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli / host backend
//!              ^
//!              +-- adapters (docker, engine-http, store, memory = this crate)
//! ```
//!
//! This crate is an adapter like the Docker, HTTP and SQL ones, except that the world it talks to
//! lives in the process: containers, records, engines and the lobby are plain data behind
//! locks. It is what examples, benchmarks and behaviour tests run the reconciler on, and it
//! passes the same conformance suites (`galaxy-runtime-testkit`) as the real adapters, so a
//! fleet simulated here behaves like a real one:
//!
//! - [`MemoryStore`] keeps records, game projections and snapshots, and enforces
//!   compare-and-set and the forward-only rule exactly as [`StorePort`] says;
//! - [`MemoryDocker`] holds containers a test can add, kill, start, pause, rename, relabel and
//!   remove, and can play a daemon outage;
//! - [`MemoryEngine`] answers per endpoint (JSON, error text, HTTP-like failures) after a
//!   latency, flaps on demand, and records how many probes were in flight at once;
//! - [`MemoryLobby`], [`MemoryCache`], [`MemoryScheduler`] record what they are told;
//!   [`AlwaysLeader`] is the leader lock of a single process;
//! - [`MemoryPorts`] bundles one of each, and seeds healthy games in one call.
//!
//! Every type is `Send + Sync` and safe to share through an `Arc`; no lock is held across an
//! `await`. Each counts its calls, and the store, Docker and lobby fakes can be told to fail,
//! for fault tests. Latency uses `tokio::time::sleep`, so tests with paused time run instantly.
//!
//! ```
//! use galaxy_runtime_memory::{MemoryDocker, MemoryEngine, MemoryStore};
//! use galaxy_runtime_model::{Config, ContainerState, GameId, RuntimeRecord, RuntimeStatus, Timestamp};
//! use galaxy_runtime_ports::{DockerPort, EnginePort, Expected, LabelFilter, StatusChange, StorePort};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), galaxy_runtime_ports::PortError> {
//! let config = Config::default();
//! let game_id = GameId::new_random();
//!
//! // A running game container, its record and its engine.
//! let docker = MemoryDocker::new();
//! let container = MemoryDocker::game_container(&config, game_id, "c1", ContainerState::Running);
//! docker.add(container);
//! let store = MemoryStore::new();
//! let mut record = RuntimeRecord::new(game_id, RuntimeStatus::Starting, Timestamp::now());
//! record.current_container_id = "c1".into();
//! record.engine_endpoint = format!("http://galaxy-game-{game_id}:8080");
//! store.insert_record(record.clone());
//! let engine = MemoryEngine::new();
//! engine.set_json(&record.engine_endpoint, json!({"turn": 1}));
//!
//! // What a pass sees…
//! let filter = LabelFilter::single(&config.managed_label, &config.managed_label_value);
//! assert_eq!(docker.list_managed(&filter).await?.len(), 1);
//! assert_eq!(engine.status(&record.engine_endpoint).await?, json!({"turn": 1}));
//!
//! // …and a compare-and-set it makes.
//! let change = StatusChange {
//!     game_id,
//!     expected: Expected::of(&record),
//!     to: RuntimeStatus::Running,
//!     message: "engine reachable".into(),
//!     at: Timestamp::now(),
//!     event: None,
//! };
//! assert_eq!(store.transition_status(change.clone()).await?.status, RuntimeStatus::Running);
//! assert!(store.transition_status(change).await.unwrap_err().is_conflict());
//! assert_eq!(store.calls().transition_status, 2);
//!
//! // A container dies.
//! docker.kill("c1")?;
//! assert_eq!(docker.inspect("c1").await?.state, ContainerState::Exited);
//! # Ok(())
//! # }
//! ```
//!
//! [`StorePort`]: galaxy_runtime_ports::StorePort

mod cache;
mod docker;
mod engine;
mod leader;
mod lobby;
mod scheduler;
mod store;
mod table;
mod world;

pub use cache::MemoryCache;
pub use docker::{DockerCalls, DockerMethod, MemoryDocker};
pub use engine::{DEFAULT_BODY_LIMIT, EngineAnswer, MemoryEngine};
pub use leader::AlwaysLeader;
pub use lobby::MemoryLobby;
pub use scheduler::MemoryScheduler;
pub use store::{MemoryLeaderLock, MemoryStore, StoreCalls, StoreMethod};
pub use world::MemoryPorts;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, going on with the data if another thread panicked while holding it: every
/// critical section here leaves the data consistent, and a test that panicked already failed.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
