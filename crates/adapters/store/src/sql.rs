//! The statements written as SQL text: the batches, one statement per chunk of rows, with the
//! same text on both backends but for the bind parameters.

use std::collections::HashSet;

use galaxy_runtime_model::GameId;

/// The most rows one batch statement writes. 1 000 rows of 4 values stay far below both
/// backends' bind limits (65 535 for PostgreSQL, 32 766 for SQLite) while making each statement
/// large enough that the per-statement cost (a round trip, a parse) is amortised. Callers hand
/// the store batches of any size; this is the store's own business.
pub const BATCH_ROWS: usize = 1_000;

/// How many game ids one projection query takes on SQLite, whose `IN (…)` list is one bind per
/// id. PostgreSQL gets every id in one array bind (`= ANY($1)`), hence one query however many.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_IDS_PER_QUERY: usize = 10_000;

/// The SQL dialect of a connection, for the few statements written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "sqlite")]
    Sqlite,
}

impl Dialect {
    /// The `n`th bind parameter (from 1): `$n` on PostgreSQL, `?n` on SQLite (numbered, so one
    /// bind can be used twice in both dialects).
    pub(crate) fn param(self, n: usize) -> String {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres => format!("${n}"),
            #[cfg(feature = "sqlite")]
            Self::Sqlite => format!("?{n}"),
        }
    }

    /// `(p, p, …), (p, p, …)` for `rows` rows of `columns` parameters, numbered from `first`.
    pub(crate) fn values(self, rows: usize, columns: usize, first: usize) -> String {
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
     status_changed_at, status_message, created_at, updated_at, version, docker_host";

/// The probe-failure batch: one `UPDATE … FROM` a `VALUES` list per chunk, compare-and-set on
/// each row's status and container.
///
/// The same text serves both backends (PostgreSQL ≥ 9.1 and SQLite ≥ 3.33 accept a `WITH` before
/// `UPDATE … FROM`; SQLite needs 3.35 for `RETURNING`, and the bundled one is 3.5x). On
/// PostgreSQL this is the usual `UPDATE … FROM (VALUES …)`: one statement, one round trip, one
/// plan. On SQLite the alternatives were a `CASE` per column (quadratic text, and the `WHERE`
/// must repeat the ids) or one `UPDATE` per row inside a transaction (cheap in SQLite, which has
/// no round trip, but still a statement step per row); the `VALUES` CTE keeps one statement per
/// batch there too, so both backends behave and are measured alike. The batch's columns are
/// named apart from the table's so the unqualified `RETURNING` list is unambiguous on both.
pub(crate) fn probe_failures_sql(dialect: Dialect, rows: usize) -> String {
    format!(
        "WITH batch (batch_game_id, batch_status, batch_container_id, batch_docker_host, \
         batch_failures) AS (VALUES {values}) \
         UPDATE runtime_records SET probe_failures = batch.batch_failures, \
         updated_at = {now}, version = runtime_records.version + 1 \
         FROM batch \
         WHERE runtime_records.game_id = batch.batch_game_id \
         AND runtime_records.status = batch.batch_status \
         AND runtime_records.current_container_id = batch.batch_container_id \
         AND runtime_records.docker_host = batch.batch_docker_host \
         RETURNING {RECORD_COLUMNS}",
        values = dialect.values(rows, 5, 2),
        now = dialect.param(1),
    )
}

/// The snapshot batch: one multi-row `INSERT … ON CONFLICT DO UPDATE` per chunk (the same text
/// on both backends).
pub(crate) fn snapshots_sql(dialect: Dialect, rows: usize) -> String {
    format!(
        "INSERT INTO runtime_snapshots (game_id, state, observed_at) VALUES {values} \
         ON CONFLICT (game_id) DO UPDATE SET state = excluded.state, \
         observed_at = excluded.observed_at",
        values = dialect.values(rows, 3, 1),
    )
}

/// Every column of `runtime_events`, for `RETURNING` in statements written as text.
const EVENT_COLUMNS: &str = "seq, event_id, game_id, op, status, message, at, attempts, \
     last_error, next_attempt_at, claimed_until, delivered_at";

/// The relay's claim: of each game the oldest event not yet delivered, when its next attempt is
/// due and no unexpired claim holds it, at most `limit` (`$3`) of them in commit order, claimed
/// until `$2`; `$1` is now.
///
/// On PostgreSQL the rows are locked with `SKIP LOCKED`, so that two relays claiming at once
/// take different events instead of waiting for each other; SQLite serialises writers anyway.
/// The `NOT EXISTS` keeps the order per game (the index on pending `(game_id, seq)` answers
/// it).
pub(crate) fn claim_sql(dialect: Dialect) -> String {
    let lock = match dialect {
        #[cfg(feature = "postgres")]
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        #[cfg(feature = "sqlite")]
        Dialect::Sqlite => "",
    };
    let (now, until, limit) = (dialect.param(1), dialect.param(2), dialect.param(3));
    format!(
        "UPDATE runtime_events SET claimed_until = {until} WHERE seq IN (\
         SELECT e.seq FROM runtime_events e \
         WHERE e.delivered_at IS NULL AND e.next_attempt_at <= {now} \
         AND (e.claimed_until IS NULL OR e.claimed_until <= {now}) \
         AND NOT EXISTS (SELECT 1 FROM runtime_events p WHERE p.game_id = e.game_id \
         AND p.delivered_at IS NULL AND p.seq < e.seq) \
         ORDER BY e.seq LIMIT {limit}{lock}) \
         RETURNING {EVENT_COLUMNS}"
    )
}

/// The items of a batch with one per key, the last one winning, in their original order.
///
/// PostgreSQL refuses an `INSERT … ON CONFLICT DO UPDATE` that touches a row twice, and an
/// `UPDATE … FROM` would pick one of the duplicates at random; the last write of a batch is the
/// one a caller means.
pub(crate) fn last_per_game<T>(items: &[T], game_id: impl Fn(&T) -> GameId) -> Vec<&T> {
    let mut seen = HashSet::with_capacity(items.len());
    let mut kept: Vec<&T> = items
        .iter()
        .rev()
        .filter(|item| seen.insert(game_id(item)))
        .collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sql_numbers_every_parameter() {
        #[cfg(feature = "postgres")]
        {
            let sql = probe_failures_sql(Dialect::Postgres, 2);
            assert!(
                sql.contains("VALUES ($2, $3, $4, $5, $6), ($7, $8, $9, $10, $11))"),
                "{sql}"
            );
            assert!(sql.contains("updated_at = $1"), "{sql}");
            assert!(
                sql.contains("current_container_id = batch.batch_container_id"),
                "{sql}"
            );
            assert!(
                sql.contains("docker_host = batch.batch_docker_host"),
                "{sql}"
            );
            let sql = snapshots_sql(Dialect::Postgres, 2);
            assert!(
                sql.contains("VALUES ($1, $2, $3), ($4, $5, $6) ON CONFLICT"),
                "{sql}"
            );
        }
        #[cfg(feature = "sqlite")]
        {
            let sql = probe_failures_sql(Dialect::Sqlite, 1);
            assert!(sql.contains("VALUES (?2, ?3, ?4, ?5, ?6))"), "{sql}");
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
