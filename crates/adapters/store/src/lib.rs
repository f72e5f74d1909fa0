//! The store adapter of galaxy-runtime: [`StorePort`](galaxy_runtime_ports::StorePort),
//! [`GameCatalog`](galaxy_runtime_ports::GameCatalog) and
//! [`LeaderLock`](galaxy_runtime_ports::LeaderLock) on PostgreSQL (production) and SQLite (the
//! embedded default), through diesel-async.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli / host backend
//!              ^
//!              +-- adapters (docker, engine-http, store: this crate, memory)
//! ```
//!
//! - One diesel schema ([`schema`]) serves both backends through portable SQL types (UUID,
//!   timestamp, JSON); each backend has its own embedded migrations, applied by
//!   [`Store::connect`], which refuses a database migrated by a newer build.
//! - Every record write is compare-and-set on what the caller saw (`… WHERE game_id = $1 AND
//!   status = $2 AND current_container_id = $3`); the forward-only rule is also a trigger in
//!   the database.
//! - [`Store::fenced`] gives a handle whose writes commit only while a leader lock is held (on
//!   PostgreSQL, on the lock's own session).
//! - Snapshots and probe-failure counters are written [`BATCH_ROWS`] rows per statement.
//! - A row the code cannot read is a `PortError::Invalid` naming the game and the value.
//! - The URL's password never appears in `Debug`, `Display`, errors or logs ([`StoreConfig`]).
//!
//! Features `postgres` and `sqlite` (both on by default) choose the backends built in.
//! `docs/store.md` describes the tables, the URL forms and the leader lock.
//!
//! ```
//! use galaxy_runtime_model::{GameId, RuntimeRecord, RuntimeStatus, Timestamp};
//! use galaxy_runtime_ports::{Expected, StatusChange, StorePort};
//! use galaxy_runtime_store::{Store, StoreConfig};
//!
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("galaxy-runtime-doc-{}", GameId::new_random()));
//! std::fs::create_dir_all(&dir)?;
//! let url = format!("sqlite://{}", dir.join("runtime.db").display());
//! let store = Store::connect(&StoreConfig::new(url)).await?;
//!
//! let id = GameId::new_random();
//! let record = store.create_record(RuntimeRecord::new(id, RuntimeStatus::Starting, Timestamp::now())).await?;
//! let change = StatusChange {
//!     game_id: id,
//!     expected: Expected::of(&record),
//!     to: RuntimeStatus::Running,
//!     message: "engine reachable".into(),
//!     at: Timestamp::now(),
//!     event: None,
//! };
//! assert_eq!(store.transition_status(change.clone()).await?.status, RuntimeStatus::Running);
//! // The same compare-and-set again finds `running`, not `starting`: a conflict.
//! assert!(store.transition_status(change).await.unwrap_err().is_conflict());
//! # store.close();
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! # // A build without SQLite has no database of its own to run the example on.
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("galaxy-runtime-store needs the `postgres` or the `sqlite` feature (or both)");

#[macro_use]
mod macros;

mod catalog;
mod config;
mod connect;
mod error;
mod leader;
pub mod migrate;
mod outbox;
mod records;
mod rows;
pub mod schema;
mod sql;
mod store;
#[cfg(feature = "postgres")]
mod tls;
mod types;

pub use config::{Backend, DEFAULT_URL, StoreConfig, redact_url};
#[cfg(feature = "postgres")]
pub use leader::PgLeaderLock;
pub use leader::{FileLeaderLock, StoreLeaderLock};
pub use rows::StoredRecord;
pub use sql::BATCH_ROWS;
pub use store::{SchemaPolicy, Store};
