//! A Docker Swarm as one host: the [`DockerPort`] on a manager's API.

use std::sync::Arc;

use async_trait::async_trait;
use bollard::models::LocalNodeState;
use bollard::query_parameters::{
    InspectServiceOptions, ListNetworksOptions, ListNodesOptions, ListServicesOptions,
    ListTasksOptions,
};
use galaxy_runtime_model::ContainerSummary;
use galaxy_runtime_model::text::{MESSAGE_CHARS, escape_foreign};
use galaxy_runtime_ports::{DockerPort, LabelFilter, PortError, PortResult};

use crate::adapter::{CallError, DockerAdapter, is_container_reference};
use crate::config::DockerConfig;
use crate::swarm_mapping::SwarmView;

/// The length of Docker's short container ids.
const SHORT_ID_CHARS: usize = 12;

/// The [`DockerPort`] of a Docker Swarm, on a manager's API: every task of the managed services
/// on every node, each as a container (the `swarm_mapping` module's docs, repeated in
/// `docs/operations.md`, say how).
///
/// A service is managed when its labels (`docker service create --label`) or its containers'
/// labels (`--container-label`) carry the managed label, as a container's do on a daemon; the
/// game's id is in the service's name (`galaxy-game-<id>`). A listing is four calls, made at
/// once: services, tasks, nodes and networks (for the names of the networks of the services'
/// virtual IPs), each bounded by [`DockerConfig::request_timeout`].
///
/// [`DockerPort::inspect`] looks the id up through the manager too — a task's container may run
/// on any node, where the manager cannot inspect it: the id is a task's container id, a task id
/// (a task that had no container yet when it was recorded) or a service id (a service without
/// tasks), in every task the manager keeps (its history included) and every service, whatever
/// their labels. Only an id none of them has, or a task whose service the manager confirms is
/// gone (`GET /services/{id}` answers 404: the task is only waiting for its container to stop),
/// is [`PortError::NotFound`]: a task of a service the Swarm still has is never taken for gone,
/// so a game's record is removed once its service is, and not before.
///
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct SwarmAdapter {
    docker: DockerAdapter,
}

impl SwarmAdapter {
    /// Connects to the manager of `config` (as [`DockerAdapter::connect`] does) and checks that
    /// it is one: a daemon in no swarm, or a worker, is [`PortError::Invalid`] (the setting is
    /// wrong); a node whose swarm state is pending, in error or locked is
    /// [`PortError::Unavailable`] (worth trying again).
    pub async fn connect(config: DockerConfig) -> PortResult<Self> {
        let adapter = Self {
            docker: DockerAdapter::connect(config).await?,
        };
        adapter.check_manager().await?;
        Ok(adapter)
    }

    /// The daemon adapter of the manager (its client, settings and description).
    pub fn daemon_adapter(&self) -> &DockerAdapter {
        &self.docker
    }

    /// The manager as messages name it.
    pub fn daemon(&self) -> &str {
        self.docker.daemon()
    }

    async fn check_manager(&self) -> PortResult<()> {
        let info = self
            .docker
            .bounded("read the swarm state", self.docker.docker().info())
            .await
            .map_err(CallError::into_port_error)?;
        let swarm = info.swarm.unwrap_or_default();
        let daemon = self.docker.daemon();
        match (swarm.local_node_state, swarm.control_available) {
            (Some(LocalNodeState::ACTIVE), Some(true)) => Ok(()),
            (Some(LocalNodeState::ACTIVE), _) => Err(PortError::invalid(format!(
                "Docker host {daemon} is a Swarm worker: kind swarm needs a manager's API (point \
                 it at a manager)"
            ))),
            (Some(LocalNodeState::INACTIVE | LocalNodeState::EMPTY) | None, _) => {
                Err(PortError::invalid(format!(
                    "Docker host {daemon} is in no swarm: kind swarm needs a Swarm manager's API \
                     (or use kind daemon)"
                )))
            }
            (Some(state), _) => Err(PortError::Unavailable {
                message: format!(
                    "Docker host {daemon} is a Swarm node in state {state} ({:?}); a manager's \
                     API is needed",
                    escape_foreign(swarm.error.as_deref().unwrap_or(""), MESSAGE_CHARS)
                ),
                source: None,
            }),
        }
    }

    /// The manager's services, tasks, nodes and networks, asked at once.
    async fn view(&self) -> PortResult<SwarmView> {
        let docker = self.docker.docker();
        let (services, tasks, nodes, networks) = tokio::try_join!(
            self.docker.bounded(
                "list services",
                docker.list_services(None::<ListServicesOptions>)
            ),
            self.docker
                .bounded("list tasks", docker.list_tasks(None::<ListTasksOptions>)),
            self.docker
                .bounded("list nodes", docker.list_nodes(None::<ListNodesOptions>)),
            self.docker.bounded(
                "list networks",
                docker.list_networks(None::<ListNetworksOptions>)
            ),
        )
        .map_err(CallError::into_port_error)?;
        Ok(SwarmView::new(services, tasks, nodes, networks))
    }
}

#[async_trait]
impl DockerPort for SwarmAdapter {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        let listed = self.view().await?.listed(|labels| filter.matches(labels))?;
        Ok(listed
            .into_iter()
            .map(|mapped| {
                mapped.warn_if_incomplete(self.docker.daemon());
                Arc::new(mapped.summary)
            })
            .collect())
    }

    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        if !is_container_reference(container_id) {
            return Err(PortError::invalid(format!(
                "{:?} is not a Docker container, task or service id",
                escape_foreign(container_id, MESSAGE_CHARS)
            )));
        }
        let entries = self.view().await?.everything()?;
        // An exact id first; then, as Docker resolves short ids, a container id it begins (at
        // least Docker's 12 characters of a short id, so a stray short word matches nothing).
        let exact = entries.iter().find(|e| {
            e.mapped.summary.id == container_id || e.task_id.as_deref() == Some(container_id)
        });
        let found = exact.or_else(|| {
            entries.iter().find(|e| {
                container_id.len() >= SHORT_ID_CHARS
                    && e.mapped.summary.id.starts_with(container_id)
            })
        });
        let Some(entry) = found else {
            return Err(PortError::not_found(format!(
                "container, task or service {container_id} at Swarm manager {}",
                self.docker.daemon()
            )));
        };
        if let Some(service_id) = &entry.missing_service {
            // A task outlives its service while its container stops; the game is gone with the
            // service, which the manager is asked about once more (a listing is not proof).
            match self
                .docker
                .bounded(
                    "inspect service",
                    self.docker
                        .docker()
                        .inspect_service(service_id, None::<InspectServiceOptions>),
                )
                .await
                .map_err(CallError::into_port_error)
            {
                Err(PortError::NotFound { .. }) => {
                    return Err(PortError::not_found(format!(
                        "container {container_id} at Swarm manager {}: its service {service_id} \
                         is gone",
                        self.docker.daemon()
                    )));
                }
                Err(other) => return Err(other),
                // The service is there after all: the task is described as it is.
                Ok(_) => {}
            }
        }
        entry.mapped.warn_if_incomplete(self.docker.daemon());
        let mut summary = entry.mapped.summary.clone();
        if entry.task_id.as_deref() == Some(container_id) {
            // Described under the id it was asked by: a task recorded before its container
            // existed is the same task once it has one.
            summary.id = container_id.to_owned();
        }
        Ok(summary)
    }

    fn published_address(&self) -> Option<String> {
        self.docker.config().published_address()
    }
}
