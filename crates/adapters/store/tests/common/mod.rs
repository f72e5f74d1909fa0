//! Fixtures shared by the store's integration tests: a SQLite file or a PostgreSQL schema of
//! its own for every test, so that tests run in parallel and leave nothing behind.

#![allow(dead_code)] // Each test binary uses part of the fixtures.

use std::path::{Path, PathBuf};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use galaxy_runtime_model::GameId;
use galaxy_runtime_store::{Store, StoreConfig};

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

/// A PostgreSQL schema of one test, dropped (with everything in it) when this value is.
pub struct PgSchema {
    /// The server's URL.
    pub url: String,
    /// The schema's name.
    pub name: String,
}

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

/// A SQLite database file of one test.
pub struct SqliteFile {
    pub dir: TempDir,
    pub path: PathBuf,
}

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
