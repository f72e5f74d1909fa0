//! A second `dockerd` beside the machine's own, for the tests that need another Docker host:
//! its own bridge, address pool, data, exec root and socket (`live-restore`, so its containers
//! outlive a stop of the daemon), started and stopped by pid, and removed with everything it
//! made when dropped. The machine's daemon, its `docker0` and its networks are never touched.
//!
//! Each test binary that starts one gives it a [`Network`] of its own (a bridge name and
//! addresses outside Docker's default pools, which the machine's daemon hands out to the
//! other tests' networks meanwhile), so that two such tests may run at the same time.
//! Starting one needs root (a bridge is made with `ip`) and `dockerd`, as CI has.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use galaxy_runtime_model::GameId;

use super::{Fleet, IMAGE, stderr, stdout};

/// The bridge and addresses of a second daemon.
#[derive(Debug, Clone, Copy)]
pub struct Network {
    /// The bridge's name (at most 15 characters).
    pub bridge: &'static str,
    /// The bridge's own address, `10.213.0.1/24`.
    pub address: &'static str,
    /// The pool of the daemon's networks, `10.214.0.0/16`.
    pub pool: &'static str,
}

/// A second `dockerd`, removed with everything it made when dropped.
pub struct SecondDaemon {
    dir: PathBuf,
    network: Network,
    listen: Vec<String>,
    child: Option<Child>,
}

impl SecondDaemon {
    /// Starts a daemon on `network` listening on its Unix socket (which the test's own
    /// `docker` commands use) and waits until it answers.
    pub fn start(network: Network) -> Self {
        Self::start_with(network, Vec::new())
    }

    /// Like [`SecondDaemon::start`], with more arguments for dockerd (another `--host`, TLS,
    /// `--live-restore=false` for swarm mode, which refuses live restore).
    pub fn start_with(network: Network, listen: Vec<String>) -> Self {
        let dir = PathBuf::from(format!("/tmp/{}-{}", network.bridge, std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the second daemon");
        std::fs::write(dir.join("daemon.json"), "{}").expect("its config file");
        // A bridge left by an earlier run that was killed goes first.
        let _ = ip(&["link", "del", network.bridge]);
        for args in [
            vec!["link", "add", "name", network.bridge, "type", "bridge"],
            vec!["addr", "add", network.address, "dev", network.bridge],
            vec!["link", "set", network.bridge, "up"],
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
            dir,
            network,
            listen,
            child: None,
        };
        daemon.run();
        daemon
    }

    /// The daemon's directory (its data, socket and log).
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// Starts (or starts again) the daemon on the same data, and waits until it answers.
    pub fn run(&mut self) {
        let path = |name: &str| self.dir.join(name).display().to_string();
        let pool = format!("base={},size=24", self.network.pool);
        let child = Command::new("dockerd")
            .args(["--config-file", &path("daemon.json")])
            .args(["--host", &self.url()])
            .args(["--data-root", &path("data")])
            .args(["--exec-root", &path("exec")])
            .args(["--pidfile", &path("docker.pid")])
            .args(["--bridge", self.network.bridge])
            .args(["--iptables=false", "--ip-masq=false"])
            .args(["--storage-driver", "vfs", "--live-restore"])
            .args(["--default-address-pool", &pool])
            // Last, so that they can also undo a default (`--live-restore=false`).
            .args(&self.listen)
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

    /// The daemon's Unix socket, as `DOCKER_HOST` writes it.
    pub fn url(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// `docker -H <its socket> ARGS`.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(self.url())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the docker command runs")
    }

    /// [`SecondDaemon::docker`], its standard output trimmed; a panic unless it succeeds.
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
        let _ = ip(&["link", "del", self.network.bridge]);
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
