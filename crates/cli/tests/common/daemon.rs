//! A second `dockerd` beside the machine's own, for the tests that need another Docker host:
//! its own bridge, address pool, data and socket, and `live-restore` when asked (its containers
//! outlive a stop of the daemon), started by the test and stopped by pid; everything it made is removed when it
//! drops, also when the test fails.
//!
//! Each test binary gives its daemon a [`DaemonSetup`] of its own, so that two binaries running
//! at once never share a bridge or addresses. Every address lies outside Docker's default
//! pools, which the machine's daemon hands out to the other tests' networks meanwhile.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use galaxy_runtime_model::GameId;

use super::{Fleet, IMAGE, stderr, stdout};

/// Where a second daemon lives on the machine's network, and how it runs.
#[derive(Debug, Clone, Copy)]
pub struct DaemonSetup {
    /// The prefix of its directory under /tmp (the test's pid follows).
    pub name: &'static str,
    /// Its bridge: its own, so the machine's `docker0` is never touched.
    pub bridge: &'static str,
    /// The bridge's address, with its prefix length (`10.213.0.1/24`).
    pub address: &'static str,
    /// The pool its networks take their subnets from (`10.214.0.0/16`).
    pub pool: &'static str,
    /// Other network links the daemon may leave behind when it is killed (a Swarm's gateway
    /// bridge), removed before it starts and after it stops.
    pub leftovers: &'static [&'static str],
    /// Whether its containers outlive a stop of the daemon (`--live-restore`, which swarm
    /// mode refuses).
    pub live_restore: bool,
}

/// A second `dockerd`, removed with everything it made when dropped.
pub struct SecondDaemon {
    setup: DaemonSetup,
    dir: PathBuf,
    child: Option<Child>,
}

impl SecondDaemon {
    /// Makes the bridge of `setup` and starts the daemon on it.
    pub fn start(setup: DaemonSetup) -> Self {
        let dir = PathBuf::from(format!("/tmp/{}-{}", setup.name, std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the second daemon");
        std::fs::write(dir.join("daemon.json"), "{}").expect("its config file");
        // Links left by an earlier run that was killed go first.
        for link in [setup.bridge].iter().chain(setup.leftovers) {
            let _ = ip(&["link", "del", link]);
        }
        for args in [
            vec!["link", "add", "name", setup.bridge, "type", "bridge"],
            vec!["addr", "add", setup.address, "dev", setup.bridge],
            vec!["link", "set", setup.bridge, "up"],
        ] {
            let out = ip(&args);
            assert!(
                out.status.success(),
                "ip {} failed (this test needs root): {}",
                args.join(" "),
                stderr(&out)
            );
        }
        let mut daemon = Self {
            setup,
            dir,
            child: None,
        };
        daemon.run();
        daemon
    }

    /// Starts (or starts again) the daemon on the same data, and waits until it answers.
    pub fn run(&mut self) {
        let path = |name: &str| self.dir.join(name).display().to_string();
        let pool = format!("base={},size=24", self.setup.pool);
        let child = Command::new("dockerd")
            .args(["--config-file", &path("daemon.json")])
            .args(["--host", &self.url()])
            .args(["--data-root", &path("data")])
            .args(["--exec-root", &path("exec")])
            .args(["--pidfile", &path("docker.pid")])
            .args([
                "--bridge",
                self.setup.bridge,
                "--iptables=false",
                "--ip-masq=false",
            ])
            .args(["--storage-driver", "vfs"])
            .args(self.setup.live_restore.then_some("--live-restore"))
            .args(["--default-address-pool", &pool])
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
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Stops the daemon by its pid and waits for it; its containers keep running
    /// (`live-restore`).
    pub fn stop(&mut self) {
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

    /// The daemon's socket, as a `DOCKER_HOST` URL.
    pub fn url(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// `docker -H <this daemon> <args>`.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(self.url())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the docker command runs")
    }

    /// `docker -H <this daemon> <args>`, which must succeed; its trimmed output.
    pub fn docker_ok(&self, args: &[&str]) -> String {
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
    pub fn load_image(&self) {
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
    pub fn start_engine(&self, fleet: &Fleet, game_id: GameId) -> String {
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
        for link in [self.setup.bridge].iter().chain(self.setup.leftovers) {
            let _ = ip(&["link", "del", link]);
        }
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
