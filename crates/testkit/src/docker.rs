//! The conformance suite of [`DockerPort`].
//!
//! The port only reads, so the suite needs a way to make containers: the adapter's test supplies
//! a [`DockerFixture`] that creates, stops, pauses and removes containers by other means (the
//! Docker adapter through the Docker API, the memory adapter by changing its fake). The suite
//! then checks that the port sees exactly what was made.
//!
//! Every container the suite creates carries [`RUN_LABEL`] = [`DockerFixture::run_value`], so a
//! fixture can find and remove leftovers of a failed run with one label filter. Each check also
//! puts its own unique value on the managed label, so parallel runs (and checks) never see each
//! other's containers.
//!
//! # Writing the fixture
//!
//! A fixture for the real daemon creates containers from a small local image that idles (a
//! `FROM scratch` image with a static `busybox sleep`), kills rather than stops (an idle PID 1
//! ignores `SIGTERM`), removes with `force`, and after the suite (or in a `Drop`) removes every
//! container labelled [`RUN_LABEL`] = its run value, so a failed run leaves nothing behind.
//! With the in-memory Docker it is a few lines:
//!
//! ```
//! use async_trait::async_trait;
//! use galaxy_runtime_memory::MemoryDocker;
//! use galaxy_runtime_model::ContainerState;
//! use galaxy_runtime_ports::PortResult;
//! use galaxy_runtime_testkit::docker::{self, ContainerSpec, DockerFixture};
//!
//! struct Fixture {
//!     docker: MemoryDocker,
//!     run_value: String,
//! }
//!
//! #[async_trait]
//! impl DockerFixture for Fixture {
//!     fn run_value(&self) -> String {
//!         self.run_value.clone()
//!     }
//!     fn image_ref(&self) -> String {
//!         "galaxy-testkit/idle:latest".to_owned()
//!     }
//!     async fn create(&self, spec: &ContainerSpec) -> PortResult<String> {
//!         let state = if spec.running { ContainerState::Running } else { ContainerState::Created };
//!         Ok(self.docker.create(&spec.name, &self.image_ref(), spec.labels.clone(), state))
//!     }
//!     async fn stop(&self, container_id: &str) -> PortResult<()> {
//!         self.docker.kill(container_id)
//!     }
//!     async fn pause(&self, container_id: &str) -> PortResult<()> {
//!         self.docker.pause(container_id)
//!     }
//!     async fn remove(&self, container_id: &str) -> PortResult<()> {
//!         self.docker.remove(container_id).map(drop)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let fixture = Fixture { docker: MemoryDocker::new(), run_value: docker::unique_run_value() };
//! // The port under test and the fixture see the same daemon.
//! docker::run_all(&fixture.docker, &fixture).await;
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galaxy_runtime_model::{ContainerState, ContainerSummary, GameId, Timestamp};
use galaxy_runtime_ports::{DockerPort, LabelFilter, PortResult};

use crate::{expect_not_found, expect_ok};

/// The label every container made by the suite carries, with [`DockerFixture::run_value`] as
/// value: what a fixture filters on to clean up after a failed run.
pub const RUN_LABEL: &str = "galaxy.testkit.run";

/// How far Docker's creation time may be from the test machine's clock: Docker keeps whole
/// seconds in lists, and the daemon's clock may differ a little.
pub const CREATED_SLACK: Duration = Duration::from_secs(60);

/// What container to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The container name, without a leading `/` (unique: it embeds a random game id).
    pub name: String,
    /// Every label to put on the container.
    pub labels: BTreeMap<String, String>,
    /// Whether to start it; when `false` it stays `created`.
    pub running: bool,
}

/// Makes and changes containers for the suite, by means other than the port under test.
///
/// Containers must stay alive doing nothing until stopped or removed (a `sleep`), and every
/// method returns only once Docker reports the new state.
#[async_trait]
pub trait DockerFixture: Send + Sync {
    /// The key of the managed label the suite filters on. `galaxy.managed` unless the fixture
    /// says otherwise.
    fn managed_label(&self) -> String {
        "galaxy.managed".to_owned()
    }

    /// A value unique to this run (see [`unique_run_value`]); put on [`RUN_LABEL`] of every
    /// container and used to derive the managed label values of each check.
    fn run_value(&self) -> String;

    /// The image reference the fixture creates containers from; the port must report it as the
    /// containers' `image_ref`.
    fn image_ref(&self) -> String;

    /// Creates a container from `spec` with [`DockerFixture::image_ref`], started or not;
    /// returns its id.
    async fn create(&self, spec: &ContainerSpec) -> PortResult<String>;

    /// Stops a running container; Docker must then report it `exited` (a fixture may kill it
    /// rather than wait for a graceful stop).
    async fn stop(&self, container_id: &str) -> PortResult<()>;

    /// Pauses a running container; Docker must then report it `paused`. Never called when
    /// [`DockerFixture::states`] leaves `paused` out.
    async fn pause(&self, container_id: &str) -> PortResult<()>;

    /// The states the runtime can hold a container in, among `running`, `created`, `exited` and
    /// `paused`: the checks make one managed container of each. All four unless the runtime
    /// lacks one (a Swarm task is never paused: the Swarm has no such state).
    fn states(&self) -> Vec<ContainerState> {
        vec![
            ContainerState::Running,
            ContainerState::Created,
            ContainerState::Exited,
            ContainerState::Paused,
        ]
    }

    /// Removes a container in any state (forcibly).
    async fn remove(&self, container_id: &str) -> PortResult<()>;
}

/// A fresh value for [`DockerFixture::run_value`]: `testkit-<random uuid>`.
pub fn unique_run_value() -> String {
    format!("testkit-{}", GameId::new_random())
}

/// Runs every check of this module, one after the other.
pub async fn run_all(port: &dyn DockerPort, fixture: &dyn DockerFixture) {
    inspect_unknown_is_not_found(port).await;
    list_managed_returns_exactly_the_managed(port, fixture).await;
    inspect_agrees_with_list(port, fixture).await;
    removed_containers_disappear(port, fixture).await;
}

/// One container the suite made, and what the port must report about it.
#[derive(Debug, Clone)]
struct Made {
    id: String,
    spec: ContainerSpec,
    state: ContainerState,
}

/// The containers of one check: a unique managed-label value and what was made.
struct Batch<'a> {
    fixture: &'a dyn DockerFixture,
    managed_value: String,
    made: Vec<Made>,
}

impl<'a> Batch<'a> {
    fn new(fixture: &'a dyn DockerFixture) -> Self {
        let managed_value = format!(
            "{}-{}",
            fixture.run_value(),
            GameId::new_random().as_uuid().simple()
        );
        Self {
            fixture,
            managed_value,
            made: Vec::new(),
        }
    }

    /// Makes a container named like a game's with `managed` as its managed-label value (`None`:
    /// no managed label at all), brought into `state` (`running`, `created`, `exited` or
    /// `paused`).
    async fn make(&mut self, managed: Option<&str>, state: ContainerState) -> Made {
        let mut labels = BTreeMap::from([
            (RUN_LABEL.to_owned(), self.fixture.run_value()),
            ("galaxy.engine_version".to_owned(), "1.4.0".to_owned()),
            (
                "galaxy.testkit.note".to_owned(),
                "ünïcode, spaces & = signs".to_owned(),
            ),
        ]);
        if let Some(value) = managed {
            labels.insert(self.fixture.managed_label(), value.to_owned());
        }
        let spec = ContainerSpec {
            name: format!("galaxy-game-{}", GameId::new_random()),
            labels,
            running: state != ContainerState::Created,
        };
        let id = expect_ok(
            "DockerFixture::create: the fixture must create a container",
            self.fixture.create(&spec).await,
        );
        match state {
            ContainerState::Exited => expect_ok(
                "DockerFixture::stop: the fixture must stop a container",
                self.fixture.stop(&id).await,
            ),
            ContainerState::Paused => expect_ok(
                "DockerFixture::pause: the fixture must pause a container",
                self.fixture.pause(&id).await,
            ),
            _ => {}
        }
        let made = Made { id, spec, state };
        self.made.push(made.clone());
        made
    }

    /// The managed containers every list check uses, one per state of
    /// [`DockerFixture::states`].
    async fn make_managed_set(&mut self) -> Vec<Made> {
        let value = self.managed_value.clone();
        let mut set = Vec::new();
        for state in self.fixture.states() {
            set.push(self.make(Some(&value), state).await);
        }
        set
    }

    fn filter(&self) -> LabelFilter {
        LabelFilter::single(self.fixture.managed_label(), self.managed_value.clone())
    }

    /// Removes every container of the check.
    async fn remove_all(&mut self) {
        for made in self.made.drain(..) {
            expect_ok(
                "DockerFixture::remove: the fixture must remove a container",
                self.fixture.remove(&made.id).await,
            );
        }
    }
}

/// The listed containers by id, each listed once.
fn by_id(
    rule: &str,
    listed: Vec<Arc<ContainerSummary>>,
) -> BTreeMap<String, Arc<ContainerSummary>> {
    let mut map = BTreeMap::new();
    for summary in listed {
        let id = summary.id.clone();
        assert!(
            map.insert(id.clone(), summary).is_none(),
            "{rule}: container {id} listed twice"
        );
    }
    map
}

/// Panics unless `seen` describes `made` as created by `fixture` around `started`.
fn assert_describes(
    rule: &str,
    seen: &ContainerSummary,
    made: &Made,
    fixture: &dyn DockerFixture,
    started: Timestamp,
) {
    assert_eq!(seen.id, made.id, "{rule}: id");
    assert!(
        seen.name == made.spec.name || seen.name == format!("/{}", made.spec.name),
        "{rule}: name must be the container's name (Docker's leading / accepted): got {:?}, \
         created as {:?}",
        seen.name,
        made.spec.name
    );
    assert_eq!(
        seen.image_ref,
        fixture.image_ref(),
        "{rule}: image_ref must be the image"
    );
    for (key, value) in &made.spec.labels {
        assert_eq!(
            seen.labels.get(key),
            Some(value),
            "{rule}: every label of the container must be reported, value as is ({key})"
        );
    }
    assert_eq!(
        seen.state, made.state,
        "{rule}: state of container {}",
        made.id
    );
    let now = Timestamp::now();
    let earliest = Timestamp::from_unix_micros(
        started.unix_micros() - i64::try_from(CREATED_SLACK.as_micros()).unwrap_or(i64::MAX),
    )
    .unwrap_or(started);
    assert!(
        seen.created >= earliest && seen.created <= now.saturating_add(CREATED_SLACK),
        "{rule}: created must be the creation time (got {}, the check started at {started})",
        seen.created
    );
}

/// `inspect` of an id no container has is `NotFound`.
pub async fn inspect_unknown_is_not_found(port: &dyn DockerPort) {
    let unknown = format!(
        "{}{}",
        GameId::new_random().as_uuid().simple(),
        GameId::new_random().as_uuid().simple()
    );
    expect_not_found(
        "DockerPort::inspect: an unknown container id must give NotFound",
        port.inspect(&unknown).await,
    );
}

/// `list_managed` returns exactly the containers carrying every label of the filter — running,
/// created, exited and paused ones (those of [`DockerFixture::states`]) — with their names, image, labels, states and creation
/// times; containers with another value of the managed label, or without it, never appear.
pub async fn list_managed_returns_exactly_the_managed(
    port: &dyn DockerPort,
    fixture: &dyn DockerFixture,
) {
    let started = Timestamp::now();
    let mut batch = Batch::new(fixture);
    let managed = batch.make_managed_set().await;
    let other_value = format!("{}-other", batch.managed_value);
    let other = batch
        .make(Some(&other_value), ContainerState::Running)
        .await;
    let unlabelled = batch.make(None, ContainerState::Running).await;

    let rule = "DockerPort::list_managed";
    let listed = by_id(
        rule,
        expect_ok(rule, port.list_managed(&batch.filter()).await),
    );
    let want: BTreeSet<_> = managed.iter().map(|m| m.id.clone()).collect();
    let got: BTreeSet<_> = listed.keys().cloned().collect();
    assert_eq!(
        got, want,
        "DockerPort::list_managed: must return exactly the containers whose managed label has \
         the filter's value (other values and unlabelled containers never appear), in every state"
    );
    for made in &managed {
        assert_describes(rule, &listed[&made.id], made, fixture, started);
    }

    let listed = by_id(
        rule,
        expect_ok(
            rule,
            port.list_managed(&LabelFilter::single(fixture.managed_label(), other_value))
                .await,
        ),
    );
    assert_eq!(
        listed.keys().cloned().collect::<Vec<_>>(),
        vec![other.id.clone()],
        "DockerPort::list_managed: must filter on the label's value"
    );

    let listed = by_id(
        rule,
        expect_ok(
            rule,
            port.list_managed(&LabelFilter::single(RUN_LABEL, fixture.run_value()))
                .await,
        ),
    );
    for made in managed.iter().chain([&other, &unlabelled]) {
        assert!(
            listed.contains_key(&made.id),
            "DockerPort::list_managed: must filter on the labels it is given ({RUN_LABEL})"
        );
    }

    let mut both = batch.filter();
    both.labels
        .insert(RUN_LABEL.to_owned(), fixture.run_value());
    let listed = by_id(rule, expect_ok(rule, port.list_managed(&both).await));
    assert_eq!(
        listed.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "DockerPort::list_managed: must return containers carrying every label of the filter"
    );
    let mut wrong = batch.filter();
    wrong
        .labels
        .insert(RUN_LABEL.to_owned(), "no-such-run".to_owned());
    let listed = expect_ok(rule, port.list_managed(&wrong).await);
    assert!(
        listed.is_empty(),
        "DockerPort::list_managed: a container missing one label of the filter must not appear"
    );

    batch.remove_all().await;
}

/// `inspect` of a container, managed or not, agrees with what `list_managed` says of it (name,
/// image, labels, state, and creation time to the second).
pub async fn inspect_agrees_with_list(port: &dyn DockerPort, fixture: &dyn DockerFixture) {
    let started = Timestamp::now();
    let mut batch = Batch::new(fixture);
    let managed = batch.make_managed_set().await;
    let unlabelled = batch.make(None, ContainerState::Running).await;

    let rule = "DockerPort::list_managed";
    let listed = by_id(
        rule,
        expect_ok(rule, port.list_managed(&batch.filter()).await),
    );
    for made in &managed {
        let rule = "DockerPort::inspect: must agree with list_managed";
        let inspected = expect_ok(rule, port.inspect(&made.id).await);
        assert_describes(rule, &inspected, made, fixture, started);
        let from_list = listed.get(&made.id).unwrap_or_else(|| {
            panic!("DockerPort::list_managed: container {} is missing", made.id)
        });
        assert_eq!(inspected.bare_name(), from_list.bare_name(), "{rule}: name");
        assert_eq!(
            inspected.image_ref, from_list.image_ref,
            "{rule}: image_ref"
        );
        assert_eq!(inspected.labels, from_list.labels, "{rule}: labels");
        assert_eq!(inspected.state, from_list.state, "{rule}: state");
        let apart = if inspected.created > from_list.created {
            inspected.created.saturating_since(from_list.created)
        } else {
            from_list.created.saturating_since(inspected.created)
        };
        assert!(
            apart < Duration::from_secs(1),
            "{rule}: created must be the same instant, to the second ({} vs {})",
            inspected.created,
            from_list.created
        );
    }

    let rule = "DockerPort::inspect: must describe a container whatever its labels";
    let inspected = expect_ok(rule, port.inspect(&unlabelled.id).await);
    assert_describes(rule, &inspected, &unlabelled, fixture, started);

    batch.remove_all().await;
}

/// A removed container is no longer listed, and `inspect` of it is `NotFound`.
pub async fn removed_containers_disappear(port: &dyn DockerPort, fixture: &dyn DockerFixture) {
    let mut batch = Batch::new(fixture);
    let managed = batch.make_managed_set().await;
    let filter = batch.filter();
    batch.remove_all().await;

    let rule = "DockerPort::list_managed: a removed container must not be listed";
    let listed = expect_ok(rule, port.list_managed(&filter).await);
    assert!(listed.is_empty(), "{rule}: still listed: {listed:?}");
    for made in &managed {
        expect_not_found(
            "DockerPort::inspect: a removed container must give NotFound",
            port.inspect(&made.id).await,
        );
    }
}
