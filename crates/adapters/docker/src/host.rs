//! A Docker host of either kind, chosen by its settings.

use std::sync::Arc;

use galaxy_runtime_ports::{DockerPort, LabelFilter, PortResult};

use crate::config::{DockerConfig, EventsConfig, HostKind};
use crate::{ContainerEvents, DockerAdapter, SwarmAdapter};

/// A connected Docker host: a daemon or a Swarm manager, as [`DockerConfig::kind`] says.
///
/// What a command needs of a host whatever its kind: its [`DockerPort`], its description and its
/// events watcher.
#[derive(Debug, Clone)]
pub enum ConnectedHost {
    /// One daemon.
    Daemon(DockerAdapter),
    /// A Swarm manager.
    Swarm(SwarmAdapter),
}

impl ConnectedHost {
    /// Connects to the host of `config`, of its kind ([`DockerAdapter::connect`],
    /// [`SwarmAdapter::connect`]; their errors).
    pub async fn connect(config: DockerConfig) -> PortResult<Self> {
        match config.kind {
            HostKind::Daemon => DockerAdapter::connect(config).await.map(Self::Daemon),
            HostKind::Swarm => SwarmAdapter::connect(config).await.map(Self::Swarm),
        }
    }

    /// The host's port.
    pub fn port(&self) -> Arc<dyn DockerPort> {
        match self {
            Self::Daemon(adapter) => Arc::new(adapter.clone()),
            Self::Swarm(adapter) => Arc::new(adapter.clone()),
        }
    }

    /// The daemon adapter (of the manager, for a Swarm).
    pub fn daemon_adapter(&self) -> &DockerAdapter {
        match self {
            Self::Daemon(adapter) => adapter,
            Self::Swarm(adapter) => adapter.daemon_adapter(),
        }
    }

    /// The host as messages name it.
    pub fn daemon(&self) -> &str {
        self.daemon_adapter().daemon()
    }

    /// The events watcher of the host's kind ([`ContainerEvents::new`],
    /// [`ContainerEvents::for_swarm`]).
    pub fn events(
        &self,
        filter: LabelFilter,
        config: EventsConfig,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> ContainerEvents {
        match self {
            Self::Daemon(adapter) => ContainerEvents::new(adapter, filter, config, wake),
            Self::Swarm(adapter) => ContainerEvents::for_swarm(adapter, filter, config, wake),
        }
    }
}
