//! What the end-to-end tests of the command line share: the binary with a clean environment,
//! a scratch directory per test, and fleets of real game containers that are removed whatever
//! happens to the test.
//!
//! Every container and network a fleet makes carries [`SCOPE_LABEL`] with the fleet's own id,
//! and the fleet's containers are managed under a `managed_label_value` of their own, so tests
//! running in parallel (in this binary or others) never see each other's containers.

#![allow(dead_code)] // each test binary uses its own part of the helpers

pub mod certs;
pub mod daemon;
pub mod pg;
pub mod pgserver;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use galaxy_runtime_model::GameId;
use serde_json::Value;

/// The image every test container is made from (built by `scripts/build-test-image.sh`).
pub const IMAGE: &str = "galaxy-runtime-test-engine";
/// The label carrying a fleet's id on everything it makes.
pub const SCOPE_LABEL: &str = "galaxy-runtime.test.scope";
/// The skip variable of the tests that need Docker. CI never sets it.
pub const SKIP_DOCKER: &str = "GALAXY_RUNTIME_SKIP_DOCKER";
/// The skip variable of the tests that need PostgreSQL. CI never sets it.
pub const SKIP_POSTGRES: &str = "GALAXY_RUNTIME_SKIP_POSTGRES";

/// The binary, with an environment free of anything that would change its configuration.
pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_galaxy-runtime"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("BACKEND_RUNTIME_") || name == "RUST_BACKTRACE" || name == "NO_COLOR" {
            command.env_remove(&name);
        }
    }
    command
}

/// Runs a command to its end, with standard input closed.
pub fn output(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .expect("the binary starts")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Standard output as JSON, or a panic showing both streams.
pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            stdout(output),
            stderr(output)
        )
    })
}

/// Panics with both streams unless the command succeeded.
#[track_caller]
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed with {}:\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// A scratch directory, removed on drop.
pub struct Scratch {
    /// Its path.
    pub path: PathBuf,
}

impl Scratch {
    /// A new, empty directory under the system's temporary directory.
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "galaxy-runtime-cli-test-{}",
            GameId::new_random().as_uuid().simple()
        ));
        std::fs::create_dir_all(&path).expect("scratch directory created");
        Self { path }
    }

    /// A SQLite URL of a file in the directory.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.path.join("runtime.db").display())
    }

    /// The names of the files in the directory.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the docker command cannot run ({e}); install the Docker CLI, or set \
                 {SKIP_DOCKER}=1 to skip the tests that need Docker"
            )
        })
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        stderr(&out)
    );
    stdout(&out).trim().to_owned()
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the Docker tests should run: `false` (after saying so) when the person running the
/// tests set the skip variable; a panic saying how to start Docker when it is unreachable.
pub fn docker_available() -> bool {
    if std::env::var(SKIP_DOCKER).as_deref() == Ok("1") {
        eprintln!("skipped: {SKIP_DOCKER}=1, this test needs the Docker daemon");
        return false;
    }
    let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        info.status.success(),
        "these tests need a running Docker daemon and none answers: {}\n\
         Start it (as root: `service docker start`, or `dockerd >/var/log/dockerd.log 2>&1 &`) \
         or point DOCKER_HOST at its socket. To skip the tests that need Docker, set \
         {SKIP_DOCKER}=1.",
        stderr(&info).trim()
    );
    if !docker(&["image", "inspect", IMAGE]).status.success() {
        let script = repository_root().join("scripts/build-test-image.sh");
        let built = Command::new(&script).stdin(Stdio::null()).output();
        assert!(
            docker(&["image", "inspect", IMAGE]).status.success(),
            "the test image {IMAGE} is missing and building it failed ({built:?}); build it \
             with `scripts/build-test-image.sh` (as root: it may install busybox-static)"
        );
    }
    true
}

/// Real game containers on a network of their own, managed under a label value of their own,
/// with a scratch directory for the database; everything is removed on drop.
pub struct Fleet {
    /// The fleet's id: its scope label, its network's and label value's suffix.
    pub id: String,
    /// The `managed_label_value` of its containers.
    pub label_value: String,
    /// Its Docker network.
    pub network: String,
    /// Its scratch directory.
    pub scratch: Scratch,
    /// The database URL the fleet's commands use.
    pub database_url: String,
}

impl Fleet {
    /// A new fleet on a new network; `None` when Docker tests are skipped.
    pub fn new() -> Option<Self> {
        if !docker_available() {
            return None;
        }
        let scratch = Scratch::new();
        let id = GameId::new_random().as_uuid().simple().to_string()[..12].to_owned();
        let network = format!("galaxy-runtime-cli-test-{id}");
        docker_ok(&[
            "network",
            "create",
            "--label",
            &format!("{SCOPE_LABEL}={id}"),
            &network,
        ]);
        let database_url = scratch.sqlite_url();
        Some(Self {
            label_value: format!("cli-test-{id}"),
            id,
            network,
            scratch,
            database_url,
        })
    }

    /// The same fleet with another database (PostgreSQL, say).
    pub fn with_database(mut self, url: String) -> Self {
        self.database_url = url;
        self
    }

    /// The flags that point a command at this fleet: its database, its label value, its
    /// network, and engines addressed by container IP (the tests run on the Docker host).
    pub fn flags(&self) -> Vec<String> {
        vec![
            format!("--database-url={}", self.database_url),
            format!("--managed-label-value={}", self.label_value),
            format!("--docker-network={}", self.network),
            "--engine-addressing=container_ip".to_owned(),
        ]
    }

    /// `galaxy-runtime <command> <fleet flags>` (for run, reconcile and observe).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = bin();
        command.args(args).args(self.flags());
        command
    }

    /// `galaxy-runtime <args> --database-url=<the fleet's>` (for status and games).
    pub fn db_command(&self, args: &[&str]) -> Command {
        let mut command = bin();
        command
            .args(args)
            .arg(format!("--database-url={}", self.database_url));
        command
    }

    /// Registers `game_id` (`games add`), starts its managed engine container and waits until
    /// the engine answers: a game the next pass adopts as running. Returns the container's id.
    pub fn start_registered_game(&self, game_id: GameId) -> String {
        assert_success(
            &output(&mut self.db_command(&["games", "add", &game_id.to_string()])),
            "games add",
        );
        let container = self.start_engine(game_id);
        self.wait_engine(&container);
        container
    }

    /// Starts a managed engine container for `game_id` (named `galaxy-game-<id>`) and returns
    /// its id.
    pub fn start_engine(&self, game_id: GameId) -> String {
        self.start(&format!("galaxy-game-{game_id}"), true)
    }

    /// Starts an engine container named `name`, managed or not.
    pub fn start(&self, name: &str, managed: bool) -> String {
        let scope = format!("{SCOPE_LABEL}={}", self.id);
        let managed_label = format!("galaxy.managed={}", self.label_value);
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--network",
            &self.network,
            "--label",
            &scope,
            "--label",
            "galaxy.engine_version=1.0.0",
        ];
        if managed {
            args.extend(["--label", &managed_label]);
        }
        args.push(IMAGE);
        docker_ok(&args)
    }

    /// Waits until the engine in `container` answers its status resource.
    pub fn wait_engine(&self, container: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = docker(&[
                "exec",
                container,
                "/bin/busybox",
                "wget",
                "-q",
                "-O",
                "-",
                "http://127.0.0.1:8080/status",
            ]);
            if probe.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the engine in {container} never answered: {}",
                stderr(&probe)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Removes a container at once.
    pub fn remove(&self, container: &str) {
        docker_ok(&["rm", "-f", container]);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let filter = format!("label={SCOPE_LABEL}={}", self.id);
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        let ids: Vec<String> = stdout(&ids).split_whitespace().map(str::to_owned).collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker(&args);
        }
        let _ = docker(&["network", "rm", &self.network]);
    }
}

/// The records of `status --format json`, by game id.
pub fn status(fleet: &Fleet) -> Vec<Value> {
    let out = output(&mut fleet.db_command(&["status", "--format", "json"]));
    assert_success(&out, "status --format json");
    json(&out).as_array().cloned().unwrap_or_default()
}

/// The status of one game in `status --format json`, if it has a record.
pub fn status_of(fleet: &Fleet, game_id: GameId) -> Option<String> {
    status(fleet)
        .into_iter()
        .find(|r| r["game_id"] == game_id.to_string())
        .and_then(|r| r["status"].as_str().map(str::to_owned))
}

/// Polls `condition` every 200ms until it holds, at most `limit`; panics naming `what`.
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for a child to exit, at most `limit`; kills it and panics otherwise.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process that is killed if the test ends before it does.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The address of this machine's Docker daemon, as the tests' own `docker` commands reach it.
pub fn real_daemon() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned())
}

/// `reconcile --once --format json` of the fleet on these named Docker hosts; its document.
pub fn reconcile_on_hosts(fleet: &Fleet, hosts: &[(&str, &str)]) -> Value {
    let mut command = fleet.command(&["reconcile", "--once", "--format=json"]);
    for (name, url) in hosts {
        command.arg(format!("--docker-host={name}={url}"));
    }
    let out = output(&mut command);
    assert_success(&out, "reconcile --once on several Docker hosts");
    json(&out)
}

/// The record of one game in `status --format json`; a panic when it has none.
pub fn record_of(fleet: &Fleet, game_id: GameId) -> Value {
    status(fleet)
        .into_iter()
        .find(|r| r["game_id"] == game_id.to_string())
        .unwrap_or_else(|| panic!("no record of {game_id}"))
}
