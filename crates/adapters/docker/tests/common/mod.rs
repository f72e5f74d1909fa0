//! What the Docker adapter's tests share: the connection to the real daemon (or a clear failure
//! saying how to start it), the test image, and scopes whose containers and networks are removed
//! whatever happens to the test.
//!
//! Every container and network a test makes carries [`TEST_RUN_LABEL`] (this process's run id),
//! [`TEST_PID_LABEL`] (this process's id) and [`TEST_SCOPE_LABEL`] (the scope's id). A scope
//! removes everything with its scope label when dropped — also when the test panics — and the
//! first test of a process removes what earlier runs left behind: everything with the run label
//! whose process is gone.

#![allow(dead_code)] // each test binary uses its own part of the helpers

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use galaxy_runtime_docker::{DockerAdapter, DockerConfig};
use galaxy_runtime_model::{ContainerState, GameId};
use galaxy_runtime_ports::{PortError, PortResult};
use galaxy_runtime_testkit::docker::{ContainerSpec, DockerFixture, unique_run_value};

/// The image every test container is made from (built by `scripts/build-test-image.sh`).
pub const IMAGE: &str = "galaxy-runtime-test-engine";
/// This process's run id on everything it makes.
pub const TEST_RUN_LABEL: &str = "galaxy-runtime.test.run";
/// This process's id on everything it makes, so later runs can tell leftovers from live tests.
pub const TEST_PID_LABEL: &str = "galaxy-runtime.test.pid";
/// The scope's id on everything it makes.
pub const TEST_SCOPE_LABEL: &str = "galaxy-runtime.test.scope";
/// The managed label the adapter filters on in these tests (the configuration's default).
pub const MANAGED_LABEL: &str = "galaxy.managed";

/// The variable that lets a person without Docker skip these tests. CI never sets it.
pub const SKIP_VARIABLE: &str = "GALAXY_RUNTIME_SKIP_DOCKER";

/// What runs in a test container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `busybox sleep`: a container that idles.
    Idle,
    /// The image's default command: `busybox httpd` serving `/www/status` on 8080.
    Engine,
    /// The same engine, but as a background process beside an idle PID 1, so that it can be
    /// stopped and started again ([`Scope::stop_engine`], [`Scope::start_engine`]) while the
    /// container keeps running — an engine that hangs or crashes inside a live container.
    DetachedEngine,
}

/// How [`Command::DetachedEngine`] runs its engine. busybox's `killall` matches process names,
/// and `busybox httpd` is named `busybox`: a link named `httpd` gives the engine a name of its
/// own, so stopping it cannot hit the idle PID 1. Without `-f`, httpd daemonizes (stdio on
/// /dev/null), so an exec that starts it returns at once.
const DETACHED_ENGINE: [&str; 5] = ["/bin/httpd", "-p", "8080", "-h", "/www"];

fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| GameId::new_random().as_uuid().simple().to_string())
}

/// The adapter on the real daemon (from `DOCKER_HOST` or the local socket), with the test image
/// present and earlier runs' leftovers removed; `None` when the person running the tests set
/// `GALAXY_RUNTIME_SKIP_DOCKER=1`.
///
/// Panics, saying how to start Docker, when the daemon cannot be reached.
pub async fn docker() -> Option<DockerAdapter> {
    if std::env::var(SKIP_VARIABLE).as_deref() == Ok("1") {
        eprintln!("skipped: {SKIP_VARIABLE}=1, this test needs the Docker daemon");
        return None;
    }
    let adapter = match DockerAdapter::connect_from_env().await {
        Ok(adapter) => adapter,
        Err(error) => panic!(
            "these tests need a running Docker daemon and none answers: {error}\n\
             Start it (as root: `service docker start`, or `dockerd >/var/log/dockerd.log 2>&1 &`) \
             or point DOCKER_HOST at its socket, then run `scripts/build-test-image.sh`. \
             To skip the tests that need Docker, set {SKIP_VARIABLE}=1."
        ),
    };
    static PREPARED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    PREPARED
        .get_or_init(|| async {
            ensure_image(adapter.docker()).await;
            remove_leftovers(adapter.docker()).await;
        })
        .await;
    Some(adapter)
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// Builds the test image with the script when it is missing; panics saying what to run when
/// that fails.
async fn ensure_image(docker: &Docker) {
    if docker.inspect_image(IMAGE).await.is_ok() {
        return;
    }
    let script = repository_root().join("scripts/build-test-image.sh");
    eprintln!(
        "the test image {IMAGE} is missing: running {}",
        script.display()
    );
    let output = tokio::process::Command::new(&script).output().await;
    let built = docker.inspect_image(IMAGE).await.is_ok();
    if !built {
        let detail = match output {
            Ok(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
            Err(error) => error.to_string(),
        };
        panic!(
            "the test image {IMAGE} is missing and building it failed: {detail}\n\
             Build it by hand with `scripts/build-test-image.sh` (as root: it may install \
             busybox-static with apt-get), then run the tests again."
        );
    }
}

fn process_alive(pid: &str) -> bool {
    pid.parse::<u32>()
        .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Removes containers and networks of earlier runs whose process is gone (a run that
/// panicked before its scopes could clean up, or was killed).
async fn remove_leftovers(docker: &Docker) {
    let filters = HashMap::from([("label", vec![TEST_RUN_LABEL.to_owned()])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default();
    let mut removed = 0;
    for container in containers {
        let labels = container.labels.unwrap_or_default();
        // A live owner may still be testing, unless the container is too old for any test
        // (the process id was reused).
        let owner_alive = labels
            .get(TEST_PID_LABEL)
            .is_some_and(|pid| process_alive(pid));
        let age = galaxy_runtime_model::Timestamp::now()
            .as_datetime()
            .timestamp()
            - container.created.unwrap_or(0);
        if owner_alive && age < 6 * 3600 {
            continue;
        }
        if let Some(id) = container.id {
            let _ = docker
                .remove_container(
                    &id,
                    Some(
                        RemoveContainerOptionsBuilder::new()
                            .force(true)
                            .v(true)
                            .build(),
                    ),
                )
                .await;
            removed += 1;
        }
    }
    let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
    for network in docker
        .list_networks(Some(options))
        .await
        .unwrap_or_default()
    {
        let labels = network.labels.unwrap_or_default();
        if labels
            .get(TEST_PID_LABEL)
            .is_some_and(|pid| process_alive(pid))
        {
            continue;
        }
        if let Some(id) = network.id {
            let _ = docker.remove_network(&id).await;
            removed += 1;
        }
    }
    if removed > 0 {
        eprintln!("removed {removed} containers and networks left by earlier test runs");
    }
}

/// Removes every container, then every network, carrying `label=value`.
async fn remove_labelled(docker: &Docker, label: &str, value: &str) -> usize {
    let filters = HashMap::from([("label", vec![format!("{label}={value}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let ids: Vec<String> = docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    // A few removals at once: a benchmark's fleet goes several times faster than one by one.
    let mut removed = futures_util::stream::iter(ids)
        .map(|id| async move {
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            docker.remove_container(&id, Some(options)).await.is_ok()
        })
        .buffer_unordered(8)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
    for network in docker
        .list_networks(Some(options))
        .await
        .unwrap_or_default()
    {
        if let Some(id) = network.id
            && docker.remove_network(&id).await.is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Containers and networks of one test, all removed when the scope is dropped.
pub struct Scope {
    docker: Docker,
    /// The scope's id (on [`TEST_SCOPE_LABEL`]).
    pub id: String,
    /// The managed-label value of this scope's managed containers: unique, so tests running in
    /// parallel never see each other's containers.
    pub managed_value: String,
    /// The value the conformance suite puts on its run label.
    pub kit_run_value: String,
}

impl Drop for Scope {
    fn drop(&mut self) {
        // Drop cannot await, and may run during a panic inside a runtime: do the removal on a
        // thread of its own with its own runtime, and wait for it.
        let docker = self.docker.clone();
        let id = self.id.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(remove_labelled(&docker, TEST_SCOPE_LABEL, &id)),
                Err(_) => 0,
            }
        });
        let _ = cleanup.join();
    }
}

impl Scope {
    /// A new, empty scope.
    pub fn new(adapter: &DockerAdapter) -> Self {
        let id = GameId::new_random().as_uuid().simple().to_string();
        Self {
            docker: adapter.docker().clone(),
            managed_value: format!("test-{id}"),
            kit_run_value: unique_run_value(),
            id,
        }
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The labels that make cleanup certain.
    pub fn cleanup_labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (TEST_RUN_LABEL.to_owned(), run_id().to_owned()),
            (TEST_PID_LABEL.to_owned(), std::process::id().to_string()),
            (TEST_SCOPE_LABEL.to_owned(), self.id.clone()),
        ])
    }

    /// The labels of a managed container of this scope (with the cleanup labels).
    pub fn managed_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(MANAGED_LABEL.to_owned(), self.managed_value.clone())])
    }

    /// A bridge network of this scope; returns its name.
    pub async fn network(&self) -> String {
        let name = format!("galaxy-rt-test-{}", &self.id[..12]);
        self.docker
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".to_owned()),
                labels: Some(self.cleanup_labels()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("create test network {name}: {e}"));
        name
    }

    /// A fresh game container name, `galaxy-game-<uuid>`.
    pub fn game_name() -> String {
        format!("galaxy-game-{}", GameId::new_random())
    }

    /// Makes a container named `name` with `labels` (plus the cleanup labels), running
    /// `command`, attached to `network` (else Docker's default bridge), brought into `state`
    /// (`created`, `running`, `exited` or `paused`); returns its id once Docker reports that
    /// state.
    pub async fn make(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        command: Command,
        network: Option<&str>,
        state: ContainerState,
    ) -> String {
        let id = self
            .create(
                name,
                labels,
                command,
                network,
                state != ContainerState::Created,
                false,
            )
            .await
            .unwrap_or_else(|e| panic!("create test container {name}: {e}"));
        match state {
            ContainerState::Exited => self.stop(&id).await.expect("stop test container"),
            ContainerState::Paused => self.pause(&id).await.expect("pause test container"),
            _ => {}
        }
        id
    }

    /// Makes a running engine container named `name` with `labels` on `network`, its engine
    /// port 8080 published on an ephemeral port of 127.0.0.1 (`docker run -p 127.0.0.1::8080`);
    /// returns its id.
    pub async fn make_published(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        network: &str,
    ) -> String {
        self.create(name, labels, Command::Engine, Some(network), true, true)
            .await
            .unwrap_or_else(|e| panic!("create test container {name}: {e}"))
    }

    async fn create(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        command: Command,
        network: Option<&str>,
        start: bool,
        publish: bool,
    ) -> PortResult<String> {
        let mut all_labels = self.cleanup_labels();
        all_labels.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let cmd = match command {
            Command::Idle => Some(vec![
                "/bin/busybox".to_owned(),
                "sleep".to_owned(),
                "3600".to_owned(),
            ]),
            Command::Engine => None,
            Command::DetachedEngine => Some(vec![
                "/bin/busybox".to_owned(),
                "sh".to_owned(),
                "-c".to_owned(),
                format!(
                    "/bin/busybox ln -sf busybox /bin/httpd && {} && \
                     exec /bin/busybox sleep 3600",
                    DETACHED_ENGINE.join(" ")
                ),
            ]),
        };
        let body = ContainerCreateBody {
            image: Some(IMAGE.to_owned()),
            cmd,
            labels: Some(all_labels),
            host_config: Some(HostConfig {
                network_mode: network.map(str::to_owned),
                // Loopback only: the machine is shared, and nothing else needs to reach it.
                port_bindings: publish.then(|| {
                    HashMap::from([(
                        "8080/tcp".to_owned(),
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".to_owned()),
                            host_port: Some(String::new()),
                        }]),
                    )])
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(fixture_error)?;
        if start {
            self.docker
                .start_container(&created.id, None)
                .await
                .map_err(fixture_error)?;
            self.wait_for(&created.id, ContainerState::Running).await?;
        }
        Ok(created.id)
    }

    /// Kills a container (an idle `sleep` as PID 1 ignores SIGTERM) and waits until it is
    /// `exited`.
    pub async fn stop(&self, id: &str) -> PortResult<()> {
        let options = KillContainerOptionsBuilder::new().signal("KILL").build();
        self.docker
            .kill_container(id, Some(options))
            .await
            .map_err(fixture_error)?;
        self.wait_for(id, ContainerState::Exited).await
    }

    /// Pauses a running container and waits until it is `paused`.
    pub async fn pause(&self, id: &str) -> PortResult<()> {
        self.docker
            .pause_container(id)
            .await
            .map_err(fixture_error)?;
        self.wait_for(id, ContainerState::Paused).await
    }

    /// Removes a container forcibly.
    pub async fn remove(&self, id: &str) -> PortResult<()> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        self.docker
            .remove_container(id, Some(options))
            .await
            .map_err(fixture_error)
    }

    /// Waits (up to 10s) until Docker reports `state` for the container.
    pub async fn wait_for(&self, id: &str, state: ContainerState) -> PortResult<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let inspected = self
                .docker
                .inspect_container(id, None)
                .await
                .map_err(fixture_error)?;
            let word = inspected
                .state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .unwrap_or_default();
            if word == state.as_str() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(PortError::timeout(
                    format!("container {id} to become {state} (it is {word:?})"),
                    Duration::from_secs(10),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `command` inside a running container (as `docker exec` does), waits for it to
    /// finish and returns its exit code and output.
    pub async fn exec(&self, id: &str, command: &[&str]) -> PortResult<(i64, String)> {
        let created = self
            .docker
            .create_exec(
                id,
                bollard::exec::CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(fixture_error)?;
        let mut output = String::new();
        if let bollard::exec::StartExecResults::Attached {
            output: mut stream, ..
        } = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(fixture_error)?
        {
            // The stream ends when the command does.
            while let Some(chunk) = stream.next().await {
                output.push_str(&chunk.map_err(fixture_error)?.to_string());
            }
        }
        let inspected = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(fixture_error)?;
        Ok((inspected.exit_code.unwrap_or(-1), output))
    }

    /// Stops the engine of a [`Command::DetachedEngine`] container; the container keeps
    /// running. Panics when nothing was stopped.
    pub async fn stop_engine(&self, id: &str) {
        let (code, output) = self
            .exec(id, &["/bin/busybox", "killall", "httpd"])
            .await
            .unwrap_or_else(|e| panic!("exec killall httpd in {id}: {e}"));
        assert_eq!(code, 0, "killall httpd in {id} failed: {output}");
    }

    /// Starts the engine of a [`Command::DetachedEngine`] container again. Panics when it
    /// does not start.
    pub async fn start_engine(&self, id: &str) {
        let (code, output) = self
            .exec(id, &DETACHED_ENGINE)
            .await
            .unwrap_or_else(|e| panic!("exec httpd in {id}: {e}"));
        assert_eq!(code, 0, "starting httpd in {id} failed: {output}");
    }

    /// The raw inspect IP address of a container on `network`, as Docker stores it.
    pub async fn raw_address(&self, id: &str, network: &str) -> Option<String> {
        let inspected = self.docker.inspect_container(id, None).await.ok()?;
        inspected
            .network_settings?
            .networks?
            .get(network)?
            .ip_address
            .clone()
            .filter(|a| !a.is_empty())
    }
}

fn fixture_error(error: bollard::errors::Error) -> PortError {
    PortError::other(format!("test fixture: {error}"), error)
}

/// The conformance suite's fixture: the suite's containers live in this scope.
pub struct KitFixture<'a> {
    /// The scope holding the suite's containers.
    pub scope: &'a Scope,
}

#[async_trait]
impl DockerFixture for KitFixture<'_> {
    fn managed_label(&self) -> String {
        MANAGED_LABEL.to_owned()
    }

    fn run_value(&self) -> String {
        self.scope.kit_run_value.clone()
    }

    fn image_ref(&self) -> String {
        IMAGE.to_owned()
    }

    async fn create(&self, spec: &ContainerSpec) -> PortResult<String> {
        self.scope
            .create(
                &spec.name,
                &spec.labels,
                Command::Idle,
                None,
                spec.running,
                false,
            )
            .await
    }

    async fn stop(&self, container_id: &str) -> PortResult<()> {
        self.scope.stop(container_id).await
    }

    async fn pause(&self, container_id: &str) -> PortResult<()> {
        self.scope.pause(container_id).await
    }

    async fn remove(&self, container_id: &str) -> PortResult<()> {
        self.scope.remove(container_id).await
    }
}

/// A Unix socket that forwards every connection to the daemon's socket: stopping it is the
/// daemon going away, for this test process only.
pub struct SocketProxy {
    /// Where it listens.
    pub path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl SocketProxy {
    /// Listens on `path`, forwarding to `target`.
    pub fn start(path: &Path, target: &Path) -> Self {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("bind proxy socket {}: {e}", path.display()));
        let target = target.to_owned();
        let task = tokio::spawn(async move {
            // Connections live in this task's JoinSet: aborting the proxy closes them all.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { return };
                        let target = target.clone();
                        connections.spawn(async move {
                            if let Ok(mut daemon) = tokio::net::UnixStream::connect(&target).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut daemon).await;
                            }
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Self {
            path: path.to_owned(),
            task,
        }
    }

    /// Stops listening and cuts every forwarded connection; the socket file stays, with
    /// nobody answering on it (a dead socket).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A fresh temporary directory for sockets, removed with [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates it.
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "galaxy-runtime-test-{}",
            GameId::new_random().as_uuid().simple()
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The daemon's own socket path, for the proxy to forward to.
pub fn daemon_socket(adapter: &DockerAdapter) -> PathBuf {
    PathBuf::from(
        adapter
            .config()
            .socket_path()
            .expect("these tests reach the daemon over a Unix socket"),
    )
}

/// An adapter on the daemon behind `socket` (a proxy).
pub async fn adapter_at(socket: &Path) -> PortResult<DockerAdapter> {
    DockerAdapter::connect(DockerConfig::with_host(format!(
        "unix://{}",
        socket.display()
    )))
    .await
}
