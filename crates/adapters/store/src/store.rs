//! [`Store`]: `StorePort` and `GameCatalog` on diesel-async.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use diesel::dsl::case_when;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Integer, Text};
use diesel::upsert::excluded;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use galaxy_runtime_model::{
    GameId, GameProjection, RuntimeRecord, RuntimeStatus, Snapshot, Timestamp,
};
use galaxy_runtime_ports::{
    AdoptInsert, AdoptUpdate, GameCatalog, PortError, PortResult, ProbeFailuresUpdate, Rebind,
    StatusChange, StorePort,
};

use crate::config::{Backend, StoreConfig};
use crate::connect::{DbPool, from_pool};
use crate::error::{connection_lost, from_diesel};
use crate::leader::StoreLeaderLock;
use crate::rows::{
    NewRecordRow, ProjectionRow, RecordRow, SnapshotRow, SnapshotTimeRow, StoredRecord,
    into_records,
};
use crate::schema::sql_types::{PortableJson, PortableTimestamp, PortableUuid};
use crate::schema::{game_projections, runtime_records, runtime_snapshots};
use crate::types::{DbTime, DbUuid};

/// The most rows one batch statement writes. 1 000 rows of 3 values stay far below both
/// backends' bind limits (65 535 for PostgreSQL, 32 766 for SQLite) while making each statement
/// large enough that the per-statement cost (a round trip, a parse) is amortised.
pub const BATCH_ROWS: usize = 1_000;

/// How many game ids one projection query takes on SQLite, whose `IN (…)` list is one bind per
/// id. PostgreSQL gets every id in one array bind (`= ANY($1)`), hence one query however many.
#[cfg(feature = "sqlite")]
const SQLITE_IDS_PER_QUERY: usize = 10_000;

/// The SQL dialect of a connection, for the few statements written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "sqlite")]
    Sqlite,
}

impl Dialect {
    /// The `n`th bind parameter (from 1): `$n` on PostgreSQL, `?n` on SQLite (numbered, so one
    /// bind can be used twice in both dialects).
    fn param(self, n: usize) -> String {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres => format!("${n}"),
            #[cfg(feature = "sqlite")]
            Self::Sqlite => format!("?{n}"),
        }
    }

    /// `(p, p, …), (p, p, …)` for `rows` rows of `columns` parameters, numbered from `first`.
    fn values(self, rows: usize, columns: usize, first: usize) -> String {
        let mut sql = String::with_capacity(rows * columns * 7);
        for row in 0..rows {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&self.param(first + row * columns + column));
            }
            sql.push(')');
        }
        sql
    }
}

/// Every column of `runtime_records`, for `RETURNING` in statements written as text.
const RECORD_COLUMNS: &str = "game_id, status, current_container_id, current_image_ref, \
     current_engine_version, engine_endpoint, docker_network, turn_schedule, probe_failures, \
     status_changed_at, status_message, created_at, updated_at, version";

/// The probe-failure batch: one `UPDATE … FROM` a `VALUES` list per batch.
///
/// The same text serves both backends (PostgreSQL ≥ 9.1 and SQLite ≥ 3.33 accept a `WITH` before
/// `UPDATE … FROM`; SQLite needs 3.35 for `RETURNING`, and the bundled one is 3.5x). On
/// PostgreSQL this is the usual `UPDATE … FROM (VALUES …)`: one statement, one round trip, one
/// plan. On SQLite the alternatives were a `CASE` per column (quadratic text, and the `WHERE`
/// must repeat the ids) or one `UPDATE` per row inside a transaction (cheap in SQLite, which has
/// no round trip, but still a statement step per row); the `VALUES` CTE keeps one statement per
/// batch there too, so both backends behave and are measured alike. The batch's columns are
/// named apart from the table's so the unqualified `RETURNING` list is unambiguous on both.
fn probe_failures_sql(dialect: Dialect, rows: usize) -> String {
    format!(
        "WITH batch (batch_game_id, batch_status, batch_failures) AS (VALUES {values}) \
         UPDATE runtime_records SET probe_failures = batch.batch_failures, \
         updated_at = {now}, version = runtime_records.version + 1 \
         FROM batch \
         WHERE runtime_records.game_id = batch.batch_game_id \
         AND runtime_records.status = batch.batch_status \
         RETURNING {RECORD_COLUMNS}",
        values = dialect.values(rows, 3, 2),
        now = dialect.param(1),
    )
}

/// The snapshot batch: one multi-row `INSERT … ON CONFLICT DO UPDATE` per batch (the same text
/// on both backends).
fn snapshots_sql(dialect: Dialect, rows: usize) -> String {
    format!(
        "INSERT INTO runtime_snapshots (game_id, state, observed_at) VALUES {values} \
         ON CONFLICT (game_id) DO UPDATE SET state = excluded.state, \
         observed_at = excluded.observed_at",
        values = dialect.values(rows, 3, 1),
    )
}

/// The items of a batch with one per key, the last one winning, in their original order.
///
/// PostgreSQL refuses an `INSERT … ON CONFLICT DO UPDATE` that touches a row twice, and an
/// `UPDATE … FROM` would pick one of the duplicates at random; the last write of a batch is the
/// one a caller means.
fn last_per_game<T>(items: &[T], game_id: impl Fn(&T) -> GameId) -> Vec<&T> {
    let mut seen = HashSet::with_capacity(items.len());
    let mut kept: Vec<&T> = items
        .iter()
        .rev()
        .filter(|item| seen.insert(game_id(item)))
        .collect();
    kept.reverse();
    kept
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend the store has,
/// `$dialect` to its [`Dialect`] and the type `$db` to its diesel backend. The body is compiled
/// once per backend, which is how one piece of diesel code serves both without
/// `MultiConnection` (that derive does not work with diesel-async 0.9).
///
/// Getting the connection is bounded by `connect_timeout`, the body by `query_timeout`; a
/// connection whose call timed out or lost the server is dropped rather than returned to the
/// pool.
macro_rules! with_conn {
    ($store:expr, $op:expr, |$conn:ident, $dialect:ident, $db:ident| $body:expr) => {{
        let store: &Store = $store;
        let op: &str = $op;
        match &store.inner.pool {
            #[cfg(feature = "postgres")]
            DbPool::Postgres(pool) => {
                #[allow(dead_code)]
                type $db = diesel::pg::Pg;
                #[allow(unused_variables)]
                let $dialect = Dialect::Postgres;
                let mut object = store.checkout(pool.get()).await?;
                let outcome = tokio::time::timeout(store.inner.config.query_timeout, async {
                    let $conn: &mut diesel_async::AsyncPgConnection = &mut object;
                    $body
                })
                .await;
                store.finish(op, outcome, move || {
                    drop(diesel_async::pooled_connection::deadpool::Object::take(
                        object,
                    ));
                })
            }
            #[cfg(feature = "sqlite")]
            DbPool::Sqlite(pool) => {
                #[allow(dead_code)]
                type $db = diesel::sqlite::Sqlite;
                #[allow(unused_variables)]
                let $dialect = Dialect::Sqlite;
                let mut object = store.checkout(pool.get()).await?;
                let outcome = tokio::time::timeout(store.inner.config.query_timeout, async {
                    let $conn: &mut crate::connect::SqliteConn = &mut object;
                    $body
                })
                .await;
                store.finish(op, outcome, move || {
                    drop(diesel_async::pooled_connection::deadpool::Object::take(
                        object,
                    ));
                })
            }
        }
    }};
}

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

/// The store of galaxy-runtime on PostgreSQL or SQLite: [`StorePort`] and [`GameCatalog`].
///
/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
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
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to the database of `config.url`, applies the pending migrations and checks that
    /// the database is not at a newer schema than this build knows.
    ///
    /// Errors: [`PortError::Invalid`] for a bad configuration or a newer schema;
    /// [`PortError::Unavailable`] or [`PortError::Timeout`] when the database cannot be reached.
    pub async fn connect(config: &StoreConfig) -> PortResult<Self> {
        config
            .validate()
            .map_err(|e| PortError::invalid(format!("store configuration: {e}")))?;
        let backend = config.backend().map_err(PortError::invalid)?;
        let target = config.redacted_url();
        let pool = match &backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let applied = crate::migrate::migrate_postgres(config).await?;
                log_migrations(&target, &applied);
                DbPool::Postgres(crate::connect::pg_pool(config)?)
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    PortError::invalid(format!("SQLite path of {target} is not valid UTF-8"))
                })?;
                let applied = crate::migrate::migrate_sqlite(path, config).await?;
                log_migrations(&target, &applied);
                DbPool::Sqlite(crate::connect::sqlite_pool(path, config)?)
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(PortError::invalid(format!(
                    "{target}: this build has no {} support (cargo feature `{}`)",
                    other.name(),
                    other.name()
                )));
            }
        };
        log::info!("store: connected to {target}");
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                config: config.clone(),
                backend,
                target,
            }),
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
    fn db<'a>(&'a self, op: &'a str) -> impl FnOnce(DieselError) -> PortError + 'a {
        move |e| from_diesel(op, e, self.inner.config.query_timeout)
    }

    /// Waits for a pooled connection, at most `connect_timeout`.
    async fn checkout<T>(
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
    fn finish<T>(
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

    async fn load_all_records(&self, op: &str) -> PortResult<Vec<RecordRow>> {
        with_conn!(self, op, |conn, _dialect, _Db| {
            LoadAll::load_all_records(conn).await.map_err(self.db(op))
        })
    }

    async fn load_record_row(&self, op: &str, game_id: GameId) -> PortResult<Option<RecordRow>> {
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

    /// Why a compare-and-set on `game_id` matched no row: `NotFound` without a record, else a
    /// `Conflict` saying what the record holds now.
    async fn explain_miss(
        &self,
        op: &str,
        game_id: GameId,
        expected: impl FnOnce(&RuntimeRecord) -> String,
    ) -> PortError {
        match self.load_record_row(op, game_id).await {
            Err(error) => error,
            Ok(None) => PortError::not_found(format!("runtime record {game_id}")),
            Ok(Some(row)) => match row.into_record() {
                Err(error) => error,
                Ok(record) => PortError::conflict(format!("{op}: {}", expected(&record))),
            },
        }
    }
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

#[async_trait]
impl StorePort for Store {
    async fn list_records(&self) -> PortResult<Vec<RuntimeRecord>> {
        into_records(self.load_all_records("list_records").await?)
    }

    async fn get_record(&self, game_id: GameId) -> PortResult<Option<RuntimeRecord>> {
        let op = format!("get_record of {game_id}");
        self.load_record_row(&op, game_id)
            .await?
            .map(RecordRow::into_record)
            .transpose()
    }

    async fn create_record(&self, record: RuntimeRecord) -> PortResult<RuntimeRecord> {
        let game_id = record.game_id;
        let op = format!("create_record of {game_id}");
        let row = NewRecordRow::new(record, "", Timestamp::now())?;
        let created = with_conn!(self, &op, |conn, _dialect, _Db| {
            diesel::insert_into(runtime_records::table)
                .values(&row)
                .on_conflict_do_nothing()
                .returning(RecordRow::as_returning())
                .get_result(conn)
                .await
                .optional()
                .map_err(self.db(&op))
        })?;
        match created {
            Some(row) => row.into_record(),
            None => Err(PortError::conflict(format!(
                "{op}: the game already has a runtime record"
            ))),
        }
    }

    async fn load_game_projections(&self, game_ids: &[GameId]) -> PortResult<Vec<GameProjection>> {
        if game_ids.is_empty() {
            return Ok(Vec::new());
        }
        let op = format!("load_game_projections of {} games", game_ids.len());
        let mut ids: Vec<GameId> = game_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let rows: Vec<ProjectionRow> = with_conn!(self, &op, |conn, dialect, _Db| {
            let per_query = match dialect {
                #[cfg(feature = "postgres")]
                Dialect::Postgres => ids.len(),
                #[cfg(feature = "sqlite")]
                Dialect::Sqlite => SQLITE_IDS_PER_QUERY,
            };
            let mut rows = Vec::new();
            for chunk in ids.chunks(per_query.max(1)) {
                let keys: Vec<DbUuid> = chunk.iter().copied().map(DbUuid::from).collect();
                let mut found: Vec<ProjectionRow> = game_projections::table
                    .filter(game_projections::game_id.eq_any(keys))
                    .select(ProjectionRow::as_select())
                    .load(conn)
                    .await
                    .map_err(self.db(&op))?;
                rows.append(&mut found);
            }
            Ok(rows)
        })?;
        rows.into_iter()
            .map(ProjectionRow::into_projection)
            .collect()
    }

    async fn transition_status(&self, change: StatusChange) -> PortResult<RuntimeRecord> {
        use runtime_records::dsl as r;

        let StatusChange {
            game_id,
            from,
            to,
            message,
            at,
        } = change;
        let op = format!("transition_status of {game_id} from {from} to {to}");
        if let Err(refused) = from.check_transition(to) {
            return Err(self
                .explain_miss(&op, game_id, |_| refused.to_string())
                .await);
        }
        // 0 resets the counter, 1 keeps it: one statement shape (one cached prepared
        // statement) for both cases.
        let keep_failures = i32::from(!(to == RuntimeStatus::Running || to.is_terminal()));
        let now = Timestamp::now();
        let updated = with_conn!(self, &op, |conn, _dialect, _Db| {
            diesel::update(
                r::runtime_records
                    .filter(r::game_id.eq(DbUuid::from(game_id)))
                    .filter(r::status.eq(from.as_str())),
            )
            .set((
                r::status.eq(to.as_str()),
                r::status_changed_at.eq(DbTime::from(at)),
                r::status_message.eq(&message),
                r::probe_failures.eq(r::probe_failures * keep_failures),
                r::updated_at.eq(DbTime::from(now)),
                r::version.eq(r::version + 1),
            ))
            .returning(RecordRow::as_returning())
            .get_result(conn)
            .await
            .optional()
            .map_err(self.db(&op))
        })?;
        match updated {
            Some(row) => row.into_record(),
            None => Err(self
                .explain_miss(&op, game_id, |record| {
                    format!("the record is {}, not {from}", record.status)
                })
                .await),
        }
    }

    async fn rebind(&self, rebind: Rebind) -> PortResult<RuntimeRecord> {
        use runtime_records::dsl as r;

        let Rebind {
            game_id,
            expected_container_id,
            container_id,
            image_ref,
            engine_version,
        } = rebind;
        let op = format!("rebind of {game_id} to container {container_id:?}");
        let now = Timestamp::now();
        let updated = with_conn!(self, &op, |conn, _dialect, _Db| {
            diesel::update(
                r::runtime_records
                    .filter(r::game_id.eq(DbUuid::from(game_id)))
                    .filter(r::current_container_id.eq(&expected_container_id))
                    .filter(r::status.ne(RuntimeStatus::Removed.as_str()))
                    .filter(r::status.ne(RuntimeStatus::Failed.as_str())),
            )
            .set((
                r::current_container_id.eq(&container_id),
                r::current_image_ref.eq(&image_ref),
                r::current_engine_version.eq(&engine_version),
                r::updated_at.eq(DbTime::from(now)),
                r::version.eq(r::version + 1),
            ))
            .returning(RecordRow::as_returning())
            .get_result(conn)
            .await
            .optional()
            .map_err(self.db(&op))
        })?;
        match updated {
            Some(row) => row.into_record(),
            None => Err(self
                .explain_miss(&op, game_id, |record| {
                    if record.is_terminal() {
                        format!("the record is {}, a terminal status", record.status)
                    } else {
                        format!(
                            "the record's container is {:?}, not {expected_container_id:?}",
                            record.current_container_id
                        )
                    }
                })
                .await),
        }
    }

    async fn upsert_adopted(
        &self,
        insert: AdoptInsert,
        update: AdoptUpdate,
    ) -> PortResult<RuntimeRecord> {
        use runtime_records::dsl as r;

        let game_id = insert.record.game_id;
        let op = format!("upsert_adopted of {game_id}");
        let now = Timestamp::now();
        let row = NewRecordRow::new(insert.record, "container adopted", now)?;
        let stored = with_conn!(self, &op, |conn, _dialect, _Db| {
            let upsert = diesel::insert_into(r::runtime_records)
                .values(&row)
                .on_conflict(r::game_id)
                .do_update()
                .set((
                    r::status.eq(update.status.as_str()),
                    r::current_container_id.eq(&update.current_container_id),
                    r::current_image_ref.eq(&update.current_image_ref),
                    r::current_engine_version.eq(&update.current_engine_version),
                    r::engine_endpoint.eq(&update.engine_endpoint),
                    // The status changes now only if it is another one.
                    r::status_changed_at.eq(case_when(
                        r::status.eq(update.status.as_str()),
                        r::status_changed_at,
                    )
                    .otherwise(excluded(r::status_changed_at))),
                    r::status_message.eq(excluded(r::status_message)),
                    r::updated_at.eq(DbTime::from(now)),
                    r::version.eq(r::version + 1),
                ));
            // Forward-only: a terminal row is left alone (the trigger would refuse anyway).
            // (`FilterDsl` by name: on an insert statement it adds `ON CONFLICT … WHERE`.)
            diesel::query_dsl::methods::FilterDsl::filter(
                upsert,
                r::status
                    .ne(RuntimeStatus::Removed.as_str())
                    .and(r::status.ne(RuntimeStatus::Failed.as_str())),
            )
            .returning(RecordRow::as_returning())
            .get_result(conn)
            .await
            .optional()
            .map_err(self.db(&op))
        })?;
        match stored {
            Some(row) => row.into_record(),
            None => Err(self
                .explain_miss(&op, game_id, |record| {
                    format!("the record is {}, a terminal status", record.status)
                })
                .await),
        }
    }

    async fn set_probe_failures(
        &self,
        updates: &[ProbeFailuresUpdate],
    ) -> PortResult<Vec<RuntimeRecord>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let op = format!("set_probe_failures of {} games", updates.len());
        let mut batch = Vec::with_capacity(updates.len());
        for update in last_per_game(updates, |u| u.game_id) {
            let failures = i32::try_from(update.failures).map_err(|_| {
                PortError::invalid(format!(
                    "{op}: probe_failures {} of {} does not fit the store's integer column",
                    update.failures, update.game_id
                ))
            })?;
            batch.push((update.game_id, update.expected_status.as_str(), failures));
        }
        let now = Timestamp::now();
        let rows: Vec<RecordRow> = with_conn!(self, &op, |conn, dialect, Db| {
            // One transaction for the whole call: a call is applied whole or not at all, and
            // SQLite commits (syncs) once instead of once per statement.
            conn.transaction(async |conn| {
                let mut rows = Vec::with_capacity(batch.len());
                for chunk in batch.chunks(BATCH_ROWS) {
                    let mut query = diesel::sql_query(probe_failures_sql(dialect, chunk.len()))
                        .into_boxed::<Db>()
                        .bind::<PortableTimestamp, _>(DbTime::from(now));
                    for (game_id, status, failures) in chunk {
                        query = query
                            .bind::<PortableUuid, _>(DbUuid::from(*game_id))
                            .bind::<Text, _>(*status)
                            .bind::<Integer, _>(*failures);
                    }
                    let mut updated: Vec<RecordRow> = query.load(conn).await?;
                    rows.append(&mut updated);
                }
                Ok::<_, DieselError>(rows)
            })
            .await
            .map_err(self.db(&op))
        })?;
        into_records(rows)
    }

    async fn publish_snapshots(&self, snapshots: &[Snapshot]) -> PortResult<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let op = format!("publish_snapshots of {} games", snapshots.len());
        let batch: Vec<SnapshotRow> = last_per_game(snapshots, |s| s.game_id)
            .into_iter()
            .map(SnapshotRow::from)
            .collect();
        with_conn!(self, &op, |conn, dialect, Db| {
            conn.transaction(async |conn| {
                for chunk in batch.chunks(BATCH_ROWS) {
                    let mut query =
                        diesel::sql_query(snapshots_sql(dialect, chunk.len())).into_boxed::<Db>();
                    for row in chunk {
                        query = query
                            .bind::<PortableUuid, _>(row.game_id.clone())
                            .bind::<PortableJson, _>(row.state.clone())
                            .bind::<PortableTimestamp, _>(row.observed_at.clone());
                    }
                    query.execute(conn).await?;
                }
                Ok::<_, DieselError>(())
            })
            .await
            .map_err(self.db(&op))
        })
    }

    async fn get_snapshot(&self, game_id: GameId) -> PortResult<Option<Snapshot>> {
        let op = format!("get_snapshot of {game_id}");
        let row: Option<SnapshotRow> = with_conn!(self, &op, |conn, _dialect, _Db| {
            runtime_snapshots::table
                .filter(runtime_snapshots::game_id.eq(DbUuid::from(game_id)))
                .select(SnapshotRow::as_select())
                .get_result(conn)
                .await
                .optional()
                .map_err(self.db(&op))
        })?;
        row.map(SnapshotRow::into_snapshot).transpose()
    }
}

#[async_trait]
impl GameCatalog for Store {
    async fn put_game(&self, game: GameProjection) -> PortResult<()> {
        use game_projections::dsl as g;

        let op = format!("put_game of {}", game.game_id);
        let row = ProjectionRow::from(game);
        with_conn!(self, &op, |conn, _dialect, _Db| {
            diesel::insert_into(g::game_projections)
                .values(&row)
                .on_conflict(g::game_id)
                .do_update()
                .set(g::turn_schedule.eq(excluded(g::turn_schedule)))
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(self.db(&op))
        })
    }

    async fn list_games(&self) -> PortResult<Vec<GameProjection>> {
        let op = "list_games";
        let rows: Vec<ProjectionRow> = with_conn!(self, op, |conn, _dialect, _Db| {
            game_projections::table
                .select(ProjectionRow::as_select())
                .order(game_projections::game_id)
                .load(conn)
                .await
                .map_err(self.db(op))
        })?;
        let mut games = rows
            .into_iter()
            .map(ProjectionRow::into_projection)
            .collect::<PortResult<Vec<_>>>()?;
        // Both backends order UUIDs as GameId does; sorting again costs little and makes the
        // contract independent of collations.
        games.sort();
        Ok(games)
    }

    async fn remove_game(&self, game_id: GameId) -> PortResult<()> {
        let op = format!("remove_game of {game_id}");
        let removed = with_conn!(self, &op, |conn, _dialect, _Db| {
            diesel::delete(
                game_projections::table.filter(game_projections::game_id.eq(DbUuid::from(game_id))),
            )
            .execute(conn)
            .await
            .map_err(self.db(&op))
        })?;
        if removed == 0 {
            return Err(PortError::not_found(format!("game projection {game_id}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sql_numbers_every_parameter() {
        #[cfg(feature = "postgres")]
        {
            let sql = probe_failures_sql(Dialect::Postgres, 2);
            assert!(sql.contains("VALUES ($2, $3, $4), ($5, $6, $7))"), "{sql}");
            assert!(sql.contains("updated_at = $1"), "{sql}");
            let sql = snapshots_sql(Dialect::Postgres, 2);
            assert!(
                sql.contains("VALUES ($1, $2, $3), ($4, $5, $6) ON CONFLICT"),
                "{sql}"
            );
        }
        #[cfg(feature = "sqlite")]
        {
            let sql = probe_failures_sql(Dialect::Sqlite, 1);
            assert!(sql.contains("VALUES (?2, ?3, ?4))"), "{sql}");
            assert!(sql.contains("updated_at = ?1"), "{sql}");
        }
    }

    #[test]
    fn batches_keep_the_last_write_per_game() {
        let a = GameId::new_random();
        let b = GameId::new_random();
        let items = [(a, 1), (b, 2), (a, 3)];
        let kept: Vec<_> = last_per_game(&items, |item| item.0)
            .into_iter()
            .copied()
            .collect();
        assert_eq!(kept, vec![(b, 2), (a, 3)]);
    }
}
