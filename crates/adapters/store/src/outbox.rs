//! [`OutboxPort`] on [`Store`]: the `runtime_events` table, which `transition_status` writes in
//! the same transaction as the status change it tells of. Every write here goes through
//! [`with_write_conn!`], so a fenced store claims and marks events only while it leads.

use std::time::Duration;

use async_trait::async_trait;
use diesel::result::Error as DieselError;
use diesel::sql_types::{BigInt, Nullable};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, QueryableByName, SelectableHelper};
use diesel_async::{AsyncConnection, RunQueryDsl};
use galaxy_runtime_model::{EventId, OutboxEntry, Timestamp};
use galaxy_runtime_ports::{
    DeliveryOutcome, EventFilter, OutboxPort, OutboxStats, PortError, PortResult,
};

use crate::rows::EventRow;
use crate::schema::runtime_events;
use crate::schema::sql_types::PortableTimestamp;
use crate::sql::claim_sql;
use crate::store::Store;
use crate::types::{DbTime, DbUuid};

/// The count and the oldest commit time of the pending events.
#[derive(QueryableByName)]
struct PendingRow {
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = Nullable<PortableTimestamp>)]
    oldest: Option<DbTime>,
    #[diesel(sql_type = Nullable<PortableTimestamp>)]
    next: Option<DbTime>,
}

fn into_entries(rows: Vec<EventRow>) -> PortResult<Vec<OutboxEntry>> {
    let mut entries = rows
        .into_iter()
        .map(EventRow::into_entry)
        .collect::<PortResult<Vec<_>>>()?;
    entries.sort_by_key(|e| e.seq);
    Ok(entries)
}

#[async_trait]
impl OutboxPort for Store {
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> PortResult<Vec<OutboxEntry>> {
        let op = "claim_due of the lobby outbox";
        let until = now.saturating_add(lease);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<EventRow> = with_write_conn!(self, op, |conn, dialect, _Db| {
            diesel::sql_query(claim_sql(dialect))
                .bind::<PortableTimestamp, _>(DbTime::from(now))
                .bind::<PortableTimestamp, _>(DbTime::from(until))
                .bind::<BigInt, _>(limit)
                .load(conn)
                .await
                .map_err(self.db(op))
        })?;
        into_entries(rows)
    }

    async fn record_deliveries(&self, outcomes: &[DeliveryOutcome]) -> PortResult<()> {
        use runtime_events::dsl as e;

        if outcomes.is_empty() {
            return Ok(());
        }
        let op = format!("record_deliveries of {} lobby events", outcomes.len());
        with_write_conn!(self, &op, |conn, _dialect, _Db| {
            // One transaction: a round's outcomes are recorded whole or not at all (then the
            // claims expire and the events are due again: at least once).
            conn.transaction(async |conn| {
                for outcome in outcomes {
                    match outcome {
                        DeliveryOutcome::Delivered { event_id, at } => {
                            diesel::update(
                                e::runtime_events
                                    .filter(e::event_id.eq(DbUuid::from(*event_id)))
                                    .filter(e::delivered_at.is_null()),
                            )
                            .set((
                                e::delivered_at.eq(Some(DbTime::from(*at))),
                                e::claimed_until.eq(None::<DbTime>),
                                e::attempts.eq(e::attempts + 1),
                            ))
                            .execute(conn)
                            .await?;
                        }
                        DeliveryOutcome::Failed {
                            event_id,
                            error,
                            next_attempt_at,
                        } => {
                            diesel::update(
                                e::runtime_events
                                    .filter(e::event_id.eq(DbUuid::from(*event_id)))
                                    .filter(e::delivered_at.is_null()),
                            )
                            .set((
                                e::last_error.eq(Some(error.as_str())),
                                e::next_attempt_at.eq(DbTime::from(*next_attempt_at)),
                                e::claimed_until.eq(None::<DbTime>),
                                e::attempts.eq(e::attempts + 1),
                            ))
                            .execute(conn)
                            .await?;
                        }
                    }
                }
                Ok::<_, DieselError>(())
            })
            .await
            .map_err(self.db(&op))
        })
    }

    async fn outbox_stats(&self) -> PortResult<OutboxStats> {
        let op = "outbox_stats";
        let row: PendingRow = with_conn!(self, op, |conn, _dialect, _Db| {
            diesel::sql_query(
                "SELECT COUNT(*) AS pending, MIN(at) AS oldest, (\
                 SELECT MIN(CASE WHEN e.claimed_until IS NOT NULL \
                 AND e.claimed_until > e.next_attempt_at \
                 THEN e.claimed_until ELSE e.next_attempt_at END) \
                 FROM runtime_events e WHERE e.delivered_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM runtime_events p WHERE p.game_id = e.game_id \
                 AND p.delivered_at IS NULL AND p.seq < e.seq)) AS next \
                 FROM runtime_events WHERE delivered_at IS NULL",
            )
            .get_result(conn)
            .await
            .map_err(self.db(op))
        })?;
        let time = |value: Option<DbTime>| match value {
            None => Ok(None),
            Some(DbTime::Valid(at)) => Ok(Some(at)),
            Some(DbTime::Malformed(raw)) => Err(PortError::invalid(format!(
                "runtime_events: malformed time {raw:?}"
            ))),
        };
        Ok(OutboxStats {
            pending: u64::try_from(row.pending).unwrap_or(0),
            oldest_pending_at: time(row.oldest)?,
            next_attempt_at: time(row.next)?,
        })
    }

    async fn prune_delivered(&self, before: Timestamp) -> PortResult<u64> {
        use runtime_events::dsl as e;

        let op = "prune_delivered of the lobby outbox";
        let pruned = with_write_conn!(self, op, |conn, _dialect, _Db| {
            diesel::delete(
                e::runtime_events
                    .filter(e::delivered_at.is_not_null())
                    .filter(e::delivered_at.lt(Some(DbTime::from(before)))),
            )
            .execute(conn)
            .await
            .map_err(self.db(op))
        })?;
        Ok(pruned as u64)
    }

    async fn list_events(&self, filter: &EventFilter) -> PortResult<Vec<OutboxEntry>> {
        use runtime_events::dsl as e;

        let op = "list_events of the lobby outbox";
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let rows: Vec<EventRow> = with_conn!(self, op, |conn, _dialect, Db| {
            let mut query = e::runtime_events
                .select(EventRow::as_select())
                .order(e::seq.desc())
                .limit(limit)
                .into_boxed::<Db>();
            if filter.pending_only {
                query = query.filter(e::delivered_at.is_null());
            }
            if let Some(game_id) = filter.game_id {
                query = query.filter(e::game_id.eq(DbUuid::from(game_id)));
            }
            query.load(conn).await.map_err(self.db(op))
        })?;
        into_entries(rows)
    }

    async fn redeliver(&self, event_id: EventId, now: Timestamp) -> PortResult<OutboxEntry> {
        use runtime_events::dsl as e;

        let op = format!("redeliver of lobby event {event_id}");
        let row: Option<EventRow> = with_write_conn!(self, &op, |conn, _dialect, _Db| {
            diesel::update(e::runtime_events.filter(e::event_id.eq(DbUuid::from(event_id))))
                .set((
                    e::delivered_at.eq(None::<DbTime>),
                    e::claimed_until.eq(None::<DbTime>),
                    e::next_attempt_at.eq(DbTime::from(now)),
                ))
                .returning(EventRow::as_returning())
                .get_result(conn)
                .await
                .optional()
                .map_err(self.db(&op))
        })?;
        match row {
            Some(row) => row.into_entry(),
            None => Err(PortError::not_found(format!("lobby event {event_id}"))),
        }
    }
}
