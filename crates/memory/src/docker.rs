use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use galaxy_runtime_model::{Config, ContainerState, ContainerSummary, GameId, Timestamp};
use galaxy_runtime_ports::{DockerPort, LabelFilter, PortError, PortResult};

use crate::lock;
use crate::table::Table;

/// A method of [`MemoryDocker`]'s port, to aim an injected failure at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DockerMethod {
    /// [`DockerPort::list_managed`].
    ListManaged,
    /// [`DockerPort::inspect`].
    Inspect,
}

/// How many times each port method of a [`MemoryDocker`] was called (failed calls included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DockerCalls {
    /// Calls of [`DockerPort::list_managed`].
    pub list_managed: u64,
    /// Calls of [`DockerPort::inspect`].
    pub inspect: u64,
}

#[derive(Default)]
struct State {
    /// By id, listed in the order they were added (as Docker lists by creation), shared with
    /// the listings handed out.
    containers: Table<String, ContainerSummary>,
    calls: DockerCalls,
    failures: HashMap<DockerMethod, VecDeque<PortError>>,
    unavailable: bool,
}

/// A [`DockerPort`] over containers held in memory.
///
/// A test or simulation changes the containers directly — [`MemoryDocker::add`],
/// [`MemoryDocker::kill`], [`MemoryDocker::start`], [`MemoryDocker::pause`],
/// [`MemoryDocker::rename`], [`MemoryDocker::relabel`], [`MemoryDocker::remove`] — and the
/// reconciler sees them through the port. Containers are listed sorted by id. Names are kept as
/// given; [`MemoryDocker::create`] and [`MemoryDocker::game_container`] give them Docker's
/// leading `/`.
///
/// [`MemoryDocker::set_unavailable`] plays a daemon outage; [`MemoryDocker::fail_next`] fails
/// one call.
#[derive(Default)]
pub struct MemoryDocker {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryDocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("MemoryDocker")
            .field("containers", &state.containers.len())
            .field("unavailable", &state.unavailable)
            .finish_non_exhaustive()
    }
}

fn no_such_container(container_id: &str) -> PortError {
    PortError::not_found(format!("container {container_id}"))
}

impl MemoryDocker {
    /// A daemon without containers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh container id: 64 random hex digits, like Docker's.
    pub fn new_container_id() -> String {
        format!(
            "{}{}",
            GameId::new_random().as_uuid().simple(),
            GameId::new_random().as_uuid().simple()
        )
    }

    /// The container a start job makes for `game_id` under `config`: named
    /// `/<container_name_prefix><game id>`, image `galaxy/engine:1.4`, labelled managed and with
    /// engine version `1.4.0`, created now. Change its fields for other cases.
    pub fn game_container(
        config: &Config,
        game_id: GameId,
        container_id: &str,
        state: ContainerState,
    ) -> ContainerSummary {
        ContainerSummary {
            id: container_id.to_owned(),
            name: format!("/{}{game_id}", config.container_name_prefix),
            image_ref: "galaxy/engine:1.4".to_owned(),
            labels: BTreeMap::from([
                (
                    config.managed_label.clone(),
                    config.managed_label_value.clone(),
                ),
                (config.engine_version_label.clone(), "1.4.0".to_owned()),
            ]),
            state,
            created: Timestamp::now(),
            addresses: BTreeMap::new(),
            host: String::new(),
            published_ports: BTreeMap::new(),
        }
    }

    /// Adds a container, replacing any with the same id.
    pub fn add(&self, container: ContainerSummary) {
        lock(&self.state)
            .containers
            .insert(container.id.clone(), container);
    }

    /// Creates a container with a fresh id, created now, and returns the id. A `name` without a
    /// leading `/` gets one, as Docker gives it.
    pub fn create(
        &self,
        name: &str,
        image_ref: &str,
        labels: BTreeMap<String, String>,
        state: ContainerState,
    ) -> String {
        let id = Self::new_container_id();
        let name = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("/{name}")
        };
        self.add(ContainerSummary {
            id: id.clone(),
            name,
            image_ref: image_ref.to_owned(),
            labels,
            state,
            created: Timestamp::now(),
            addresses: BTreeMap::new(),
            host: String::new(),
            published_ports: BTreeMap::new(),
        });
        id
    }

    /// Changes a container with `change`; [`PortError::NotFound`] when there is none.
    fn change<T>(
        &self,
        container_id: &str,
        change: impl FnOnce(&mut ContainerSummary) -> T,
    ) -> PortResult<T> {
        lock(&self.state)
            .containers
            .get_mut(container_id)
            .map(change)
            .ok_or_else(|| no_such_container(container_id))
    }

    /// Sets a container's state.
    pub fn set_state(&self, container_id: &str, state: ContainerState) -> PortResult<()> {
        self.change(container_id, |c| c.state = state)
    }

    /// The container's process dies: its state becomes `exited`.
    pub fn kill(&self, container_id: &str) -> PortResult<()> {
        self.set_state(container_id, ContainerState::Exited)
    }

    /// The container (re)starts or is unpaused: its state becomes `running`.
    pub fn start(&self, container_id: &str) -> PortResult<()> {
        self.set_state(container_id, ContainerState::Running)
    }

    /// The container is paused.
    pub fn pause(&self, container_id: &str) -> PortResult<()> {
        self.set_state(container_id, ContainerState::Paused)
    }

    /// Renames a container (kept as given: pass a leading `/` to look like Docker).
    pub fn rename(&self, container_id: &str, name: &str) -> PortResult<()> {
        self.change(container_id, |c| c.name = name.to_owned())
    }

    /// Replaces every label of a container.
    pub fn relabel(&self, container_id: &str, labels: BTreeMap<String, String>) -> PortResult<()> {
        self.change(container_id, |c| c.labels = labels)
    }

    /// Sets one label of a container, keeping the others.
    pub fn set_label(&self, container_id: &str, key: &str, value: &str) -> PortResult<()> {
        self.change(container_id, |c| {
            c.labels.insert(key.to_owned(), value.to_owned());
        })
    }

    /// Sets a container's address on a network.
    pub fn set_address(&self, container_id: &str, network: &str, address: &str) -> PortResult<()> {
        self.change(container_id, |c| {
            c.addresses.insert(network.to_owned(), address.to_owned());
        })
    }

    /// Removes a container and returns it.
    pub fn remove(&self, container_id: &str) -> PortResult<ContainerSummary> {
        lock(&self.state)
            .containers
            .remove(container_id)
            .ok_or_else(|| no_such_container(container_id))
    }

    /// Removes every container.
    pub fn clear(&self) {
        lock(&self.state).containers.clear();
    }

    /// A container, without counting a call or failing.
    pub fn container(&self, container_id: &str) -> Option<ContainerSummary> {
        lock(&self.state)
            .containers
            .get(container_id)
            .map(|c| ContainerSummary::clone(c))
    }

    /// Every container, sorted by id, without counting a call or failing.
    pub fn containers(&self) -> Vec<ContainerSummary> {
        let mut containers: Vec<_> = lock(&self.state)
            .containers
            .values()
            .map(|c| ContainerSummary::clone(c))
            .collect();
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        containers
    }

    /// While `true`, every port call fails with [`PortError::Unavailable`], as when the daemon
    /// is down or its socket is gone. The containers stay as they are.
    pub fn set_unavailable(&self, unavailable: bool) {
        lock(&self.state).unavailable = unavailable;
    }

    /// Makes the next port call of `method` fail with `error` (after counting it). Several
    /// failures queue up and are used one call each.
    pub fn fail_next(&self, method: DockerMethod, error: PortError) {
        lock(&self.state)
            .failures
            .entry(method)
            .or_default()
            .push_back(error);
    }

    /// How many times each port method was called so far.
    pub fn calls(&self) -> DockerCalls {
        lock(&self.state).calls
    }

    /// Sets the call counters back to zero.
    pub fn reset_calls(&self) {
        lock(&self.state).calls = DockerCalls::default();
    }

    /// Counts a call of `method` and hands over the state, unless a failure is due.
    fn begin(&self, method: DockerMethod) -> PortResult<MutexGuard<'_, State>> {
        let mut state = lock(&self.state);
        match method {
            DockerMethod::ListManaged => state.calls.list_managed += 1,
            DockerMethod::Inspect => state.calls.inspect += 1,
        }
        if let Some(error) = state
            .failures
            .get_mut(&method)
            .and_then(VecDeque::pop_front)
        {
            return Err(error);
        }
        if state.unavailable {
            return Err(PortError::Unavailable {
                message: "memory docker daemon is set unavailable".to_owned(),
                source: None,
            });
        }
        Ok(state)
    }
}

#[async_trait]
impl DockerPort for MemoryDocker {
    async fn list_managed(&self, filter: &LabelFilter) -> PortResult<Vec<Arc<ContainerSummary>>> {
        let state = self.begin(DockerMethod::ListManaged)?;
        Ok(state
            .containers
            .values()
            .filter(|c| filter.matches(&c.labels))
            .cloned()
            .collect())
    }

    async fn inspect(&self, container_id: &str) -> PortResult<ContainerSummary> {
        let state = self.begin(DockerMethod::Inspect)?;
        state
            .containers
            .get(container_id)
            .map(|c| ContainerSummary::clone(c))
            .ok_or_else(|| no_such_container(container_id))
    }
}

#[cfg(test)]
mod tests {
    use galaxy_runtime_ports::ErrorKind;

    use super::*;

    #[tokio::test]
    async fn a_listing_shares_the_containers_in_the_order_added_and_stays_a_snapshot() {
        let config = Config::default();
        let docker = MemoryDocker::new();
        for id in ["c3", "c1", "c2"] {
            docker.add(MemoryDocker::game_container(
                &config,
                GameId::new_random(),
                id,
                ContainerState::Running,
            ));
        }
        let filter = LabelFilter::single(&config.managed_label, &config.managed_label_value);
        let first = docker.list_managed(&filter).await.unwrap();
        let ids: Vec<&str> = first.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c3", "c1", "c2"], "listed in the order added");
        let second = docker.list_managed(&filter).await.unwrap();
        assert!(
            first.iter().zip(&second).all(|(a, b)| Arc::ptr_eq(a, b)),
            "two listings hand out the same containers, not copies of them"
        );

        docker.kill("c1").unwrap();
        assert_eq!(
            first[1].state,
            ContainerState::Running,
            "a listing is a snapshot"
        );
        let after = docker.list_managed(&filter).await.unwrap();
        assert_eq!(after[1].state, ContainerState::Exited);
        assert!(
            Arc::ptr_eq(&first[0], &after[0]),
            "an unchanged one is still shared"
        );
        let sorted: Vec<String> = docker.containers().into_iter().map(|c| c.id).collect();
        assert_eq!(sorted, ["c1", "c2", "c3"], "containers() is sorted by id");
    }

    #[tokio::test]
    async fn changes_show_through_the_port() {
        let config = Config::default();
        let docker = MemoryDocker::new();
        let game_id = GameId::new_random();
        docker.add(MemoryDocker::game_container(
            &config,
            game_id,
            "c1",
            ContainerState::Running,
        ));
        let filter = LabelFilter::single(&config.managed_label, &config.managed_label_value);

        docker.kill("c1").unwrap();
        assert_eq!(
            docker.inspect("c1").await.unwrap().state,
            ContainerState::Exited
        );
        docker.start("c1").unwrap();
        docker.pause("c1").unwrap();
        assert_eq!(
            docker.inspect("c1").await.unwrap().state,
            ContainerState::Paused
        );
        docker.rename("c1", "/elsewhere").unwrap();
        assert_eq!(docker.inspect("c1").await.unwrap().bare_name(), "elsewhere");

        docker
            .set_label("c1", &config.managed_label, "someone-else")
            .unwrap();
        assert!(docker.list_managed(&filter).await.unwrap().is_empty());
        docker.relabel("c1", filter.labels.clone()).unwrap();
        assert_eq!(docker.list_managed(&filter).await.unwrap().len(), 1);

        docker.set_address("c1", "galaxy", "172.18.0.5").unwrap();
        assert_eq!(
            docker.container("c1").unwrap().addresses["galaxy"],
            "172.18.0.5"
        );

        assert_eq!(docker.remove("c1").unwrap().id, "c1");
        assert!(docker.inspect("c1").await.unwrap_err().is_not_found());
        assert!(docker.kill("c1").unwrap_err().is_not_found());
        assert_eq!(docker.calls().inspect, 4);
        assert_eq!(docker.calls().list_managed, 2);
    }

    #[tokio::test]
    async fn outage_and_injected_failures() {
        let docker = MemoryDocker::new();
        let id = docker.create(
            "galaxy-game-x",
            "img",
            BTreeMap::new(),
            ContainerState::Created,
        );
        assert_eq!(docker.container(&id).unwrap().name, "/galaxy-game-x");

        docker.set_unavailable(true);
        let err = docker
            .list_managed(&LabelFilter::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(
            docker.inspect(&id).await.unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        docker.set_unavailable(false);

        docker.fail_next(DockerMethod::ListManaged, PortError::invalid("bad json"));
        assert_eq!(
            docker
                .list_managed(&LabelFilter::default())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Invalid
        );
        assert_eq!(
            docker
                .list_managed(&LabelFilter::default())
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(docker.calls().list_managed, 3);
        docker.reset_calls();
        assert_eq!(docker.calls(), DockerCalls::default());
        docker.clear();
        assert!(docker.containers().is_empty());
    }
}
