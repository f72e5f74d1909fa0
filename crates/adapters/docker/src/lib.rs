//! The Docker adapter of galaxy-runtime on bollard: list, inspect and events of managed
//! containers.
//!
//! ```text
//! model  <-  ports  <-  reconciler  <-  cli / host backend
//!              ^
//!              +-- adapters: docker (this crate), engine-http, store, memory
//! ```
//!
//! - [`DockerAdapter`] implements [`galaxy_runtime_ports::DockerPort`]: every managed
//!   container in **one** `GET /containers/json?all=1&filters={"label":[…]}` call, and one
//!   container by id (`GET /containers/{id}/json`, [`PortError::NotFound`] on a 404).
//! - [`SwarmAdapter`] implements the same port on a Docker Swarm manager: the tasks of the
//!   managed services on every node, each reported as a container named after its service
//!   (`galaxy-game-<id>`), in the state of its task (`unknown` on a node that is not ready).
//! - [`ContainerEvents`] turns Docker's `create`, `start`, `die`, `destroy` and `rename` events
//!   of managed containers (and, on a Swarm manager, the events of game services and of nodes)
//!   into debounced calls of a wake callback, reconnecting with backoff.
//! - [`ConnectedHost`] is either, as a host's [`HostKind`] (`daemon`, `swarm`) says.
//!
//! Both ports fill each container's `published_ports` and say where their host publishes
//! them ([`DockerConfig::published_address`]), for `published_port` engine addressing.
//!
//! The daemon is the one `DOCKER_HOST` names, else the local socket ([`DockerConfig`]); a
//! `tcp://` or `https://` daemon on another machine is reached over TLS with a CA, a client
//! certificate and key (`tls_ca`, `tls_cert`, `tls_key`, or `DOCKER_TLS_VERIFY` with
//! `DOCKER_CERT_PATH`), each file checked at connect and named in every refusal. A
//! missing socket, or one nobody answers on, is a [`PortError::Unavailable`] naming the path —
//! when connecting and on every later call. Containers Docker describes incompletely are
//! reported with fallbacks and a warning, never dropped (see the table in the `mapping`
//! module's docs, repeated in `docs/adapters.md`).
//!
//! ```no_run
//! use galaxy_runtime_docker::{ContainerEvents, DockerAdapter, EventsConfig};
//! use galaxy_runtime_model::Config;
//! use galaxy_runtime_ports::{DockerPort, LabelFilter};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn run() -> Result<(), galaxy_runtime_ports::PortError> {
//! let config = Config::default();
//! let docker = DockerAdapter::connect_from_env().await?;
//! let managed = LabelFilter::single(&config.managed_label, &config.managed_label_value);
//! for container in docker.list_managed(&managed).await? {
//!     println!("{} {} {}", container.id, container.name, container.state);
//! }
//!
//! let cancel = CancellationToken::new();
//! let events = ContainerEvents::new(&docker, managed, EventsConfig::from_config(&config), || {
//!     println!("something changed: run a pass");
//! });
//! let watcher = events.spawn(cancel.clone());
//! cancel.cancel();
//! let _ = watcher.await;
//! # Ok(())
//! # }
//! ```
//!
//! [`PortError::NotFound`]: galaxy_runtime_ports::PortError::NotFound
//! [`PortError::Unavailable`]: galaxy_runtime_ports::PortError::Unavailable

mod adapter;
mod config;
mod error;
mod events;
mod host;
mod mapping;
mod swarm;
mod swarm_mapping;
mod tls;

pub use adapter::{DockerAdapter, FALLBACK_API_VERSION};
pub use config::{
    DEFAULT_DOCKER_HOST, DOCKER_CERT_PATH_VAR, DOCKER_HOST_VAR, DOCKER_TLS_VAR,
    DOCKER_TLS_VERIFY_VAR, DockerConfig, EventsConfig, HostKind,
};
pub use events::{ContainerEvents, WATCHED_ACTIONS, WATCHED_SWARM_ACTIONS};
pub use host::ConnectedHost;
pub use swarm::SwarmAdapter;
pub use tls::DEFAULT_TLS_PORT;
