//! Conformance suites for the galaxy-runtime ports, shared by every adapter.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli / host backend
//!              ^
//!              +-- adapters (docker, engine-http, store, memory)
//!                     ^
//!                     +-- testkit (this crate): one suite per port, called by every adapter's tests
//! ```
//!
//! Each port of `galaxy-runtime-ports` documents a contract; this crate turns each contract into
//! public async functions that take the port under test, in the manner of object_store's
//! `integration.rs`. The in-memory adapters run every suite on each plain `cargo test`; the
//! SQLite, PostgreSQL, Docker and HTTP adapters call the very same functions against the real
//! thing. What differs between backends is passed as an argument (a fixture, a timeout), never
//! decided inside the suite.
//!
//! | module | port | entry point |
//! | --- | --- | --- |
//! | [`store`] | `StorePort` + `GameCatalog` | [`store::run_all`] |
//! | [`docker`] | `DockerPort` | [`docker::run_all`] with a [`docker::DockerFixture`] |
//! | [`engine`] | `EnginePort` | [`engine::run_all`] with an [`engine::EngineFixture`] |
//! | [`lobby`] | `LobbyPort` | [`lobby::run_all`] |
//! | [`cache`] | `Cache` | [`cache::run_all`] |
//! | [`scheduler`] | `Scheduler` | [`scheduler::run_all`] |
//! | [`leader`] | `LeaderLock` | [`leader::run_all`] |
//!
//! Every suite function panics (with `assert!`) on a contract violation, with a message that
//! starts with the rule it checks, such as `StorePort::transition_status: a wrong from must give
//! Conflict`. Each `run_all` calls the finer functions of its module, which are public too, so an
//! adapter can run one property on its own while it is being written.
//!
//! The suites never assume they own the backend: every check uses fresh random game ids and
//! container labels, and filters what it lists by what it created, so they may run in parallel
//! on a shared database or Docker daemon.
//!
//! ```
//! use galaxy_runtime_memory::{AlwaysLeader, MemoryCache, MemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // What an adapter's `tests/conformance.rs` does, here with the in-memory adapters.
//! galaxy_runtime_testkit::store::run_all(&MemoryStore::new()).await;
//! galaxy_runtime_testkit::leader::run_all(&AlwaysLeader::new()).await;
//! galaxy_runtime_testkit::cache::run_all(&MemoryCache::new());
//! # }
//! ```

pub mod cache;
pub mod docker;
pub mod engine;
pub mod fleet;
pub mod leader;
pub mod lobby;
pub mod outbox;
pub mod scheduler;
pub mod store;

use std::fmt::Debug;

use galaxy_runtime_model::Timestamp;
use galaxy_runtime_ports::{PortError, PortResult};

/// The current time, cut to whole microseconds: the precision the stores keep, so that a
/// timestamp written and read back compares equal.
pub fn now_micros() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_unix_micros(now.unix_micros()).unwrap_or(now)
}

/// The value of `result`, or a panic naming `rule` and the error.
#[track_caller]
pub(crate) fn expect_ok<T>(rule: &str, result: PortResult<T>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{rule}: expected success, got error {error:?} ({error})"),
    }
}

/// Panics naming `rule` unless `result` is a [`PortError::Conflict`].
#[track_caller]
pub(crate) fn expect_conflict<T: Debug>(rule: &str, result: PortResult<T>) {
    match result {
        Err(PortError::Conflict { .. }) => {}
        other => panic!("{rule}: expected PortError::Conflict, got {other:?}"),
    }
}

/// Panics naming `rule` unless `result` is a [`PortError::NotFound`].
#[track_caller]
pub(crate) fn expect_not_found<T: Debug>(rule: &str, result: PortResult<T>) {
    match result {
        Err(PortError::NotFound { .. }) => {}
        other => panic!("{rule}: expected PortError::NotFound, got {other:?}"),
    }
}
