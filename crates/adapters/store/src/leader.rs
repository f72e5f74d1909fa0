//! The single-active-replica lock: [`PgLeaderLock`] (a PostgreSQL advisory lock) and
//! [`FileLeaderLock`] (an exclusive lock on a file beside a SQLite database).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use galaxy_runtime_ports::{LeaderLock, PortError, PortResult};

use crate::config::{Backend, StoreConfig};

/// The leader lock that goes with a store's database (see [`crate::Store::leader_lock`]).
#[derive(Debug)]
pub enum StoreLeaderLock {
    /// A session-level advisory lock on PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(Box<PgLeaderLock>),
    /// An exclusive lock on a file beside the SQLite database.
    File(FileLeaderLock),
}

impl StoreLeaderLock {
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub(crate) fn for_config(config: &StoreConfig, backend: &Backend) -> Self {
        match backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => Self::Postgres(Box::new(PgLeaderLock::new(config))),
            #[cfg(not(feature = "postgres"))]
            Backend::Postgres => Self::File(FileLeaderLock::new("galaxy-runtime.leader")),
            Backend::Sqlite(path) => {
                let mut name = path.clone().into_os_string();
                name.push(".leader");
                Self::File(FileLeaderLock::new(PathBuf::from(name)))
            }
        }
    }

    fn inner(&self) -> &dyn LeaderLock {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(lock) => lock.as_ref(),
            Self::File(lock) => lock,
        }
    }
}

#[async_trait]
impl LeaderLock for StoreLeaderLock {
    async fn try_acquire(&self) -> PortResult<bool> {
        self.inner().try_acquire().await
    }

    async fn is_held(&self) -> PortResult<bool> {
        self.inner().is_held().await
    }

    async fn release(&self) -> PortResult<()> {
        self.inner().release().await
    }
}

#[cfg(feature = "postgres")]
pub use pg::PgLeaderLock;

#[cfg(feature = "postgres")]
mod pg {
    use diesel::QueryableByName;
    use diesel::sql_types::{BigInt, Bool};
    use diesel_async::{AsyncPgConnection, RunQueryDsl};
    use tokio::sync::Mutex;

    use super::*;
    use crate::connect::establish_pg;
    use crate::error::from_diesel;
    use crate::migrate::advisory_key;

    /// A session-level PostgreSQL advisory lock (`pg_try_advisory_lock`), held on a connection
    /// of its own, outside the store's pool, for as long as this process leads.
    ///
    /// The server releases a session lock when the session ends, so a replica that dies or
    /// loses its connection loses the lock, and another one can take it. [`LeaderLock::is_held`]
    /// asks the server whether this session still holds it, so a lost connection reads as
    /// "not held" at the next check, and the reconciler stops applying.
    ///
    /// The key is derived from the schema (see [`PgLeaderLock::key`]), so that replicas sharing
    /// one database and schema contend, and stores in other schemas do not.
    pub struct PgLeaderLock {
        config: StoreConfig,
        key: i64,
        /// The dedicated connection, present exactly while the lock is held.
        held: Mutex<Option<AsyncPgConnection>>,
    }

    impl std::fmt::Debug for PgLeaderLock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("PgLeaderLock")
                .field("target", &self.config.redacted_url())
                .field("key", &self.key)
                .finish_non_exhaustive()
        }
    }

    #[derive(QueryableByName)]
    struct Answer {
        #[diesel(sql_type = Bool)]
        answer: bool,
    }

    impl PgLeaderLock {
        /// The lock of the replicas that use `config`'s database and schema.
        pub fn new(config: &StoreConfig) -> Self {
            let key = Self::key(config.schema.as_deref());
            Self::with_key(config, key)
        }

        /// A lock with an explicit advisory-lock key, for hosts that allocate their own keys.
        pub fn with_key(config: &StoreConfig, key: i64) -> Self {
            Self {
                config: config.clone(),
                key,
                held: Mutex::new(None),
            }
        }

        /// The default key of a schema (`None` for the server's default schema): a stable
        /// hash of `galaxy-runtime:leader:<schema>`.
        pub fn key(schema: Option<&str>) -> i64 {
            advisory_key(&format!("galaxy-runtime:leader:{}", schema.unwrap_or("")))
        }

        async fn ask(&self, conn: &mut AsyncPgConnection, sql: &'static str) -> PortResult<bool> {
            let timeout = self.config.query_timeout;
            let query = diesel::sql_query(sql).bind::<BigInt, _>(self.key);
            match tokio::time::timeout(timeout, query.get_result::<Answer>(conn)).await {
                Ok(Ok(row)) => Ok(row.answer),
                Ok(Err(e)) => Err(from_diesel(&format!("leader lock: {sql}"), e, timeout)),
                Err(_) => Err(PortError::timeout(format!("leader lock: {sql}"), timeout)),
            }
        }

        /// Whether the session of `conn` still holds the lock: the connection answers and the
        /// server lists the lock as granted to it.
        async fn still_held(&self, conn: &mut AsyncPgConnection) -> PortResult<bool> {
            // A bigint advisory key is listed as classid = its high 32 bits, objid = its low
            // 32 bits, objsubid = 1; the key is non-negative, so the arithmetic is exact.
            self.ask(
                conn,
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND granted AND objsubid = 1 \
                 AND classid::bigint * 4294967296 + objid::bigint = $1) AS answer",
            )
            .await
        }
    }

    #[async_trait]
    impl LeaderLock for PgLeaderLock {
        async fn try_acquire(&self) -> PortResult<bool> {
            let mut held = self.held.lock().await;
            if let Some(conn) = held.as_mut() {
                match self.still_held(conn).await {
                    Ok(true) => return Ok(true),
                    Ok(false) | Err(_) => {
                        log::warn!("leader lock: the lock was lost with its connection");
                        *held = None;
                    }
                }
            }
            let mut conn = establish_pg(&self.config).await?;
            let acquired = self
                .ask(&mut conn, "SELECT pg_try_advisory_lock($1) AS answer")
                .await?;
            if acquired {
                log::info!(
                    "leader lock: acquired advisory lock {} on {}",
                    self.key,
                    self.config.redacted_url()
                );
                *held = Some(conn);
            }
            // Otherwise the connection is dropped here: a follower holds no session open.
            Ok(acquired)
        }

        async fn is_held(&self) -> PortResult<bool> {
            let mut held = self.held.lock().await;
            let Some(conn) = held.as_mut() else {
                return Ok(false);
            };
            match self.still_held(conn).await {
                Ok(true) => Ok(true),
                Ok(false) | Err(_) => {
                    // A lost or unanswering connection means another replica may lead by now.
                    log::warn!("leader lock: the lock was lost with its connection");
                    *held = None;
                    Ok(false)
                }
            }
        }

        async fn release(&self) -> PortResult<()> {
            let mut held = self.held.lock().await;
            if let Some(mut conn) = held.take() {
                // Unlock explicitly so that another replica can take the lock at once; if this
                // fails, closing the session below releases it all the same.
                if let Err(error) = self
                    .ask(&mut conn, "SELECT pg_advisory_unlock($1) AS answer")
                    .await
                {
                    log::warn!("leader lock: unlocking failed ({error}); closing the session");
                }
                log::info!("leader lock: released advisory lock {}", self.key);
            }
            Ok(())
        }
    }
}

/// An exclusive lock on a file (`<database>.leader` beside a SQLite database), held through an
/// open file handle for as long as this process leads.
///
/// SQLite serves one host, so this is all a single-active-replica lock needs there: a second
/// process (or a second lock in the same process) on the same database does not get it while
/// the first holds it, and the operating system releases it when the holder exits.
#[derive(Debug)]
pub struct FileLeaderLock {
    path: PathBuf,
    held: std::sync::Mutex<Option<File>>,
}

impl FileLeaderLock {
    /// A lock on the file at `path` (created when first acquired).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            held: std::sync::Mutex::new(None),
        }
    }

    /// The locked file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<File>> {
        // The guarded value is a file handle; a panic elsewhere cannot leave it half-written.
        self.held
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[async_trait]
impl LeaderLock for FileLeaderLock {
    async fn try_acquire(&self) -> PortResult<bool> {
        let mut held = self.state();
        if held.is_some() {
            return Ok(true);
        }
        let unavailable = |e: std::io::Error| {
            PortError::unavailable(format!("leader lock file {}", self.path.display()), e)
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(unavailable)?;
        match file.try_lock() {
            Ok(()) => {
                *held = Some(file);
                Ok(true)
            }
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(unavailable(e)),
        }
    }

    async fn is_held(&self) -> PortResult<bool> {
        Ok(self.state().is_some())
    }

    async fn release(&self) -> PortResult<()> {
        // Closing the handle releases the lock.
        drop(self.state().take());
        Ok(())
    }
}
