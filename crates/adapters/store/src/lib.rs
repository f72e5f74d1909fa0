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
//! - Status changes and rebinds are compare-and-set (`… WHERE game_id = $1 AND status = $2`);
//!   the forward-only rule is also a trigger in the database.
//! - Snapshots and probe-failure counters are written [`BATCH_ROWS`] rows per statement.
//! - A row the code cannot read is a `PortError::Invalid` naming the game and the value.
//! - The URL's password never appears in `Debug`, `Display`, errors or logs ([`StoreConfig`]).
//!
//! Features `postgres` and `sqlite` (both on by default) choose the backends built in.
//! `docs/store.md` describes the tables, the URL forms and the leader lock.
//!
//! ```
//! use galaxy_runtime_model::{GameId, RuntimeRecord, RuntimeStatus, Timestamp};
//! use galaxy_runtime_ports::{StatusChange, StorePort};
//! use galaxy_runtime_store::{Store, StoreConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("galaxy-runtime-doc-{}", GameId::new_random()));
//! std::fs::create_dir_all(&dir)?;
//! let url = format!("sqlite://{}", dir.join("runtime.db").display());
//! let store = Store::connect(&StoreConfig::new(url)).await?;
//!
//! let id = GameId::new_random();
//! store.create_record(RuntimeRecord::new(id, RuntimeStatus::Starting, Timestamp::now())).await?;
//! let change = StatusChange {
//!     game_id: id,
//!     from: RuntimeStatus::Starting,
//!     to: RuntimeStatus::Running,
//!     message: "engine reachable".into(),
//!     at: Timestamp::now(),
//! };
//! assert_eq!(store.transition_status(change.clone()).await?.status, RuntimeStatus::Running);
//! // The same compare-and-set again finds `running`, not `starting`: a conflict.
//! assert!(store.transition_status(change).await.unwrap_err().is_conflict());
//! # store.close();
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("galaxy-runtime-store needs the `postgres` or the `sqlite` feature (or both)");

mod config;
mod connect;
mod error;
mod leader;
pub mod migrate;
mod rows;
pub mod schema;
mod store;
mod types;

pub use config::{Backend, DEFAULT_URL, StoreConfig, redact_url};
#[cfg(feature = "postgres")]
pub use leader::PgLeaderLock;
pub use leader::{FileLeaderLock, StoreLeaderLock};
pub use rows::StoredRecord;
pub use store::{BATCH_ROWS, Store};
