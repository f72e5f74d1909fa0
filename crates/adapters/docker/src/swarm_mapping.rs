//! A Swarm manager's services, tasks, nodes and networks turned into the model's
//! [`ContainerSummary`]: each task of a game's service is reported as a container, so that the
//! planner's rules apply to a Swarm unchanged.
//!
//! | container field | from |
//! | --- | --- |
//! | `id` | the task's container id; the task id while the task has no container yet; the service id for a service without any task |
//! | `name` | `/` and the service's name (`/galaxy-game-<id>`), so game ids come out as on a daemon |
//! | `image_ref` | the task's image (`ContainerSpec.Image`) |
//! | `labels` | the service's labels (`--label`) and the task's container labels (`--container-label`); a key set in both takes the container label, the one the container itself carries |
//! | `state` | the task's state (table below); `unknown` when the task's node is not `ready` and the state is not final |
//! | `created` | when the task was created, to the second |
//! | `addresses` | the service's virtual IP on each network, by network name |
//! | `published_ports` | the service's ports published in `ingress` mode (reachable at every node, the manager included), target port to published port |
//!
//! Task states only move forward, and so do the container states they map to:
//!
//! | Swarm task state | container state |
//! | --- | --- |
//! | `new`, `allocated`, `pending`, `assigned`, `accepted`, `preparing`, `ready`, `starting` | `created` |
//! | `running` | `running` |
//! | `complete`, `shutdown`, `failed` | `exited` |
//! | `rejected` | `dead` (the node refused to run it) |
//! | `remove` | `removing` |
//! | `orphaned` | `unknown` (its node has been gone so long the manager gave up on it) |
//! | none | `dead`, with a warning, as the daemon adapter does |
//!
//! `paused` and `restarting` never appear: the Swarm restarts a task as a new task, on a new
//! container (the record is then rebound to it). The states from `complete` on are final: a task
//! in one never changes again, so it keeps its state even when its node is down; any other task
//! on a node that is not `ready` (down, disconnected, unknown, or gone from the node list) is
//! `unknown` — it may well still run, and must never be taken for missing.
//!
//! Which tasks are reported: of each service, the newest task of each slot (of each node, for
//! a global service) whose desired state is `running` or before it; when a service has none
//! (scaled to 0, or every task shut down), its newest task; when it has no task at all, the
//! service itself, `created`. Tasks the Swarm replaced (desired state `shutdown`) are history
//! and not reported, so a restarted task's game follows its new container.
//!
//! bollard 0.21.1's `Task` has no `NetworksAttachments` (the Engine API's schema leaves the
//! field out), so a task's own addresses cannot be read; the service's virtual IP on a network
//! reaches the service's task from that network (`vip` endpoint mode; a `dnsrr` service has
//! none).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, Network, Node, NodeState,
    Service, Task, TaskState,
};
use galaxy_runtime_model::text::{MESSAGE_CHARS, escape_foreign};
use galaxy_runtime_model::{ContainerState, ContainerSummary, Timestamp};
use galaxy_runtime_ports::PortError;

use crate::mapping::Mapped;

/// The container state of a task in `state` (the module's table).
pub(crate) fn container_state(state: TaskState) -> ContainerState {
    match state {
        TaskState::NEW
        | TaskState::ALLOCATED
        | TaskState::PENDING
        | TaskState::ASSIGNED
        | TaskState::ACCEPTED
        | TaskState::PREPARING
        | TaskState::READY
        | TaskState::STARTING => ContainerState::Created,
        TaskState::RUNNING => ContainerState::Running,
        TaskState::COMPLETE | TaskState::SHUTDOWN | TaskState::FAILED => ContainerState::Exited,
        TaskState::REJECTED => ContainerState::Dead,
        TaskState::REMOVE => ContainerState::Removing,
        TaskState::ORPHANED => ContainerState::Unknown,
    }
}

/// Whether a task in `state` can never change again (Swarm's terminal states, `complete` on).
pub(crate) fn is_final(state: TaskState) -> bool {
    state >= TaskState::COMPLETE
}

/// The container state of a task in `state` (`None`: the manager gave none) on a node in
/// `node` (`None`: not on a node yet, `Some(None)`: on a node the manager does not list), and
/// the gap to warn of.
fn task_state(
    state: Option<TaskState>,
    node: Option<Option<NodeState>>,
) -> (ContainerState, Option<String>) {
    let Some(state) = state else {
        return (
            ContainerState::Dead,
            Some("no task state (reported as dead)".to_owned()),
        );
    };
    let node_ready = match node {
        None => true,
        Some(node) => node == Some(NodeState::READY),
    };
    if is_final(state) || node_ready {
        (container_state(state), None)
    } else {
        (ContainerState::Unknown, None)
    }
}

/// What the manager said, indexed: services, node states and network names by id.
pub(crate) struct SwarmView {
    services: Vec<Service>,
    tasks: Vec<Task>,
    nodes: HashMap<String, Option<NodeState>>,
    networks: HashMap<String, String>,
}

/// One task (or task-less service) as a container, with what identifies it besides its id.
pub(crate) struct Entry {
    /// What is reported.
    pub mapped: Mapped,
    /// The task's id, when it is a task (its container id is the summary's id once it has one).
    pub task_id: Option<String>,
    /// The id of a task's service when the manager did not list that service (it is being
    /// removed, or was): whether the game is gone depends on it.
    pub missing_service: Option<String>,
}

impl SwarmView {
    /// The manager's four answers.
    pub fn new(
        services: Vec<Service>,
        tasks: Vec<Task>,
        nodes: Vec<Node>,
        networks: Vec<Network>,
    ) -> Self {
        Self {
            services,
            tasks,
            nodes: nodes
                .into_iter()
                .filter_map(|n| Some((n.id?, n.status.and_then(|s| s.state))))
                .collect(),
            networks: networks
                .into_iter()
                .filter_map(|n| Some((n.id?, n.name?)))
                .collect(),
        }
    }

    /// The containers a listing reports (see the module's docs for which tasks), of every
    /// service whose labels satisfy `managed`.
    pub fn listed(
        &self,
        managed: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> Result<Vec<Mapped>, PortError> {
        let by_service = self.tasks_by_service();
        let mut listed = Vec::new();
        for service in &self.services {
            let Some(service_id) = service.id.as_deref() else {
                continue;
            };
            if !managed(&service_labels(service, None)) {
                continue;
            }
            let tasks = by_service
                .get(service_id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for task in reported_tasks(tasks) {
                listed.push(self.task_entry(service, task)?.mapped);
            }
            if tasks.is_empty() {
                listed.push(self.service_entry(service)?.mapped);
            }
        }
        Ok(listed)
    }

    /// Every task of every service (history included), and every service without a task,
    /// whatever their labels: what an inspect looks an id up in.
    pub fn everything(&self) -> Result<Vec<Entry>, PortError> {
        let services: HashMap<&str, &Service> = self
            .services
            .iter()
            .filter_map(|s| Some((s.id.as_deref()?, s)))
            .collect();
        let by_service = self.tasks_by_service();
        let mut entries = Vec::new();
        for task in &self.tasks {
            let service = task
                .service_id
                .as_deref()
                .and_then(|id| services.get(id).copied());
            let fallback = Service::default();
            let mut entry = self.task_entry(service.unwrap_or(&fallback), task)?;
            if service.is_none() {
                entry.missing_service = task.service_id.clone();
            }
            entries.push(entry);
        }
        for service in &self.services {
            if service
                .id
                .as_deref()
                .is_some_and(|id| !by_service.contains_key(id))
            {
                entries.push(self.service_entry(service)?);
            }
        }
        Ok(entries)
    }

    fn tasks_by_service(&self) -> HashMap<&str, Vec<&Task>> {
        let mut by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
        for task in &self.tasks {
            if let Some(service_id) = task.service_id.as_deref() {
                by_service.entry(service_id).or_default().push(task);
            }
        }
        by_service
    }

    /// A task of `service` as a container.
    fn task_entry(&self, service: &Service, task: &Task) -> Result<Entry, PortError> {
        let mut gaps = Vec::new();
        let name = service_name(service, &mut gaps);
        let container_id = task
            .status
            .as_ref()
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.container_id.clone())
            .filter(|id| !id.is_empty());
        let task_id = task.id.clone().filter(|id| !id.is_empty());
        let Some(id) = container_id.or_else(|| task_id.clone()) else {
            return Err(PortError::invalid(format!(
                "the Swarm manager described a task of service {:?} without an id; it cannot \
                 be reported",
                escape_foreign(&name, MESSAGE_CHARS)
            )));
        };
        let container_spec = task.spec.as_ref().and_then(|s| s.container_spec.as_ref());
        let image_ref = container_spec
            .and_then(|c| c.image.clone())
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| {
                gaps.push("no image".to_owned());
                String::new()
            });
        let node = task
            .node_id
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(|node| self.nodes.get(node).copied().flatten());
        let (state, gap) = task_state(task.status.as_ref().and_then(|s| s.state), node);
        gaps.extend(gap);
        let created = created(task.created_at.as_deref(), &mut gaps);
        Ok(Entry {
            mapped: Mapped {
                summary: ContainerSummary {
                    id,
                    name,
                    image_ref,
                    labels: service_labels(service, container_spec.and_then(|c| c.labels.as_ref())),
                    state,
                    created,
                    addresses: self.addresses(service),
                    host: String::new(),
                    published_ports: published_ports(service),
                },
                gaps,
            },
            task_id,
            missing_service: None,
        })
    }

    /// A service without any task, as a container that was never started.
    fn service_entry(&self, service: &Service) -> Result<Entry, PortError> {
        let mut gaps = Vec::new();
        let name = service_name(service, &mut gaps);
        let Some(id) = service.id.clone().filter(|id| !id.is_empty()) else {
            return Err(PortError::invalid(format!(
                "the Swarm manager described service {:?} without an id; it cannot be reported",
                escape_foreign(&name, MESSAGE_CHARS)
            )));
        };
        let container_spec = service
            .spec
            .as_ref()
            .and_then(|s| s.task_template.as_ref())
            .and_then(|t| t.container_spec.as_ref());
        let image_ref = container_spec
            .and_then(|c| c.image.clone())
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| {
                gaps.push("no image".to_owned());
                String::new()
            });
        let created = created(service.created_at.as_deref(), &mut gaps);
        Ok(Entry {
            mapped: Mapped {
                summary: ContainerSummary {
                    id,
                    name,
                    image_ref,
                    labels: service_labels(service, container_spec.and_then(|c| c.labels.as_ref())),
                    state: ContainerState::Created,
                    created,
                    addresses: self.addresses(service),
                    host: String::new(),
                    published_ports: published_ports(service),
                },
                gaps,
            },
            task_id: None,
            missing_service: None,
        })
    }

    /// The service's virtual IP on each network it has one on, by network name (an address
    /// without its prefix length; a network the manager does not list is left out).
    fn addresses(&self, service: &Service) -> BTreeMap<String, String> {
        service
            .endpoint
            .as_ref()
            .and_then(|e| e.virtual_ips.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|vip| {
                let network = self.networks.get(vip.network_id.as_deref()?)?;
                let address = vip.addr.as_deref()?;
                let address = address.split_once('/').map_or(address, |(a, _)| a);
                (!address.is_empty()).then(|| (network.clone(), address.to_owned()))
            })
            .collect()
    }
}

/// The tasks of one service a listing reports: the newest of each slot (node, for a global
/// service) among those meant to run; else the newest of all.
fn reported_tasks<'a>(tasks: &[&'a Task]) -> Vec<&'a Task> {
    let newest = |a: &&Task, b: &&Task| {
        (created_of(a), a.id.as_deref()).cmp(&(created_of(b), b.id.as_deref()))
    };
    let mut by_slot: BTreeMap<(i64, &str), &Task> = BTreeMap::new();
    for task in tasks.iter().copied().filter(|t| is_meant_to_run(t)) {
        let slot = task.slot.unwrap_or(0);
        let node = if slot == 0 {
            task.node_id.as_deref().unwrap_or("")
        } else {
            ""
        };
        by_slot
            .entry((slot, node))
            .and_modify(|kept| {
                if newest(&task, kept).is_gt() {
                    *kept = task;
                }
            })
            .or_insert(task);
    }
    if by_slot.is_empty() {
        tasks.iter().copied().max_by(newest).into_iter().collect()
    } else {
        by_slot.into_values().collect()
    }
}

/// Whether the Swarm means the task to run: its desired state is `running` or before it (a
/// task the Swarm replaced or is removing wants `shutdown` or `remove`).
fn is_meant_to_run(task: &Task) -> bool {
    task.desired_state.is_some_and(|d| d <= TaskState::RUNNING)
}

fn created_of(task: &Task) -> Option<Timestamp> {
    task.created_at.as_deref().and_then(|t| t.parse().ok())
}

/// `/` and the service's name, or `""` with a gap.
fn service_name(service: &Service, gaps: &mut Vec<String>) -> String {
    match service
        .spec
        .as_ref()
        .and_then(|s| s.name.as_deref())
        .filter(|n| !n.is_empty())
    {
        Some(name) => format!("/{name}"),
        None => {
            gaps.push("no service name".to_owned());
            String::new()
        }
    }
}

/// The service's labels with the container labels over them.
fn service_labels(
    service: &Service,
    container: Option<&HashMap<String, String>>,
) -> BTreeMap<String, String> {
    let spec = service.spec.as_ref();
    let template = spec
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.labels.as_ref());
    let mut labels: BTreeMap<String, String> = spec
        .and_then(|s| s.labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(
        container
            .or(template)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    labels
}

/// The service's TCP ports published in `ingress` mode: target port to published port.
fn published_ports(service: &Service) -> BTreeMap<u16, u16> {
    service
        .endpoint
        .as_ref()
        .and_then(|e| e.ports.as_ref())
        .into_iter()
        .flatten()
        .filter(|p| {
            matches!(
                p.protocol,
                None | Some(
                    EndpointPortConfigProtocolEnum::TCP | EndpointPortConfigProtocolEnum::EMPTY
                )
            ) && matches!(
                p.publish_mode,
                None | Some(
                    EndpointPortConfigPublishModeEnum::INGRESS
                        | EndpointPortConfigPublishModeEnum::EMPTY
                )
            )
        })
        .filter_map(|p| {
            let target = u16::try_from(p.target_port?).ok()?;
            let published = u16::try_from(p.published_port?).ok().filter(|p| *p != 0)?;
            Some((target, published))
        })
        .collect()
}

/// A creation time cut to the second, or the epoch with a gap.
fn created(text: Option<&str>, gaps: &mut Vec<String>) -> Timestamp {
    text.and_then(|t| t.parse::<Timestamp>().ok())
        .and_then(|t| Timestamp::from_unix_seconds(t.as_datetime().timestamp()))
        .unwrap_or_else(|| {
            gaps.push("no creation time (reported as 1970-01-01T00:00:00Z)".to_owned());
            Timestamp::from_unix_seconds(0).unwrap_or_else(Timestamp::now)
        })
}

#[cfg(test)]
mod tests {
    use bollard::models::{
        ContainerStatus, EndpointPortConfig, NodeStatus, ServiceEndpoint,
        ServiceEndpointVirtualIps, ServiceSpec, TaskSpec, TaskSpecContainerSpec, TaskStatus,
    };

    use super::*;

    const SERVICE: &str = "svc1";
    const NAME: &str = "galaxy-game-6f1c0e7a-3b8d-4f7c-9e2a-1b2c3d4e5f60";

    fn service(id: &str, name: &str, labels: &[(&str, &str)]) -> Service {
        Service {
            id: Some(id.to_owned()),
            created_at: Some("2026-11-27T10:00:00.5Z".to_owned()),
            spec: Some(ServiceSpec {
                name: Some(name.to_owned()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                task_template: Some(TaskSpec {
                    container_spec: Some(TaskSpecContainerSpec {
                        image: Some("galaxy/engine:1.4".to_owned()),
                        labels: Some(HashMap::from([(
                            "galaxy.managed".to_owned(),
                            "true".to_owned(),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            endpoint: Some(ServiceEndpoint {
                ports: Some(vec![
                    EndpointPortConfig {
                        protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                        target_port: Some(8080),
                        published_port: Some(30080),
                        publish_mode: Some(EndpointPortConfigPublishModeEnum::INGRESS),
                        ..Default::default()
                    },
                    EndpointPortConfig {
                        protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                        target_port: Some(9090),
                        published_port: Some(30090),
                        publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                        ..Default::default()
                    },
                ]),
                virtual_ips: Some(vec![
                    ServiceEndpointVirtualIps {
                        network_id: Some("net1".to_owned()),
                        addr: Some("10.0.1.2/24".to_owned()),
                    },
                    ServiceEndpointVirtualIps {
                        network_id: Some("gone".to_owned()),
                        addr: Some("10.0.9.2/24".to_owned()),
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    struct T {
        id: &'static str,
        slot: i64,
        node: &'static str,
        state: TaskState,
        desired: TaskState,
        container: &'static str,
        created: &'static str,
    }

    fn task(t: T) -> Task {
        Task {
            id: Some(t.id.to_owned()),
            service_id: Some(SERVICE.to_owned()),
            slot: Some(t.slot),
            node_id: (!t.node.is_empty()).then(|| t.node.to_owned()),
            created_at: Some(t.created.to_owned()),
            desired_state: Some(t.desired),
            spec: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some("galaxy/engine:1.4".to_owned()),
                    labels: Some(HashMap::from([
                        ("galaxy.managed".to_owned(), "true".to_owned()),
                        ("galaxy.engine_version".to_owned(), "1.4.0".to_owned()),
                    ])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(TaskStatus {
                state: Some(t.state),
                container_status: (!t.container.is_empty()).then(|| ContainerStatus {
                    container_id: Some(t.container.to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn running(id: &'static str, container: &'static str, created: &'static str) -> T {
        T {
            id,
            slot: 1,
            node: "node1",
            state: TaskState::RUNNING,
            desired: TaskState::RUNNING,
            container,
            created,
        }
    }

    fn node(id: &str, state: NodeState) -> Node {
        Node {
            id: Some(id.to_owned()),
            status: Some(NodeStatus {
                state: Some(state),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn network(id: &str, name: &str) -> Network {
        Network {
            id: Some(id.to_owned()),
            name: Some(name.to_owned()),
            ..Default::default()
        }
    }

    fn view(services: Vec<Service>, tasks: Vec<Task>, nodes: Vec<Node>) -> SwarmView {
        SwarmView::new(services, tasks, nodes, vec![network("net1", "galaxy")])
    }

    fn managed(labels: &BTreeMap<String, String>) -> bool {
        labels.get("galaxy.managed").map(String::as_str) == Some("true")
    }

    fn listed(view: &SwarmView) -> Vec<ContainerSummary> {
        view.listed(managed)
            .unwrap()
            .into_iter()
            .map(|m| m.summary)
            .collect()
    }

    #[test]
    fn every_task_state_maps_forward() {
        use ContainerState as C;
        let table = [
            (TaskState::NEW, C::Created),
            (TaskState::ALLOCATED, C::Created),
            (TaskState::PENDING, C::Created),
            (TaskState::ASSIGNED, C::Created),
            (TaskState::ACCEPTED, C::Created),
            (TaskState::PREPARING, C::Created),
            (TaskState::READY, C::Created),
            (TaskState::STARTING, C::Created),
            (TaskState::RUNNING, C::Running),
            (TaskState::COMPLETE, C::Exited),
            (TaskState::SHUTDOWN, C::Exited),
            (TaskState::FAILED, C::Exited),
            (TaskState::REJECTED, C::Dead),
            (TaskState::REMOVE, C::Removing),
            (TaskState::ORPHANED, C::Unknown),
        ];
        // Swarm's states are declared in the order a task moves through them; the mapping
        // never goes back from a later state to an earlier container state.
        let rank = |c: C| match c {
            C::Created => 0,
            C::Running => 1,
            C::Exited | C::Dead | C::Removing | C::Unknown => 2,
            C::Paused | C::Restarting => unreachable!("never reported for a task"),
        };
        let mut previous = 0;
        for (state, want) in table {
            assert_eq!(container_state(state), want, "{state}");
            assert!(rank(want) >= previous, "{state} goes back");
            previous = rank(want);
            assert_eq!(is_final(state), state >= TaskState::COMPLETE);
        }
        assert!(!is_final(TaskState::RUNNING));
        assert!(is_final(TaskState::COMPLETE));
    }

    #[test]
    fn a_running_task_is_a_container_named_after_its_service() {
        let v = view(
            vec![service(SERVICE, NAME, &[("galaxy.owner", "lobby")])],
            vec![task(running("task1", "c0ffee", "2026-11-27T11:00:00.9Z"))],
            vec![node("node1", NodeState::READY)],
        );
        let [c] = listed(&v).try_into().unwrap();
        assert_eq!(c.id, "c0ffee", "the container id, for inspect");
        assert_eq!(c.name, format!("/{NAME}"));
        assert_eq!(c.image_ref, "galaxy/engine:1.4");
        assert_eq!(c.state, ContainerState::Running);
        assert_eq!(c.created.to_string(), "2026-11-27T11:00:00Z");
        assert_eq!(c.labels["galaxy.owner"], "lobby", "service labels");
        assert_eq!(
            c.labels["galaxy.engine_version"], "1.4.0",
            "container labels"
        );
        assert_eq!(
            c.addresses,
            BTreeMap::from([("galaxy".to_owned(), "10.0.1.2".to_owned())]),
            "the virtual IP on each known network"
        );
        assert_eq!(
            c.published_ports,
            BTreeMap::from([(8080, 30080)]),
            "ingress ports only: a host-mode port is on the task's node, not the manager"
        );
    }

    #[test]
    fn a_task_on_a_node_that_is_not_ready_is_unknown_unless_final() {
        for state in [NodeState::DOWN, NodeState::DISCONNECTED, NodeState::UNKNOWN] {
            let v = view(
                vec![service(SERVICE, NAME, &[])],
                vec![task(running("task1", "c0ffee", "2026-11-27T11:00:00Z"))],
                vec![node("node1", state)],
            );
            assert_eq!(listed(&v)[0].state, ContainerState::Unknown, "{state}");
            assert_eq!(listed(&v)[0].id, "c0ffee", "it still exists");
        }
        // A node the manager no longer lists.
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![task(running("task1", "c0ffee", "2026-11-27T11:00:00Z"))],
            vec![],
        );
        assert_eq!(listed(&v)[0].state, ContainerState::Unknown);
        // A final state never changes again: it stays what it was.
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![task(T {
                state: TaskState::FAILED,
                ..running("task1", "c0ffee", "2026-11-27T11:00:00Z")
            })],
            vec![node("node1", NodeState::DOWN)],
        );
        assert_eq!(listed(&v)[0].state, ContainerState::Exited);
        // A task not yet on a node has no node to be down.
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![task(T {
                node: "",
                state: TaskState::PENDING,
                ..running("task1", "", "2026-11-27T11:00:00Z")
            })],
            vec![],
        );
        let [c] = listed(&v).try_into().unwrap();
        assert_eq!(c.state, ContainerState::Created);
        assert_eq!(c.id, "task1", "the task id until it has a container");
    }

    #[test]
    fn a_restarted_task_replaces_the_one_the_swarm_shut_down() {
        let old = T {
            state: TaskState::FAILED,
            desired: TaskState::SHUTDOWN,
            ..running("task1", "c0ffee", "2026-11-27T11:00:00Z")
        };
        let new = running("task2", "beef", "2026-11-27T11:05:00Z");
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![task(old), task(new)],
            vec![node("node1", NodeState::READY)],
        );
        let ids: Vec<_> = listed(&v).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["beef"]);
        // Waiting out its restart delay, the new task is meant to run (`ready`) and reported.
        let waiting = T {
            state: TaskState::NEW,
            desired: TaskState::READY,
            container: "",
            ..running("task2", "", "2026-11-27T11:05:00Z")
        };
        let old = T {
            state: TaskState::FAILED,
            desired: TaskState::SHUTDOWN,
            ..running("task1", "c0ffee", "2026-11-27T11:00:00Z")
        };
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![task(old), task(waiting)],
            vec![node("node1", NodeState::READY)],
        );
        let [c] = listed(&v).try_into().unwrap();
        assert_eq!((c.id.as_str(), c.state), ("task2", ContainerState::Created));
    }

    #[test]
    fn a_service_with_no_task_meant_to_run_reports_its_newest_or_itself() {
        let older = T {
            state: TaskState::SHUTDOWN,
            desired: TaskState::SHUTDOWN,
            ..running("task1", "c0ffee", "2026-11-27T11:00:00Z")
        };
        let newer = T {
            state: TaskState::COMPLETE,
            desired: TaskState::SHUTDOWN,
            ..running("task2", "beef", "2026-11-27T11:05:00Z")
        };
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![task(older), task(newer)],
            vec![node("node1", NodeState::READY)],
        );
        let [c] = listed(&v).try_into().unwrap();
        assert_eq!((c.id.as_str(), c.state), ("beef", ContainerState::Exited));

        let v = view(vec![service(SERVICE, NAME, &[])], vec![], vec![]);
        let [c] = listed(&v).try_into().unwrap();
        assert_eq!((c.id.as_str(), c.state), (SERVICE, ContainerState::Created));
        assert_eq!(c.name, format!("/{NAME}"));
        assert_eq!(c.created.to_string(), "2026-11-27T10:00:00Z");
    }

    #[test]
    fn replicas_are_one_container_each_so_the_planner_sees_duplicates() {
        let second = T {
            slot: 2,
            ..running("task2", "beef", "2026-11-27T11:00:00Z")
        };
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![
                task(running("task1", "c0ffee", "2026-11-27T11:00:00Z")),
                task(second),
            ],
            vec![node("node1", NodeState::READY)],
        );
        let mut ids: Vec<_> = listed(&v).into_iter().map(|c| c.id).collect();
        ids.sort();
        assert_eq!(ids, ["beef", "c0ffee"]);
    }

    #[test]
    fn a_task_being_scaled_away_is_not_reported() {
        let going = T {
            slot: 2,
            desired: TaskState::REMOVE,
            ..running("task2", "beef", "2026-11-27T11:05:00Z")
        };
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![
                task(running("task1", "c0ffee", "2026-11-27T11:00:00Z")),
                task(going),
            ],
            vec![node("node1", NodeState::READY)],
        );
        let ids: Vec<_> = listed(&v).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["c0ffee"], "the Swarm no longer means slot 2 to run");
    }

    #[test]
    fn only_managed_services_are_listed_but_inspect_sees_everything() {
        let mut unmanaged = service("svc2", "galaxy-game-other", &[]);
        unmanaged
            .spec
            .as_mut()
            .unwrap()
            .task_template
            .as_mut()
            .unwrap()
            .container_spec
            .as_mut()
            .unwrap()
            .labels = None;
        let mut unmanaged_task = task(running("task9", "f00d", "2026-11-27T11:00:00Z"));
        unmanaged_task.service_id = Some("svc2".to_owned());
        unmanaged_task.spec = None;
        let history = T {
            state: TaskState::FAILED,
            desired: TaskState::SHUTDOWN,
            ..running("task0", "dead0", "2026-11-27T10:00:00Z")
        };
        let v = view(
            vec![service(SERVICE, NAME, &[]), unmanaged],
            vec![
                task(running("task1", "c0ffee", "2026-11-27T11:00:00Z")),
                task(history),
                unmanaged_task,
            ],
            vec![node("node1", NodeState::READY)],
        );
        let ids: Vec<_> = listed(&v).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["c0ffee"]);
        let mut all: Vec<_> = v
            .everything()
            .unwrap()
            .into_iter()
            .map(|e| (e.mapped.summary.id, e.task_id))
            .collect();
        all.sort();
        assert_eq!(
            all,
            [
                ("c0ffee".to_owned(), Some("task1".to_owned())),
                ("dead0".to_owned(), Some("task0".to_owned())),
                ("f00d".to_owned(), Some("task9".to_owned())),
            ]
        );
    }

    #[test]
    fn a_task_outliving_its_service_says_which_service_to_ask_about() {
        let stopping = T {
            desired: TaskState::REMOVE,
            ..running("task1", "c0ffee", "2026-11-27T11:00:00Z")
        };
        let v = view(
            vec![],
            vec![task(stopping)],
            vec![node("node1", NodeState::READY)],
        );
        assert!(listed(&v).is_empty(), "no service, nothing listed");
        let [entry] = v.everything().unwrap().try_into().ok().unwrap();
        assert_eq!(entry.mapped.summary.id, "c0ffee");
        assert_eq!(entry.missing_service.as_deref(), Some(SERVICE));
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![task(running("task1", "c0ffee", "2026-11-27T11:00:00Z"))],
            vec![node("node1", NodeState::READY)],
        );
        let [entry] = v.everything().unwrap().try_into().ok().unwrap();
        assert_eq!(entry.missing_service, None);
    }

    #[test]
    fn a_service_labelled_on_the_service_only_is_managed_too() {
        let mut s = service(SERVICE, NAME, &[("galaxy.managed", "true")]);
        s.spec
            .as_mut()
            .unwrap()
            .task_template
            .as_mut()
            .unwrap()
            .container_spec
            .as_mut()
            .unwrap()
            .labels = None;
        let mut t = task(running("task1", "c0ffee", "2026-11-27T11:00:00Z"));
        t.spec = None;
        let v = view(vec![s], vec![t], vec![node("node1", NodeState::READY)]);
        let [c] = listed(&v).try_into().unwrap();
        assert_eq!(c.labels["galaxy.managed"], "true");
    }

    #[test]
    fn incomplete_descriptions_are_reported_with_fallbacks_or_refused_without_an_id() {
        let mut t = task(running("task1", "c0ffee", "soon"));
        t.status.as_mut().unwrap().state = None;
        t.spec = None;
        let v = view(
            vec![service(SERVICE, NAME, &[])],
            vec![t],
            vec![node("node1", NodeState::READY)],
        );
        let [m] = v.listed(managed).unwrap().try_into().unwrap();
        assert_eq!(m.summary.state, ContainerState::Dead);
        assert_eq!(m.summary.created.to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(m.gaps.len(), 3, "{:?}", m.gaps);

        let mut t = task(running("", "", "2026-11-27T11:00:00Z"));
        t.id = None;
        let v = view(vec![service(SERVICE, NAME, &[])], vec![t], vec![]);
        let error = v.listed(managed).unwrap_err();
        assert!(matches!(error, PortError::Invalid { .. }), "{error}");
        assert!(error.to_string().contains(NAME), "{error}");
    }
}
