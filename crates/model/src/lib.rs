//! The domain model of galaxy-runtime: the bottom layer of the architecture.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli / host backend
//!              ^
//!              +-- adapters (docker, engine-http, store, memory)
//! ```
//!
//! This crate holds the words of the reconcile contract as types — [`GameId`],
//! [`RuntimeStatus`], [`RuntimeRecord`], [`ContainerSummary`], [`GameProjection`],
//! [`JobResult`], [`ProbeOutcome`], the [`Config`] and the [`Scenario`] JSON — and nothing that
//! does I/O: no tokio, no Docker, no database, no HTTP. Everything here is plain data that
//! serialises to the JSON of the contract. Two helpers serve every layer: [`env`](mod@env) sets any serde
//! configuration struct (this [`Config`] and each adapter's) from environment variables and
//! text, and [`text`] escapes what comes from outside before it is shown.
//!
//! ```
//! use galaxy_runtime_model::{Config, GameId, RuntimeStatus};
//!
//! let id: GameId = "6F1C0E7A-3B8D-4F7C-9E2A-1B2C3D4E5F60".parse().unwrap();
//! assert_eq!(id.to_string(), "6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60");
//! assert!(RuntimeStatus::Removed.is_terminal());
//! assert_eq!(Config::default().failure_threshold.get(), 3);
//! ```

mod config;
mod container;
pub mod duration;
pub mod env;
mod event;
mod game_id;
mod job;
mod record;
mod scenario;
pub mod text;
mod time;

pub use config::{Config, ConfigError, EngineAddressing};
pub use container::{ContainerState, ContainerSummary};
pub use event::{EventId, LOBBY_STATUS_CHOICES, LobbyEvent, OutboxEntry};
pub use game_id::{GameId, ParseGameIdError};
pub use job::{JobResult, Op};
pub use record::{
    GameProjection, ProbeOutcome, RuntimeRecord, RuntimeStatus, Snapshot, StatusTransitionError,
    unstorable_reason,
};
pub use scenario::{HostObservation, Observation, PassKind, Scenario, ScenarioError};
pub use time::{ParseTimestampError, Timestamp};
