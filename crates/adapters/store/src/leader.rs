//! The single-active-replica lock: [`PgLeaderLock`] (a PostgreSQL advisory lock) and
//! [`FileLeaderLock`] (an exclusive lock on a file beside a SQLite database), and the
//! [`Fence`] through which a fenced [`crate::Store`] makes its writes.
//!
//! Fencing is what makes the lock a guarantee rather than a hint: a store handle fenced by a
//! lock ([`crate::Store::fenced`]) commits a write only while the lock is held, checked in the
//! same critical section as the write itself, so a replica that lost the lock cannot commit
//! even a write that was already in flight.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use galaxy_runtime_ports::{LeaderLock, PortError, PortResult};
use tokio::sync::Mutex;

use crate::config::{Backend, StoreConfig};

/// The state a fenced store shares with its leader lock.
#[derive(Clone)]
pub(crate) enum Fence {
    /// PostgreSQL: the lock's own session, on which every fenced write is made. The server
    /// holds a session advisory lock until the session ends and a session that ended cannot
    /// commit, so a write that commits there was made by the leader.
    #[cfg(feature = "postgres")]
    Session(Arc<pg::Session>),
    /// SQLite: the open lock file. A fenced write holds this mutex from its check to its
    /// commit, so the lock cannot be released (by this process, the only one that can) in
    /// between.
    File(Arc<Mutex<Option<File>>>),
}

/// The error of a fenced write made without the lock.
pub(crate) fn not_leader(what: &str) -> PortError {
    PortError::fenced(format!(
        "{what}: this replica does not hold the leader lock; the write is refused"
    ))
}

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

    /// What a store fenced by this lock checks at every write.
    pub(crate) fn fence(&self) -> Fence {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(lock) => Fence::Session(Arc::clone(&lock.session)),
            Self::File(lock) => Fence::File(Arc::clone(&lock.held)),
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
pub(crate) mod pg {
    use diesel::QueryableByName;
    use diesel::sql_types::{BigInt, Bool, Integer};
    use diesel_async::{AsyncPgConnection, RunQueryDsl};

    use super::*;
    use crate::connect::establish_pg_session;
    use crate::error::from_diesel;
    use crate::migrate::advisory_key;

    /// The dedicated connection of a [`PgLeaderLock`], present exactly while the lock is held;
    /// fenced writes are made on it.
    pub(crate) type Session = Mutex<Option<AsyncPgConnection>>;

    /// A session-level PostgreSQL advisory lock (`pg_try_advisory_lock`), held on a connection
    /// of its own, outside the store's pool, for as long as this process leads.
    ///
    /// The server releases a session lock when the session ends, so a replica that dies or
    /// loses its connection loses the lock, and another one can take it. [`LeaderLock::is_held`]
    /// asks the server whether this session still holds it, so a lost connection reads as
    /// "not held" at the next check, and the reconciler stops applying.
    ///
    /// The session is set up to notice a dead peer within seconds on both sides: TCP
    /// keepalives and a user timeout on the client's socket, `tcp_keepalives_*` on the server's,
    /// so that a leader cut off by the network loses the lock (and a standby can take it) in
    /// about fifteen seconds rather than the system's default of two hours. It also turns off
    /// `idle_session_timeout` for itself, so that a server-wide idle timeout does not end the
    /// leadership of a replica between two passes.
    ///
    /// Session locks need a real session: through PgBouncer in transaction mode consecutive
    /// statements may run on different server sessions, and the lock means nothing. When
    /// acquiring, the lock checks that two statements run on the same server process and
    /// refuses otherwise ([`PortError::Invalid`]); a pooler that happens to keep the same
    /// server session for both cannot be told apart, so point the reconciler at PostgreSQL
    /// directly or at a session-mode pool.
    ///
    /// The key is derived from the schema (see [`PgLeaderLock::key`]), so that replicas sharing
    /// one database and schema contend, and stores in other schemas do not.
    pub struct PgLeaderLock {
        config: StoreConfig,
        key: i64,
        pub(super) session: Arc<Session>,
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

    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = Integer)]
        pid: i32,
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
                session: Arc::new(Mutex::new(None)),
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

        async fn backend_pid(&self, conn: &mut AsyncPgConnection) -> PortResult<i32> {
            let timeout = self.config.query_timeout;
            let query = diesel::sql_query("SELECT pg_backend_pid() AS pid");
            match tokio::time::timeout(timeout, query.get_result::<Pid>(conn)).await {
                Ok(Ok(row)) => Ok(row.pid),
                Ok(Err(e)) => Err(from_diesel("leader lock: pg_backend_pid()", e, timeout)),
                Err(_) => Err(PortError::timeout("leader lock: pg_backend_pid()", timeout)),
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

        /// Refuses a connection whose statements do not all run on one server session (a
        /// pooler in transaction mode), where a session lock would mean nothing.
        async fn check_one_session(&self, conn: &mut AsyncPgConnection) -> PortResult<()> {
            let first = self.backend_pid(conn).await?;
            let second = self.backend_pid(conn).await?;
            if first == second {
                return Ok(());
            }
            Err(PortError::invalid(format!(
                "leader lock on {}: two statements ran on two server sessions (pid {first}, \
                 then {second}): the connection goes through a pooler in transaction mode \
                 (PgBouncer?), where session advisory locks do not work; connect the \
                 reconciler to PostgreSQL directly or through a session-mode pool",
                self.config.redacted_url()
            )))
        }
    }

    #[async_trait]
    impl LeaderLock for PgLeaderLock {
        async fn try_acquire(&self) -> PortResult<bool> {
            let mut held = self.session.lock().await;
            if let Some(conn) = held.as_mut() {
                match self.still_held(conn).await {
                    Ok(true) => return Ok(true),
                    Ok(false) | Err(_) => {
                        log::warn!("leader lock: the lock was lost with its connection");
                        *held = None;
                    }
                }
            }
            let mut conn = establish_pg_session(&self.config).await?;
            let acquired = self
                .ask(&mut conn, "SELECT pg_try_advisory_lock($1) AS answer")
                .await?;
            if acquired {
                // The session ends with `conn` if the check fails, releasing the lock.
                self.check_one_session(&mut conn).await?;
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
            let mut held = self.session.lock().await;
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
            let mut held = self.session.lock().await;
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
    held: Arc<Mutex<Option<File>>>,
}

impl FileLeaderLock {
    /// A lock on the file at `path` (created when first acquired).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            held: Arc::new(Mutex::new(None)),
        }
    }

    /// The locked file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl LeaderLock for FileLeaderLock {
    async fn try_acquire(&self) -> PortResult<bool> {
        let mut held = self.held.lock().await;
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
        Ok(self.held.lock().await.is_some())
    }

    async fn release(&self) -> PortResult<()> {
        // Closing the handle releases the lock; waiting for the mutex first lets a fenced write
        // in flight commit before.
        drop(self.held.lock().await.take());
        Ok(())
    }
}
