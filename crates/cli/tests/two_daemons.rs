//! Two real Docker daemons (CONTRACT §6): the machine's own, and a second `dockerd` this test
//! starts beside it (its own bridge, address pool, data and socket; `live-restore`, so its
//! containers outlive a stop of the daemon) and stops by pid. Games on both; the second daemon
//! stopped → its games untouched and `host_unavailable` reported while the first host's
//! removal goes ahead; started again → nothing changed that should not have; a game's
//! container moved from one host to the other → rebound with its new host.
//!
//! It needs root (a bridge is made with `ip`) and `dockerd`, as CI has; without Docker at all
//! it fails saying how to start it, unless GALAXY_RUNTIME_SKIP_DOCKER=1.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use galaxy_runtime_model::GameId;
use serde_json::Value;

/// The bridge of the second daemon: its own, so the machine's `docker0` is never touched. Its
/// addresses (10.213.0.0/24, and the pool 10.214.0.0/16 for its networks) lie outside Docker's
/// default pools, which the machine's daemon hands out to the other tests' networks meanwhile.
const BRIDGE: &str = "br-grt2";

/// A second `dockerd`, removed with everything it made when dropped.
struct SecondDaemon {
    dir: PathBuf,
    child: Option<Child>,
}

impl SecondDaemon {
    fn start() -> Self {
        let dir = PathBuf::from(format!("/tmp/grt2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the second daemon");
        std::fs::write(dir.join("daemon.json"), "{}").expect("its config file");
        // A bridge left by an earlier run that was killed goes first.
        let _ = ip(&["link", "del", BRIDGE]);
        for args in [
            vec!["link", "add", "name", BRIDGE, "type", "bridge"],
            vec!["addr", "add", "10.213.0.1/24", "dev", BRIDGE],
            vec!["link", "set", BRIDGE, "up"],
        ] {
            let out = ip(&args);
            assert!(
                out.status.success(),
                "ip {} failed (this test needs root): {}",
                args.join(" "),
                stderr(&out)
            );
        }
        let mut daemon = Self { dir, child: None };
        daemon.run();
        daemon
    }

    /// Starts (or starts again) the daemon on the same data, and waits until it answers.
    fn run(&mut self) {
        let path = |name: &str| self.dir.join(name).display().to_string();
        let child = Command::new("dockerd")
            .args(["--config-file", &path("daemon.json")])
            .args(["--host", &self.url()])
            .args(["--data-root", &path("data")])
            .args(["--exec-root", &path("exec")])
            .args(["--pidfile", &path("docker.pid")])
            .args(["--bridge", BRIDGE, "--iptables=false", "--ip-masq=false"])
            .args(["--storage-driver", "vfs", "--live-restore"])
            .args(["--default-address-pool", "base=10.214.0.0/16,size=24"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path("log")).expect("its log file"))
            .spawn()
            .expect("dockerd starts (is it installed?)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the second dockerd never answered; its log: {}",
                std::fs::read_to_string(path("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the daemon by its pid and waits for it; its containers keep running
    /// (`live-restore`).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn url(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(self.url())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the docker command runs")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker -H {} {} failed: {}",
            self.url(),
            args.join(" "),
            stderr(&out)
        );
        stdout(&out).trim().to_owned()
    }

    /// The test image, copied from the machine's daemon (no registry here).
    fn load_image(&self) {
        let mut saved = Command::new("docker")
            .args(["save", IMAGE])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save runs");
        let loaded = Command::new("docker")
            .arg("-H")
            .arg(self.url())
            .arg("load")
            .stdin(saved.stdout.take().expect("its output"))
            .output()
            .expect("docker load runs");
        let save_status = saved.wait().expect("docker save ends");
        assert!(save_status.success(), "docker save {IMAGE} failed");
        assert!(loaded.status.success(), "docker load: {}", stderr(&loaded));
    }

    /// A managed engine container of `game_id` for `fleet`, on the daemon's copy of the
    /// fleet's network.
    fn start_engine(&self, fleet: &Fleet, game_id: GameId) -> String {
        self.docker_ok(&[
            "run",
            "-d",
            "--name",
            &format!("galaxy-game-{game_id}"),
            "--network",
            &fleet.network,
            "--label",
            &format!("galaxy.managed={}", fleet.label_value),
            "--label",
            "galaxy.engine_version=1.0.0",
            IMAGE,
        ])
    }
}

impl Drop for SecondDaemon {
    fn drop(&mut self) {
        if self.child.is_none() {
            self.run();
        }
        let ids = self.docker(&["ps", "-aq"]);
        for id in stdout(&ids).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let networks = self.docker(&["network", "ls", "-q", "--filter", "type=custom"]);
        for id in stdout(&networks).split_whitespace() {
            let _ = self.docker(&["network", "rm", id]);
        }
        self.stop();
        let _ = ip(&["link", "del", BRIDGE]);
        // dockerd bind-mounts its data root onto itself and leaves the mount behind.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.join("data"))
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the ip command runs (iproute2)")
}

#[test]
fn games_on_two_daemons_survive_one_daemon_stopping_and_follow_a_move() {
    let Some(fleet) = Fleet::new() else { return };
    let mut second = SecondDaemon::start();
    second.load_image();
    second.docker_ok(&["network", "create", &fleet.network]);
    let (real, second_url) = (real_daemon(), second.url());
    let hosts = [("one", real.as_str()), ("two", second_url.as_str())];

    let (on_one, vanishing, on_two) = (
        GameId::new_random(),
        GameId::new_random(),
        GameId::new_random(),
    );
    for game in [on_one, vanishing, on_two] {
        assert_success(
            &output(&mut fleet.db_command(&["games", "add", &game.to_string()])),
            "games add",
        );
    }
    fleet.start_engine(on_one);
    let vanishing_container = fleet.start_engine(vanishing);
    let two_container = second.start_engine(&fleet, on_two);

    reconcile_on_hosts(&fleet, &hosts);
    assert_eq!(record_of(&fleet, on_one)["docker_host"], "one");
    assert_eq!(record_of(&fleet, vanishing)["docker_host"], "one");
    let adopted = record_of(&fleet, on_two);
    assert_eq!(adopted["docker_host"], "two");
    assert_eq!(adopted["current_container_id"], two_container);

    // The second daemon stops; a container of the first host vanishes.
    second.stop();
    fleet.remove(&vanishing_container);
    let document = reconcile_on_hosts(&fleet, &hosts);
    assert_eq!(record_of(&fleet, vanishing)["status"], "removed");
    let untouched = record_of(&fleet, on_two);
    assert_eq!(untouched["status"], adopted["status"], "{document:#}");
    assert_eq!(untouched["current_container_id"], two_container);
    let unavailable: Vec<&Value> = document["plan"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "host_unavailable")
        .collect();
    assert_eq!(unavailable.len(), 1, "{document:#}");
    assert_eq!(unavailable[0]["host"], "two");
    assert_eq!(unavailable[0]["records"], 1, "its one record is unobserved");

    // Back again: its game is where it was, nothing to rebind or remove.
    second.run();
    let document = reconcile_on_hosts(&fleet, &hosts);
    let back = record_of(&fleet, on_two);
    assert_eq!(back["docker_host"], "two");
    assert_eq!(back["current_container_id"], two_container);
    assert_ne!(back["status"], "removed");
    assert!(
        document["plan"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] != "rebind" && a["to"] != "removed"),
        "{document:#}"
    );

    // The game moves to the first daemon: rebound there, with its new container.
    second.docker_ok(&["rm", "-f", &two_container]);
    let moved_container = fleet.start_engine(on_two);
    reconcile_on_hosts(&fleet, &hosts);
    let moved = record_of(&fleet, on_two);
    assert_eq!(moved["docker_host"], "one");
    assert_eq!(moved["current_container_id"], moved_container);
    assert_ne!(moved["status"], "removed");
}
