//! The engine HTTP adapter of galaxy-runtime: probes a game engine's status resource.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli / host backend
//!              ^
//!              +-- adapters: docker, engine-http (this crate), store, memory
//! ```
//!
//! [`HttpEngine`] implements [`galaxy_runtime_ports::EnginePort`] on hyper-util's pooled
//! HTTP/1.1 client (the one bollard already brings): `GET {endpoint}{engine_status_path}`,
//! the whole request under `probe_timeout`, the body capped at `engine_max_body_bytes`,
//! redirects never followed, idle connections bounded per engine and in all
//! (`engine_pool_max_idle_per_engine`, `engine_pool_max_idle`). Which endpoint to probe (`engine_addressing`) is decided by the
//! reconciler's `probe_endpoint`, not here: this crate only speaks HTTP.
//!
//! ```no_run
//! use galaxy_runtime_engine_http::HttpEngine;
//! use galaxy_runtime_model::Config;
//! use galaxy_runtime_ports::EnginePort;
//!
//! # async fn probe() -> Result<(), galaxy_runtime_ports::PortError> {
//! let engine = HttpEngine::from_config(&Config::default());
//! let snapshot = engine.status("http://galaxy-game-6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60:8080").await?;
//! println!("turn {}", snapshot["turn"]);
//! # Ok(())
//! # }
//! ```

mod config;
mod engine;
mod pool;

pub use config::EngineHttpConfig;
pub use engine::HttpEngine;
