//! Fixtures shared by the store's integration tests: a SQLite file or a PostgreSQL schema of
//! its own for every test, so that tests run in parallel and leave nothing behind. Each backend's
//! fixtures are built with its feature, so that a build with one backend tests that one.

#![allow(dead_code)] // Each test binary uses part of the fixtures.

use std::path::{Path, PathBuf};

#[cfg(feature = "postgres")]
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use galaxy_runtime_model::GameId;
use galaxy_runtime_store::{Store, StoreConfig};

#[cfg(feature = "postgres")]
/// Where the PostgreSQL tests connect, or `None` (after saying so) when the runner asked to
/// skip them. Without `DATABASE_URL` and without the skip variable, the test fails saying how
/// to start a server.
pub fn postgres_url() -> Option<String> {
    if std::env::var("GALAXY_RUNTIME_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("skipped: GALAXY_RUNTIME_SKIP_POSTGRES=1, this test needs PostgreSQL");
        return None;
    }
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!(
            "DATABASE_URL is not set. The PostgreSQL tests need a server: run them as \
             `scripts/with-postgres.sh cargo test -p galaxy-runtime-store` (it starts a \
             throwaway PostgreSQL and sets DATABASE_URL), point DATABASE_URL at a server whose \
             database may be written to, or set GALAXY_RUNTIME_SKIP_POSTGRES=1 to skip them"
        ),
    }
}

/// A fresh random name usable as an identifier.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", GameId::new_random().as_uuid().simple())
}

#[cfg(feature = "postgres")]
/// A PostgreSQL schema of one test, dropped (with everything in it) when this value is.
pub struct PgSchema {
    /// The server's URL.
    pub url: String,
    /// The schema's name.
    pub name: String,
}

#[cfg(feature = "postgres")]
impl PgSchema {
    /// A new schema name on the server of `DATABASE_URL` (the store creates the schema when it
    /// connects), or `None` when the PostgreSQL tests are skipped.
    pub fn new() -> Option<Self> {
        let url = postgres_url()?;
        Some(Self {
            url,
            name: unique_name("test"),
        })
    }

    /// A store configuration on this schema.
    pub fn config(&self) -> StoreConfig {
        StoreConfig {
            schema: Some(self.name.clone()),
            ..StoreConfig::new(self.url.clone())
        }
    }

    /// A connected (and migrated) store on this schema.
    pub async fn store(&self) -> Store {
        Store::connect(&self.config())
            .await
            .unwrap_or_else(|e| panic!("connecting to PostgreSQL: {e}"))
    }

    /// A raw connection whose search path is this schema, for statements the store never makes.
    pub async fn raw(&self) -> AsyncPgConnection {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to PostgreSQL: {e}"));
        conn.batch_execute(&format!("SET search_path TO \"{}\"", self.name))
            .await
            .unwrap_or_else(|e| panic!("setting the search path: {e}"));
        conn
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own
        // with a small runtime does the cleanup. A failure only leaves a schema behind.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = AsyncPgConnection::establish(&url).await.ok()?;
                conn.batch_execute(&sql).await.ok()
            })
        });
        let _ = cleanup.join();
    }
}

/// A temporary directory, deleted with everything in it when this value is dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(unique_name("galaxy-runtime-store-test"));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(feature = "sqlite")]
/// A SQLite database file of one test.
pub struct SqliteFile {
    pub dir: TempDir,
    pub path: PathBuf,
}

#[cfg(feature = "sqlite")]
impl SqliteFile {
    pub fn new() -> Self {
        let dir = TempDir::new();
        let path = dir.path().join("runtime.db");
        Self { dir, path }
    }

    pub fn config(&self) -> StoreConfig {
        StoreConfig::new(format!("sqlite://{}", self.path.display()))
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.config())
            .await
            .unwrap_or_else(|e| panic!("opening SQLite: {e}"))
    }

    /// A raw synchronous connection, for statements the store never makes.
    pub fn raw(&self) -> diesel::SqliteConnection {
        use diesel::Connection;
        let path = self.path.to_str().expect("temporary paths are UTF-8");
        diesel::SqliteConnection::establish(path).unwrap_or_else(|e| panic!("opening {path}: {e}"))
    }
}

#[cfg(feature = "postgres")]
/// A PostgreSQL server of one test, on its own data directory and port, that the test may stop
/// and start again (for fault tests). Deleted when dropped.
pub struct TestServer {
    dir: PathBuf,
    bindir: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

#[cfg(feature = "postgres")]
impl TestServer {
    /// Creates and starts a server, or `None` when the PostgreSQL tests are skipped. Needs the
    /// server binaries (initdb, pg_ctl), not `DATABASE_URL`.
    pub fn start() -> Option<Self> {
        if std::env::var("GALAXY_RUNTIME_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
            eprintln!("skipped: GALAXY_RUNTIME_SKIP_POSTGRES=1, this test needs PostgreSQL");
            return None;
        }
        let bindir = Self::bindir().unwrap_or_else(|| {
            panic!(
                "this test starts and stops a PostgreSQL server of its own and needs the server \
                 binaries (initdb, pg_ctl): install postgresql-15, set PG_BINDIR to their \
                 directory, or set GALAXY_RUNTIME_SKIP_POSTGRES=1 to skip it"
            )
        });
        use std::os::unix::fs::MetadataExt;
        let as_postgres_user = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let dir = std::env::temp_dir().join(unique_name("galaxy-runtime-pg-test"));
        std::fs::create_dir_all(&dir).expect("creating the server directory");
        let mut server = Self {
            dir,
            bindir,
            port: 0,
            as_postgres_user,
        };
        if as_postgres_user {
            server.run(
                "chown",
                &["postgres:postgres", server.dir.to_str().unwrap()],
                false,
            );
        }
        let data = server.data();
        server.run_pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        for _ in 0..5 {
            server.port = free_port();
            if server.try_start() {
                return Some(server);
            }
        }
        panic!(
            "the test PostgreSQL server did not start; its log:\n{}",
            std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default()
        );
    }

    fn bindir() -> Option<PathBuf> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Ok(dir) = std::env::var("PG_BINDIR") {
            candidates.push(dir.into());
        }
        candidates.push("/usr/lib/postgresql/15/bin".into());
        if let Ok(out) = std::process::Command::new("pg_config")
            .arg("--bindir")
            .output()
        {
            candidates.push(String::from_utf8_lossy(&out.stdout).trim().into());
        }
        candidates
            .into_iter()
            .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str], check: bool) -> bool {
        let status = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        if check && !status.success() {
            panic!("{program} {args:?} failed: {status}");
        }
        status.success()
    }

    fn pg_command(&self, tool: &str, args: &[&str]) -> (String, Vec<String>) {
        let tool = self.bindir.join(tool).display().to_string();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if self.as_postgres_user {
            // PostgreSQL refuses to run as root.
            let mut all = vec![
                "-u".to_owned(),
                "postgres".to_owned(),
                "--".to_owned(),
                tool,
            ];
            all.extend(args);
            ("runuser".to_owned(), all)
        } else {
            (tool, args)
        }
    }

    fn run_pg(&self, tool: &str, args: &[&str]) -> bool {
        let (program, args) = self.pg_command(tool, args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&program, &args, false)
    }

    fn try_start(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run_pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (`immediate`: like a crash, connections cut).
    pub fn stop(&self) {
        assert!(
            self.run_pg(
                "pg_ctl",
                &["-D", &self.data(), "-m", "immediate", "-w", "stop"]
            ),
            "stopping the test server failed"
        );
    }

    /// Starts the stopped server again, on the same port and data.
    pub fn restart(&self) {
        assert!(self.try_start(), "restarting the test server failed");
    }
}

#[cfg(feature = "postgres")]
impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.run_pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a local port")
}
