//! [`StorePort`] on [`Store`]: every record write is compare-and-set on what the caller saw of
//! the row — its status and its container — and goes through [`with_write_conn!`], so that a
//! fenced store commits it only while it leads.

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
use galaxy_runtime_model::{
    GameId, GameProjection, RuntimeRecord, RuntimeStatus, Snapshot, Timestamp,
};
use galaxy_runtime_ports::{
    AdoptInsert, AdoptUpdate, PortError, PortResult, ProbeFailuresUpdate, Rebind, StatusChange,
    StorePort,
};

use crate::rows::{NewEventRow, NewRecordRow, ProjectionRow, RecordRow, SnapshotRow, into_records};
use crate::schema::sql_types::{PortableJson, PortableTimestamp, PortableUuid};
use crate::schema::{game_projections, runtime_events, runtime_records, runtime_snapshots};
#[cfg(feature = "sqlite")]
use crate::sql::SQLITE_IDS_PER_QUERY;
use crate::sql::{BATCH_ROWS, Dialect, last_per_game, probe_failures_sql, snapshots_sql};
use crate::store::Store;
use crate::types::{DbTime, DbUuid};

#[async_trait]
impl StorePort for Store {
    async fn list_records(&self) -> PortResult<Vec<Arc<RuntimeRecord>>> {
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
        let created = with_write_conn!(self, &op, |conn, _dialect, _Db| {
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
            expected,
            to,
            message,
            at,
            event,
        } = change;
        let op = format!(
            "transition_status of {game_id} from {} to {to}",
            expected.status
        );
        if let Err(refused) = expected.status.check_transition(to) {
            return Err(PortError::conflict(refused.to_string()));
        }
        // 0 resets the counter, 1 keeps it: one statement shape (one cached prepared
        // statement) for both cases.
        let keep_failures = i32::from(!(to == RuntimeStatus::Running || to.is_terminal()));
        let now = Timestamp::now();
        let event = event.map(|result| NewEventRow::new(game_id, result, at));
        let updated = with_write_conn!(self, &op, |conn, _dialect, _Db| {
            // The change and its event commit together, or neither does.
            conn.transaction(async |conn| {
                let updated: Option<RecordRow> = diesel::update(
                    r::runtime_records
                        .filter(r::game_id.eq(DbUuid::from(game_id)))
                        .filter(r::status.eq(expected.status.as_str()))
                        .filter(r::current_container_id.eq(&expected.current_container_id))
                        .filter(r::docker_host.eq(&expected.docker_host)),
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
                .optional()?;
                if let (Some(_), Some(event)) = (&updated, &event) {
                    diesel::insert_into(runtime_events::table)
                        .values(event)
                        .execute(conn)
                        .await?;
                }
                Ok::<_, DieselError>(updated)
            })
            .await
            .map_err(self.db(&op))
        })?;
        match updated {
            Some(row) => row.into_record(),
            None => Err(self.explain_miss(&op, game_id, Some(&expected)).await),
        }
    }

    async fn rebind(&self, rebind: Rebind) -> PortResult<RuntimeRecord> {
        use runtime_records::dsl as r;

        let Rebind {
            game_id,
            expected,
            container_id,
            image_ref,
            engine_version,
            docker_host,
        } = rebind;
        let op = format!("rebind of {game_id} to container {container_id:?}");
        if expected.status.is_terminal() {
            return Err(PortError::conflict(format!(
                "record is {}, a terminal status",
                expected.status
            )));
        }
        let now = Timestamp::now();
        let updated = with_write_conn!(self, &op, |conn, _dialect, _Db| {
            diesel::update(
                r::runtime_records
                    .filter(r::game_id.eq(DbUuid::from(game_id)))
                    .filter(r::status.eq(expected.status.as_str()))
                    .filter(r::current_container_id.eq(&expected.current_container_id))
                    .filter(r::docker_host.eq(&expected.docker_host)),
            )
            .set((
                r::current_container_id.eq(&container_id),
                r::docker_host.eq(&docker_host),
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
            None => Err(self.explain_miss(&op, game_id, Some(&expected)).await),
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
        let stored = match &update.expected {
            // The caller saw no record: only an insert can be right.
            None => with_write_conn!(self, &op, |conn, _dialect, _Db| {
                diesel::insert_into(r::runtime_records)
                    .values(&row)
                    .on_conflict_do_nothing()
                    .returning(RecordRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()
                    .map_err(self.db(&op))
            })?,
            Some(expected) => with_write_conn!(self, &op, |conn, _dialect, _Db| {
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
                        r::docker_host.eq(&update.docker_host),
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
                // Compare-and-set on what the caller saw, and forward-only: a terminal row is
                // left alone (the trigger would refuse anyway). (`FilterDsl` by name: on an
                // insert statement it adds `ON CONFLICT … WHERE`.)
                diesel::query_dsl::methods::FilterDsl::filter(
                    upsert,
                    r::status
                        .eq(expected.status.as_str())
                        .and(r::current_container_id.eq(&expected.current_container_id))
                        .and(r::docker_host.eq(&expected.docker_host))
                        .and(r::status.ne(RuntimeStatus::Removed.as_str()))
                        .and(r::status.ne(RuntimeStatus::Failed.as_str())),
                )
                .returning(RecordRow::as_returning())
                .get_result(conn)
                .await
                .optional()
                .map_err(self.db(&op))
            })?,
        };
        match stored {
            Some(row) => row.into_record(),
            None => Err(self
                .explain_miss(&op, game_id, update.expected.as_ref())
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
            batch.push((
                update.game_id,
                update.expected.status.as_str(),
                update.expected.current_container_id.as_str(),
                update.expected.docker_host.as_str(),
                failures,
            ));
        }
        let now = Timestamp::now();
        let rows: Vec<RecordRow> = with_write_conn!(self, &op, |conn, dialect, Db| {
            // One transaction for the whole call: a call is applied whole or not at all, and
            // SQLite commits (syncs) once instead of once per statement.
            conn.transaction(async |conn| {
                let mut rows = Vec::with_capacity(batch.len());
                for chunk in batch.chunks(BATCH_ROWS) {
                    let mut query = diesel::sql_query(probe_failures_sql(dialect, chunk.len()))
                        .into_boxed::<Db>()
                        .bind::<PortableTimestamp, _>(DbTime::from(now));
                    for (game_id, status, container_id, docker_host, failures) in chunk {
                        query = query
                            .bind::<PortableUuid, _>(DbUuid::from(*game_id))
                            .bind::<Text, _>(*status)
                            .bind::<Text, _>(*container_id)
                            .bind::<Text, _>(*docker_host)
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
        with_write_conn!(self, &op, |conn, dialect, Db| {
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
