//! A PostgreSQL server of the test's own, for tests that stop and start it or configure it
//! (TLS): initdb in a temporary directory, a free port of 127.0.0.1, stopped and deleted on
//! drop. As root the server runs as the `postgres` user, as `scripts/with-postgres.sh` does.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{SKIP_POSTGRES, Scratch};

/// A running (or stopped) server of the test's own.
pub struct PgServer {
    /// Its directory: `data/` and the log.
    pub dir: Scratch,
    bindir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    running: bool,
}

fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut candidates = vec![PathBuf::from("/usr/lib/postgresql/15/bin")];
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .unwrap_or_else(|| {
            panic!(
                "this test starts a PostgreSQL server of its own and finds no initdb/pg_ctl: \
                 install postgresql-15 (apt-get install postgresql-15) or set PG_BINDIR. To skip \
                 the tests that need PostgreSQL, set {SKIP_POSTGRES}=1."
            )
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgServer {
    /// A new server, initialised with `trust` authentication for local connections and
    /// `configure` run on its data directory before the first start (to add `ssl = on`,
    /// certificates, a `pg_hba.conf`); `None` when the PostgreSQL tests are skipped.
    pub fn start(configure: impl FnOnce(&Path)) -> Option<Self> {
        if std::env::var(SKIP_POSTGRES).as_deref() == Ok("1") {
            eprintln!("skipped: {SKIP_POSTGRES}=1, this test needs PostgreSQL");
            return None;
        }
        let dir = Scratch::new();
        let bindir = bindir();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            dir,
            bindir,
            port,
            running: false,
        };
        server.chown();
        let out = server
            .as_server_user(&server.bindir.join("initdb"))
            .arg("-D")
            .arg(server.data())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        configure(&server.data());
        server.chown();
        server.resume();
        Some(server)
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path.join("data")
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` with `params` (`?…` or empty).
    pub fn url(&self, params: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres{params}",
            self.port
        )
    }

    fn chown(&self) {
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.dir.path)
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of the server's directory failed");
        }
    }

    fn as_server_user(&self, program: &Path) -> Command {
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        self.as_server_user(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("pg_ctl runs")
    }

    /// Starts the server (again) on its port.
    pub fn resume(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path.display()
        );
        let log = self.dir.path.join("server.log");
        let out = self.pg_ctl(&[
            "-l",
            log.to_str().expect("UTF-8 path"),
            "-w",
            "-t",
            "60",
            "-o",
            &options,
            "start",
        ]);
        assert!(
            out.status.success(),
            "the test's PostgreSQL did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
    }

    /// Stops the server at once (as a crash would: sessions are cut).
    pub fn stop(&mut self) {
        let out = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        assert!(
            out.status.success(),
            "the test's PostgreSQL did not stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        }
    }
}
