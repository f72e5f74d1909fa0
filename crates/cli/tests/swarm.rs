//! A real one-node Docker Swarm as a host (CONTRACT §6): `docker swarm init` on a second
//! `dockerd` this test starts ([`SecondDaemon`]: the machine's daemon is shared with other
//! tests, and must never change mode), services made from the local test image with
//! `--no-resolve-image` (there is no registry), the swarm left and its gateway bridge removed at
//! the end, also when the test fails.
//!
//! - The Swarm adapter passes the `DockerPort` conformance suite (tasks reported as containers
//!   named after their service, in their task's state; inspect through the manager; a removed
//!   service's tasks are `NotFound`), and refuses a daemon in no swarm.
//! - `reconcile --once` on `--docker-host sw=swarm+unix://…`: the services of known games are
//!   adopted with the right game ids, each on its task's container; a task the Swarm restarts
//!   on a new container (its container killed) is rebound to it; a removed service's game is
//!   `removed`.
//! - `run` with an hour between passes: removing a service wakes the loop through the
//!   manager's events, and its game is `removed` within seconds.
//!
//! The daemon's addresses are its own: the bridge 10.217.0.1/24 and the pool 10.218.0.0/16, the
//! gateway bridge 10.220.0.0/24, the swarm's pool 10.219.0.0/16, the swarm port 23977 and the
//! data path port 47977 — none of them the two-daemon test's or Docker's defaults. It needs root
//! and `dockerd`, as CI has; without Docker it fails saying how to start it, unless
//! GALAXY_RUNTIME_SKIP_DOCKER=1.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::daemon::{Network, SecondDaemon};
use common::*;
use galaxy_runtime_docker::{DockerConfig, HostKind, SwarmAdapter};
use galaxy_runtime_model::{ContainerState, GameId};
use galaxy_runtime_ports::{ErrorKind, PortError, PortResult};
use galaxy_runtime_testkit::docker::{self as kit, ContainerSpec, DockerFixture};
use serde_json::Value;

/// The Swarm's gateway bridge (Docker's `docker_gwbridge` network, made beforehand so that it
/// is not the machine-wide `docker_gwbridge` link another swarm would want).
const GATEWAY_BRIDGE: &str = "br-grsw-gw";

const NETWORK: Network = Network {
    bridge: "br-grsw",
    address: "10.217.0.1/24",
    pool: "10.218.0.0/16",
};

/// The manager's address and swarm port, on the daemon's own bridge.
const SWARM_ADDR: &str = "10.217.0.1:23977";

/// How long the Swarm may take to run, restart or remove a task on the vfs storage driver.
const SWARM_WAIT: Duration = Duration::from_secs(60);

/// A one-node swarm on a second daemon (without `--live-restore`, which swarm mode refuses):
/// left, with its gateway bridge removed, when dropped (then the daemon itself goes).
struct Swarm {
    daemon: SecondDaemon,
    in_swarm: bool,
}

impl Swarm {
    /// The daemon, not yet in a swarm.
    fn daemon() -> Self {
        // A gateway bridge left by an earlier run that was killed goes first.
        remove_gateway_bridge();
        let daemon = SecondDaemon::start_with(NETWORK, vec!["--live-restore=false".to_owned()]);
        daemon.load_image();
        Self {
            daemon,
            in_swarm: false,
        }
    }

    /// Makes the daemon the manager of a new swarm.
    fn init(&mut self) {
        self.daemon.docker_ok(&[
            "network",
            "create",
            "--driver=bridge",
            "--subnet=10.220.0.0/24",
            &format!("--opt=com.docker.network.bridge.name={GATEWAY_BRIDGE}"),
            "--opt=com.docker.network.bridge.enable_icc=false",
            "--opt=com.docker.network.bridge.enable_ip_masquerade=false",
            "docker_gwbridge",
        ]);
        self.in_swarm = true;
        self.daemon.docker_ok(&[
            "swarm",
            "init",
            "--advertise-addr",
            SWARM_ADDR,
            "--listen-addr",
            SWARM_ADDR,
            "--data-path-port=47977",
            "--default-addr-pool=10.219.0.0/16",
        ]);
    }

    /// The manager as `--docker-host` names it.
    fn url(&self) -> String {
        format!("swarm+{}", self.daemon.url())
    }

    fn config(&self) -> DockerConfig {
        DockerConfig {
            kind: HostKind::Swarm,
            ..DockerConfig::with_host(self.daemon.url())
        }
    }

    /// `docker service create -d` with `args` before the image; the service's id.
    fn create_service(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec![
            "service",
            "create",
            "-d",
            "--name",
            name,
            "--no-resolve-image",
            "--stop-grace-period=100ms",
        ];
        all.extend(args);
        all.push(IMAGE);
        self.daemon.docker_ok(&all)
    }

    /// Every task of a service, newest first, as Docker describes them.
    fn tasks(&self, service: &str) -> Vec<Value> {
        let ids = self
            .daemon
            .docker(&["service", "ps", "-q", "--no-trunc", service]);
        let ids: Vec<String> = stdout(&ids).split_whitespace().map(str::to_owned).collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let mut args = vec!["inspect", "--type=task"];
        args.extend(ids.iter().map(String::as_str));
        let out = self.daemon.docker(&args);
        let mut tasks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        tasks.sort_by(|a, b| b["CreatedAt"].as_str().cmp(&a["CreatedAt"].as_str()));
        tasks
    }

    /// Waits until a task of `service` is in `state` and passes `also`; that task.
    fn wait_task(&self, service: &str, state: &str, also: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + SWARM_WAIT;
        loop {
            let tasks = self.tasks(service);
            if let Some(task) = tasks
                .iter()
                .find(|t| t["Status"]["State"] == state && also(t))
            {
                return task.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no task of service {service} became {state}: {tasks:#?}\nthe daemon's log: {}",
                std::fs::read_to_string(self.daemon.dir().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the task `task_id` is gone from the manager.
    fn wait_task_gone(&self, task_id: &str) {
        let deadline = Instant::now() + SWARM_WAIT;
        while self
            .daemon
            .docker(&["inspect", "--type=task", task_id])
            .status
            .success()
        {
            assert!(Instant::now() < deadline, "task {task_id} never went away");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if !self.in_swarm {
            return;
        }
        let services = self.daemon.docker(&["service", "ls", "-q"]);
        for id in stdout(&services).split_whitespace() {
            let _ = self.daemon.docker(&["service", "rm", id]);
        }
        let _ = self.daemon.docker(&["swarm", "leave", "--force"]);
        let _ = self.daemon.docker(&["network", "rm", "docker_gwbridge"]);
        remove_gateway_bridge();
    }
}

/// Removes the gateway bridge's link, if a daemon left it behind.
fn remove_gateway_bridge() {
    let _ = std::process::Command::new("ip")
        .args(["link", "del", GATEWAY_BRIDGE])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn container_id(task: &Value) -> String {
    task["Status"]["ContainerStatus"]["ContainerID"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The conformance suite's containers as services: a `created` one is a service whose task no
/// node can take (it stays `pending`), an `exited` one a service whose task's container was
/// killed and is not restarted.
struct SwarmFixture<'a> {
    swarm: &'a Swarm,
    run_value: String,
    /// The service and task of each id handed out.
    made: Mutex<HashMap<String, (String, String)>>,
}

#[async_trait]
impl DockerFixture for SwarmFixture<'_> {
    fn run_value(&self) -> String {
        self.run_value.clone()
    }

    fn image_ref(&self) -> String {
        format!("{IMAGE}:latest")
    }

    fn states(&self) -> Vec<ContainerState> {
        vec![
            ContainerState::Running,
            ContainerState::Created,
            ContainerState::Exited,
        ]
    }

    async fn create(&self, spec: &ContainerSpec) -> PortResult<String> {
        let labels: Vec<String> = spec
            .labels
            .iter()
            .map(|(k, v)| format!("--container-label={k}={v}"))
            .collect();
        let mut args: Vec<&str> = labels.iter().map(String::as_str).collect();
        args.push("--restart-condition=none");
        if !spec.running {
            args.push("--constraint=node.labels.galaxy-runtime-never==true");
        }
        let service = self.swarm.create_service(&spec.name, &args);
        let (task, id) = if spec.running {
            let task = self.swarm.wait_task(&service, "running", |_| true);
            let id = container_id(&task);
            (task, id)
        } else {
            let task = self.swarm.wait_task(&service, "pending", |_| true);
            let id = task["ID"].as_str().unwrap_or_default().to_owned();
            (task, id)
        };
        let task_id = task["ID"].as_str().unwrap_or_default().to_owned();
        self.made
            .lock()
            .unwrap()
            .insert(id.clone(), (service, task_id));
        Ok(id)
    }

    async fn stop(&self, container_id: &str) -> PortResult<()> {
        let (service, task) = self.made.lock().unwrap()[container_id].clone();
        self.swarm.daemon.docker_ok(&["kill", container_id]);
        self.swarm
            .wait_task(&service, "failed", |t| t["ID"] == task.as_str());
        Ok(())
    }

    async fn pause(&self, _container_id: &str) -> PortResult<()> {
        Err(PortError::invalid("a Swarm task cannot be paused"))
    }

    async fn remove(&self, container_id: &str) -> PortResult<()> {
        let (service, task) = self.made.lock().unwrap()[container_id].clone();
        self.swarm.daemon.docker_ok(&["service", "rm", &service]);
        self.swarm.wait_task_gone(&task);
        Ok(())
    }
}

/// A game's service: managed by its service label or by its containers' labels, restarted
/// at once when its container dies.
fn game_service(swarm: &Swarm, fleet: &Fleet, game: GameId, labelled_on: &str) -> String {
    let managed = format!("galaxy.managed={}", fleet.label_value);
    let label = match labelled_on {
        "service" => format!("--label={managed}"),
        _ => format!("--container-label={managed}"),
    };
    let service = swarm.create_service(
        &format!("galaxy-game-{game}"),
        &[
            &label,
            "--container-label=galaxy.engine_version=1.0.0",
            "--restart-condition=any",
            "--restart-delay=100ms",
        ],
    );
    swarm.wait_task(&service, "running", |_| true);
    service
}

fn reconcile(fleet: &Fleet, swarm: &Swarm) -> Value {
    reconcile_on_hosts(fleet, &[("sw", &swarm.url())])
}

#[test]
fn a_swarm_is_one_host_whose_services_are_adopted_rebound_and_removed() {
    let Some(fleet) = Fleet::new() else { return };
    let mut swarm = Swarm::daemon();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    // Not a manager yet: refused as a setting, by the adapter and on the command line.
    let error = runtime
        .block_on(SwarmAdapter::connect(swarm.config()))
        .expect_err("a daemon in no swarm is no Swarm host");
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
    assert!(error.to_string().contains("is in no swarm"), "{error}");
    let out = output(&mut fleet.command(&[
        "reconcile",
        "--once",
        &format!("--docker-host=sw={}", swarm.url()),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot use Docker host \"sw\"")
            && stderr(&out).contains("is in no swarm"),
        "{}",
        stderr(&out)
    );

    swarm.init();

    // The port's conformance suite, on the manager.
    runtime.block_on(async {
        let port = SwarmAdapter::connect(swarm.config())
            .await
            .expect("the manager answers");
        let fixture = SwarmFixture {
            swarm: &swarm,
            run_value: kit::unique_run_value(),
            made: Mutex::new(HashMap::new()),
        };
        kit::run_all(&port, &fixture).await;
    });

    // Games on services, adopted with their game ids, each on its task's container.
    let (by_container_label, by_service_label) = (GameId::new_random(), GameId::new_random());
    for game in [by_container_label, by_service_label] {
        assert_success(
            &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
            "games add",
        );
    }
    let restarted = game_service(&swarm, &fleet, by_container_label, "container");
    let removed = game_service(&swarm, &fleet, by_service_label, "service");
    reconcile(&fleet, &swarm);
    for (game, service) in [
        (by_container_label, &restarted),
        (by_service_label, &removed),
    ] {
        let record = record_of(&fleet, game);
        let task = swarm.wait_task(service, "running", |_| true);
        assert_eq!(record["docker_host"], "sw", "{record:#}");
        assert_eq!(record["status"], "running", "{record:#}");
        assert_eq!(record["current_container_id"], container_id(&task));
        assert_eq!(record["current_image_ref"], format!("{IMAGE}:latest"));
        assert_eq!(record["current_engine_version"], "1.0.0");
    }

    // The Swarm restarts a task whose container died, on a new container: rebound to it.
    let first = container_id(&swarm.wait_task(&restarted, "running", |_| true));
    swarm.daemon.docker_ok(&["kill", &first]);
    let second =
        container_id(&swarm.wait_task(&restarted, "running", |t| container_id(t) != first));
    let document = reconcile(&fleet, &swarm);
    let rebound = record_of(&fleet, by_container_label);
    assert_eq!(rebound["current_container_id"], second, "{document:#}");
    assert_eq!(rebound["docker_host"], "sw");
    assert_ne!(rebound["status"], "removed");
    assert!(
        document["plan"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "rebind"
                && a["game_id"] == by_container_label.to_string()
                && a["container_id"] == second),
        "{document:#}"
    );

    // A removed service: its game is removed (its task may still be stopping; the service
    // is gone, and the manager says so).
    swarm.daemon.docker_ok(&["service", "rm", &removed]);
    let document = reconcile(&fleet, &swarm);
    assert_eq!(
        record_of(&fleet, by_service_label)["status"],
        "removed",
        "{document:#}"
    );
    assert_eq!(record_of(&fleet, by_container_label)["status"], "running");

    // The loop, with an hour between passes: only the manager's events explain noticing a
    // removal. The game's containers carry no managed label (its service does), so a
    // daemon's container events alone would not wake the loop for it.
    let evented = GameId::new_random();
    assert_success(
        &output(&mut fleet.db_command(&["games", "add", &evented.to_string()])),
        "games add",
    );
    let service = game_service(&swarm, &fleet, evented, "service");
    let log = fleet.scratch.path.join("run.log");
    let child = fleet
        .command(&[
            "run",
            "--reconcile-interval=1h",
            "--event-debounce=100ms",
            &format!("--docker-host=sw={}", swarm.url()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("run starts");
    let _run = Running(child);
    wait_until(
        "the service's game is adopted at start-up",
        Duration::from_secs(30),
        || status_of(&fleet, evented).as_deref() == Some("running"),
    );
    swarm.daemon.docker_ok(&["service", "rm", &service]);
    let started = Instant::now();
    wait_until(
        "the removed service's game is removed, woken by the manager's events",
        Duration::from_secs(20),
        || status_of(&fleet, evented).as_deref() == Some("removed"),
    );
    eprintln!(
        "removal noticed {:.1}s after docker service rm",
        started.elapsed().as_secs_f64()
    );
}
