//! [`Store`]: the handle on one database, its pool and, when fenced, its leader lock. The port
//! implementations are in `records.rs` (`StorePort`) and `catalog.rs` (`GameCatalog`).

use std::collections::BTreeMap;
use std::sync::Arc;
#[cfg(feature = "postgres")]
use std::time::Duration;

use diesel::result::Error as DieselError;
use diesel::sql_types::Integer;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use futures_util::future::BoxFuture;
use galaxy_runtime_model::{GameId, RuntimeRecord, Timestamp};
use galaxy_runtime_ports::{Expected, PortError, PortResult};

use crate::config::{Backend, StoreConfig};
use crate::connect::{DbPool, from_pool};
use crate::error::{connection_lost, from_diesel};
use crate::leader::{Fence, StoreLeaderLock};
use crate::rows::{RecordRow, SnapshotTimeRow, StoredRecord};
use crate::schema::{runtime_records, runtime_snapshots};
use crate::types::{DbTime, DbUuid};

/// How much longer than `query_timeout` a fenced write on the leader's session may take before
/// the client gives the session up: the server's `statement_timeout` should end it first.
#[cfg(feature = "postgres")]
pub(crate) const FENCED_MARGIN: Duration = Duration::from_secs(2);

/// Reading every record, the one read whose cost grows with the fleet.
trait LoadAll {
    /// Every row of `runtime_records`, sorted by game id.
    fn load_all_records(&mut self) -> BoxFuture<'_, diesel::QueryResult<Vec<RecordRow>>>;
}

#[cfg(feature = "postgres")]
impl LoadAll for diesel_async::AsyncPgConnection {
    fn load_all_records(&mut self) -> BoxFuture<'_, diesel::QueryResult<Vec<RecordRow>>> {
        Box::pin(
            runtime_records::table
                .select(RecordRow::as_select())
                .order(runtime_records::game_id)
                .load(self),
        )
    }
}

/// On SQLite the rows are read by the synchronous connection on its blocking thread and
/// deserialised there: the async wrapper's generic path copies every value of every row into an
/// owned row first, which made listing 100 000 records take half a second instead of a tenth.
#[cfg(feature = "sqlite")]
impl LoadAll for crate::connect::SqliteConn {
    fn load_all_records(&mut self) -> BoxFuture<'_, diesel::QueryResult<Vec<RecordRow>>> {
        self.spawn_blocking(|conn| {
            diesel::RunQueryDsl::load(
                runtime_records::table
                    .select(RecordRow::as_select())
                    .order(runtime_records::game_id),
                conn,
            )
        })
    }
}

/// The store of galaxy-runtime on PostgreSQL or SQLite:
/// [`StorePort`](galaxy_runtime_ports::StorePort) and
/// [`GameCatalog`](galaxy_runtime_ports::GameCatalog).
///
/// Cheap to clone: clones share one connection pool. A handle made by [`Store::fenced`] shares
/// the pool too, and makes its writes only while its leader lock is held.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Set on a fenced handle: the leadership every write checks.
    fence: Option<Fence>,
}

struct Inner {
    pool: DbPool,
    config: StoreConfig,
    backend: Backend,
    /// The URL without its password, for messages.
    target: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend.name())
            .field("config", &self.inner.config)
            .field("fenced", &self.fence.is_some())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to the database of `config.url`, applies the pending migrations and checks that
    /// the database is not at a newer schema than this build knows
    /// ([`connect_with`](Self::connect_with) and [`SchemaPolicy::Migrate`]).
    ///
    /// Errors: [`PortError::Invalid`] for a bad configuration or a newer schema;
    /// [`PortError::Unavailable`] or [`PortError::Timeout`] when the database cannot be reached.
    pub async fn connect(config: &StoreConfig) -> PortResult<Self> {
        Self::connect_with(config, SchemaPolicy::Migrate).await
    }

    /// Applies the pending migrations to the database of `config` (refusing one migrated by a
    /// newer build) and returns the versions applied now; none when it was up to date.
    pub async fn migrate(config: &StoreConfig) -> PortResult<Vec<String>> {
        config
            .validate()
            .map_err(|e| PortError::invalid(format!("store configuration: {e}")))?;
        let backend = config.backend().map_err(PortError::invalid)?;
        let target = config.redacted_url();
        let applied = match &backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => crate::migrate::migrate_postgres(config).await?,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(path) => {
                crate::migrate::migrate_sqlite(sqlite_path(path, &target)?, config).await?
            }
            #[allow(unreachable_patterns)]
            other => return Err(unsupported(other, &target)),
        };
        log_migrations(&target, &applied);
        Ok(applied)
    }

    /// Checks, changing nothing, that the database of `config` has exactly the schema this
    /// build knows: [`PortError::Invalid`] saying to migrate when it has none or an older one
    /// (or, for SQLite, when the file does not exist), or saying so when it is newer.
    pub async fn check_schema(config: &StoreConfig) -> PortResult<()> {
        config
            .validate()
            .map_err(|e| PortError::invalid(format!("store configuration: {e}")))?;
        let backend = config.backend().map_err(PortError::invalid)?;
        let target = config.redacted_url();
        match &backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => crate::migrate::check_postgres(config).await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(path) => {
                crate::migrate::check_sqlite(sqlite_path(path, &target)?, config).await
            }
            #[allow(unreachable_patterns)]
            other => Err(unsupported(other, &target)),
        }
    }

    /// Connects to the database of `config.url`, first migrating it or checking its schema as
    /// `policy` says.
    pub async fn connect_with(config: &StoreConfig, policy: SchemaPolicy) -> PortResult<Self> {
        match policy {
            SchemaPolicy::Migrate => {
                Self::migrate(config).await?;
            }
            SchemaPolicy::Require => Self::check_schema(config).await?,
        }
        let backend = config.backend().map_err(PortError::invalid)?;
        let target = config.redacted_url();
        let pool = match &backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => DbPool::Postgres(crate::connect::pg_pool(config)?),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(path) => DbPool::Sqlite(crate::connect::sqlite_pool(
                sqlite_path(path, &target)?,
                config,
            )?),
            #[allow(unreachable_patterns)]
            other => return Err(unsupported(other, &target)),
        };
        log::info!("store: connected to {target}");
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                config: config.clone(),
                backend,
                target,
            }),
            fence: None,
        })
    }

    /// Which database this store uses.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The configuration it was connected with (its `Debug` hides the password).
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The lock that makes one replica the only one applying changes with this database: a
    /// session-level advisory lock on a dedicated connection for PostgreSQL, an exclusive lock
    /// on a file beside the database for SQLite. See [`StoreLeaderLock`].
    pub fn leader_lock(&self) -> StoreLeaderLock {
        StoreLeaderLock::for_config(&self.inner.config, &self.inner.backend)
    }

    /// A handle on the same database whose writes are fenced by `lock`: every write of
    /// [`StorePort`](galaxy_runtime_ports::StorePort) and
    /// [`GameCatalog`](galaxy_runtime_ports::GameCatalog) commits only while `lock` is held,
    /// and is refused with [`PortError::Fenced`] otherwise — also a write that was already in
    /// flight when the lock was lost. Reads are not fenced. Give this handle to the reconciler
    /// together with `lock`; the host's own jobs keep the unfenced one.
    ///
    /// On PostgreSQL the writes are made on the lock's own session (one connection, so they
    /// are serialised); on SQLite on pooled connections while the lock file is held.
    pub fn fenced(&self, lock: &StoreLeaderLock) -> Store {
        Store {
            inner: Arc::clone(&self.inner),
            fence: Some(lock.fence()),
        }
    }

    /// Whether this handle's writes are fenced by a leader lock.
    pub fn is_fenced(&self) -> bool {
        self.fence.is_some()
    }

    pub(crate) fn pool(&self) -> &DbPool {
        &self.inner.pool
    }

    pub(crate) fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
    }

    /// Closes the pool: calls in flight finish, later calls fail as unavailable.
    pub fn close(&self) {
        self.inner.pool.close();
    }

    /// Checks that the database answers (for health checks).
    pub async fn ping(&self) -> PortResult<()> {
        with_conn!(self, "ping", |conn, _dialect, _Db| {
            diesel::select(diesel::dsl::sql::<Integer>("1"))
                .get_result::<i32>(conn)
                .await
                .map(|_| ())
                .map_err(self.db("ping"))
        })
    }

    /// Every record with what only the store keeps about it (last status message, creation
    /// and update times, version), sorted by game id: for status tables.
    pub async fn list_stored_records(&self) -> PortResult<Vec<StoredRecord>> {
        let rows = self.load_all_records("list_stored_records").await?;
        rows.into_iter().map(RecordRow::into_stored).collect()
    }

    /// When each game's latest snapshot was observed, without the snapshots themselves.
    pub async fn snapshot_times(&self) -> PortResult<BTreeMap<GameId, Timestamp>> {
        let op = "snapshot_times";
        let rows: Vec<SnapshotTimeRow> = with_conn!(self, op, |conn, _dialect, _Db| {
            runtime_snapshots::table
                .select(SnapshotTimeRow::as_select())
                .load(conn)
                .await
                .map_err(self.db(op))
        })?;
        rows.into_iter()
            .map(|row| {
                let game_id = row.game_id.game_id().map_err(|raw| {
                    PortError::invalid(format!(
                        "runtime_snapshots row with malformed game_id {raw:?}"
                    ))
                })?;
                match row.observed_at {
                    DbTime::Valid(at) => Ok((game_id, at)),
                    DbTime::Malformed(raw) => Err(PortError::invalid(format!(
                        "runtime_snapshots row of game {game_id}: malformed observed_at {raw:?}"
                    ))),
                }
            })
            .collect()
    }

    /// The error mapper of operation `op`.
    pub(crate) fn db<'a>(&'a self, op: &'a str) -> impl FnOnce(DieselError) -> PortError + 'a {
        move |e| from_diesel(op, e, self.inner.config.query_timeout)
    }

    /// Waits for a pooled connection, at most `connect_timeout`.
    pub(crate) async fn checkout<T>(
        &self,
        get: impl Future<Output = Result<T, diesel_async::pooled_connection::deadpool::PoolError>>,
    ) -> PortResult<T> {
        let config = &self.inner.config;
        match tokio::time::timeout(config.connect_timeout, get).await {
            Ok(Ok(object)) => Ok(object),
            Ok(Err(e)) => Err(from_pool(&self.inner.target, e, config.query_timeout)),
            Err(_) => Err(PortError::timeout(
                format!("getting a connection to {}", self.inner.target),
                config.connect_timeout,
            )),
        }
    }

    /// The result of a call bounded by `query_timeout`; `discard` drops the connection when
    /// it may be unusable (timed out mid-statement, or the server went away).
    pub(crate) fn finish<T>(
        &self,
        op: &str,
        outcome: Result<PortResult<T>, tokio::time::error::Elapsed>,
        discard: impl FnOnce(),
    ) -> PortResult<T> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if connection_lost(&error) {
                    discard();
                    log::warn!("store: {op} on {}: {error}", self.inner.target);
                }
                Err(error)
            }
            Err(_) => {
                discard();
                let error = PortError::timeout(op.to_owned(), self.inner.config.query_timeout);
                log::warn!("store: {op} on {}: {error}", self.inner.target);
                Err(error)
            }
        }
    }

    /// [`Store::finish`] for a write on the leader lock's session: a session that timed out or
    /// was lost is dropped — and the lock with it — and the write is refused as fenced (it did
    /// not commit, or committed while the session, hence the lock, was still there).
    #[cfg(feature = "postgres")]
    pub(crate) fn finish_fenced<T>(
        &self,
        op: &str,
        outcome: Result<PortResult<T>, tokio::time::error::Elapsed>,
        held: &mut Option<diesel_async::AsyncPgConnection>,
    ) -> PortResult<T> {
        let lost = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if !connection_lost(&error) => return Err(error),
            Ok(Err(error)) => error,
            Err(_) => PortError::timeout(
                op.to_owned(),
                self.inner.config.query_timeout + FENCED_MARGIN,
            ),
        };
        *held = None;
        log::warn!(
            "store: {op} on {}: the leader lock's session was lost ({lost}); this replica no \
             longer leads",
            self.inner.target
        );
        Err(PortError::fenced(format!(
            "{op}: the leader lock's session was lost during the write"
        ))
        .with_source(lost))
    }

    pub(crate) async fn load_all_records(&self, op: &str) -> PortResult<Vec<RecordRow>> {
        with_conn!(self, op, |conn, _dialect, _Db| {
            LoadAll::load_all_records(conn).await.map_err(self.db(op))
        })
    }

    pub(crate) async fn load_record_row(
        &self,
        op: &str,
        game_id: GameId,
    ) -> PortResult<Option<RecordRow>> {
        with_conn!(self, op, |conn, _dialect, _Db| {
            runtime_records::table
                .filter(runtime_records::game_id.eq(DbUuid::from(game_id)))
                .select(RecordRow::as_select())
                .get_result(conn)
                .await
                .optional()
                .map_err(self.db(op))
        })
    }

    /// Why a compare-and-set write of `game_id` matched no row: `NotFound` without a record,
    /// else a `Conflict` saying what the record holds now. `expected` is what the caller saw
    /// (`None`: no record at all).
    pub(crate) async fn explain_miss(
        &self,
        op: &str,
        game_id: GameId,
        expected: Option<&Expected>,
    ) -> PortError {
        let record = match self.load_record_row(op, game_id).await {
            Err(error) => return error,
            Ok(None) => return PortError::not_found(format!("runtime record {game_id}")),
            Ok(Some(row)) => match row.into_record() {
                Err(error) => return error,
                Ok(record) => record,
            },
        };
        PortError::conflict(miss_message(&record, expected))
    }
}

/// What a record that a compare-and-set write missed holds, against what the caller saw.
pub(crate) fn miss_message(record: &RuntimeRecord, expected: Option<&Expected>) -> String {
    match expected {
        None => Expected::unexpected_record(record),
        Some(expected) => expected.mismatch(record).unwrap_or_else(|| {
            if record.is_terminal() {
                format!("record is {}, a terminal status", record.status)
            } else {
                // The row matched when read again: it changed and changed back in between.
                "record changed during the write".to_owned()
            }
        }),
    }
}

/// What connecting does with the database's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPolicy {
    /// Apply the pending migrations (creating the schema, and a SQLite file, when missing).
    Migrate,
    /// Change nothing: refuse a database whose schema is missing, older or newer than this
    /// build's, saying to migrate it. For processes that must not need DDL rights, and for
    /// read-only commands.
    Require,
}

/// The UTF-8 path of a SQLite database.
#[cfg(feature = "sqlite")]
fn sqlite_path<'a>(path: &'a std::path::Path, target: &str) -> PortResult<&'a str> {
    path.to_str()
        .ok_or_else(|| PortError::invalid(format!("SQLite path of {target} is not valid UTF-8")))
}

/// The error for a backend this build was compiled without.
#[allow(dead_code)] // used only when a backend's feature is off
fn unsupported(backend: &Backend, target: &str) -> PortError {
    PortError::invalid(format!(
        "{target}: this build has no {} support (cargo feature `{}`)",
        backend.name(),
        backend.name()
    ))
}

fn log_migrations(target: &str, applied: &[String]) {
    if applied.is_empty() {
        log::debug!("store: schema of {target} is up to date");
    } else {
        log::info!(
            "store: applied migrations {} to {target}",
            applied.join(", ")
        );
    }
}
