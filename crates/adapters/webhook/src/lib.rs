//! The webhook lobby adapter of galaxy-runtime: tells a lobby reached over HTTP of each event
//! of the outbox.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli / host backend
//!              ^
//!              +-- adapters: docker, engine-http, store, webhook (this crate), memory
//! ```
//!
//! [`WebhookLobby`] implements [`galaxy_runtime_ports::LobbyPort`]: it `POST`s each
//! [`LobbyEvent`](galaxy_runtime_model::LobbyEvent) as its JSON (CONTRACT §7) with
//! `X-Galaxy-Event-Id` and, when a [`WebhookSecret`] is set, `X-Galaxy-Signature-256:
//! sha256=<hex HMAC-SHA256 of the body>`. A 2xx answer accepts the event; any other answer, a
//! redirect (never followed), a timeout or a connection failure is a retryable error, and the
//! reconciler's relay tries again with backoff. It runs on hyper-util's pooled HTTP/1.1 client,
//! the one the engine adapter and bollard already bring, in a crate of its own so that the
//! engine prober carries no signing code and each adapter keeps one port.
//!
//! ```no_run
//! use galaxy_runtime_model::{Config, JobResult, LobbyEvent, EventId, GameId, Timestamp};
//! use galaxy_runtime_ports::LobbyPort;
//! use galaxy_runtime_webhook::{WebhookConfig, WebhookLobby, WebhookSecret};
//!
//! # async fn tell() -> Result<(), galaxy_runtime_ports::PortError> {
//! let config = WebhookConfig::new("http://127.0.0.1:9000/galaxy/events", &Config::default())?
//!     .with_secret(WebhookSecret::new("a shared secret")?);
//! let lobby = WebhookLobby::new(config);
//! lobby
//!     .on_runtime_job_result(&LobbyEvent {
//!         event_id: EventId::new_random(),
//!         game_id: GameId::new_random(),
//!         result: JobResult::container_disappeared(),
//!         at: Timestamp::now(),
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod lobby;
#[cfg(feature = "test-server")]
pub mod test_server;

pub use config::{WebhookConfig, WebhookSecret, parse_url};
pub use lobby::{EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookLobby, signature};
