//! Rows as diesel reads and writes them, and their checked conversion to the model.

use diesel::prelude::*;
use galaxy_runtime_model::{
    EventId, GameId, GameProjection, JobResult, LobbyEvent, Op, OutboxEntry, RuntimeRecord,
    RuntimeStatus, Snapshot, Timestamp,
};
use galaxy_runtime_ports::PortError;

use crate::schema::{game_projections, runtime_events, runtime_records, runtime_snapshots};
use crate::types::{DbJson, DbTime, DbUuid};

/// One row of `runtime_records`, every column.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = runtime_records)]
pub(crate) struct RecordRow {
    pub game_id: DbUuid,
    pub status: String,
    pub current_container_id: String,
    pub current_image_ref: String,
    pub current_engine_version: String,
    pub engine_endpoint: String,
    pub docker_network: String,
    pub turn_schedule: String,
    pub probe_failures: i32,
    pub status_changed_at: DbTime,
    pub status_message: String,
    pub created_at: DbTime,
    pub updated_at: DbTime,
    pub version: i64,
    pub docker_host: String,
}

/// A new row of `runtime_records`.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = runtime_records)]
pub(crate) struct NewRecordRow {
    pub game_id: DbUuid,
    pub status: &'static str,
    pub current_container_id: String,
    pub current_image_ref: String,
    pub current_engine_version: String,
    pub engine_endpoint: String,
    pub docker_network: String,
    pub turn_schedule: String,
    pub probe_failures: i32,
    pub status_changed_at: DbTime,
    pub status_message: String,
    pub created_at: DbTime,
    pub updated_at: DbTime,
    pub version: i64,
    pub docker_host: String,
}

impl NewRecordRow {
    /// The row of a new record written at `now`.
    pub(crate) fn new(
        record: RuntimeRecord,
        message: &str,
        now: Timestamp,
    ) -> Result<Self, PortError> {
        let probe_failures = i32::try_from(record.probe_failures).map_err(|_| {
            PortError::invalid(format!(
                "runtime record {}: probe_failures {} does not fit the store's integer column",
                record.game_id, record.probe_failures
            ))
        })?;
        Ok(Self {
            game_id: record.game_id.into(),
            status: record.status.as_str(),
            current_container_id: record.current_container_id,
            current_image_ref: record.current_image_ref,
            current_engine_version: record.current_engine_version,
            engine_endpoint: record.engine_endpoint,
            docker_network: record.docker_network,
            turn_schedule: record.turn_schedule,
            probe_failures,
            status_changed_at: record.status_changed_at.into(),
            status_message: message.to_owned(),
            created_at: now.into(),
            updated_at: now.into(),
            version: 1,
            docker_host: record.docker_host,
        })
    }
}

/// A runtime record together with what only the store keeps about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record.
    pub record: RuntimeRecord,
    /// The message of the last status change (empty when the record was created or adopted).
    pub status_message: String,
    /// When the row was inserted.
    pub created_at: Timestamp,
    /// When the row was last written.
    pub updated_at: Timestamp,
    /// How many times the row was written (1 after the insert).
    pub version: i64,
}

/// The error for a stored value the code cannot read.
fn bad_value(row: &DbUuid, column: &str, value: impl std::fmt::Display) -> PortError {
    PortError::invalid(format!(
        "runtime_records row of game {row}: malformed {column} {value}"
    ))
}

fn time(row: &DbUuid, column: &str, value: &DbTime) -> Result<Timestamp, PortError> {
    match value {
        DbTime::Valid(at) => Ok(*at),
        DbTime::Malformed(raw) => Err(bad_value(row, column, format_args!("{raw:?}"))),
    }
}

impl RecordRow {
    /// The game id; an error naming the raw value when it is malformed.
    pub(crate) fn checked_game_id(&self) -> Result<GameId, PortError> {
        self.game_id.game_id().map_err(|raw| {
            PortError::invalid(format!(
                "runtime_records row with malformed game_id {raw:?}: not a hyphenated UUID"
            ))
        })
    }

    /// The stored row as the model sees it, every value checked.
    pub(crate) fn into_stored(self) -> Result<StoredRecord, PortError> {
        let game_id = self.checked_game_id()?;
        let status: RuntimeStatus = self.status.parse().map_err(|_| {
            PortError::invalid(format!(
                "runtime_records row of game {game_id}: unknown status {:?}: expected one of \
                 starting, running, engine_unreachable, stopped, removed, failed",
                self.status
            ))
        })?;
        let probe_failures = u32::try_from(self.probe_failures)
            .map_err(|_| bad_value(&self.game_id, "probe_failures", self.probe_failures))?;
        let record = RuntimeRecord {
            game_id,
            status,
            current_container_id: self.current_container_id,
            current_image_ref: self.current_image_ref,
            current_engine_version: self.current_engine_version,
            engine_endpoint: self.engine_endpoint,
            docker_network: self.docker_network,
            turn_schedule: self.turn_schedule,
            probe_failures,
            status_changed_at: time(&self.game_id, "status_changed_at", &self.status_changed_at)?,
            docker_host: self.docker_host,
        };
        Ok(StoredRecord {
            record,
            status_message: self.status_message,
            created_at: time(&self.game_id, "created_at", &self.created_at)?,
            updated_at: time(&self.game_id, "updated_at", &self.updated_at)?,
            version: self.version,
        })
    }

    /// The record, every value checked.
    pub(crate) fn into_record(self) -> Result<RuntimeRecord, PortError> {
        self.into_stored().map(|stored| stored.record)
    }
}

/// Converts every row, failing on the first bad one, into records or anything made of one
/// (the shared records a listing hands out).
pub(crate) fn into_records<R: From<RuntimeRecord>>(
    rows: Vec<RecordRow>,
) -> Result<Vec<R>, PortError> {
    rows.into_iter()
        .map(|row| row.into_record().map(R::from))
        .collect()
}

/// One row of `game_projections`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = game_projections)]
pub(crate) struct ProjectionRow {
    pub game_id: DbUuid,
    pub turn_schedule: String,
}

impl From<GameProjection> for ProjectionRow {
    fn from(game: GameProjection) -> Self {
        Self {
            game_id: game.game_id.into(),
            turn_schedule: game.turn_schedule,
        }
    }
}

impl ProjectionRow {
    pub(crate) fn into_projection(self) -> Result<GameProjection, PortError> {
        let game_id = self.game_id.game_id().map_err(|raw| {
            PortError::invalid(format!(
                "game_projections row with malformed game_id {raw:?}: not a hyphenated UUID"
            ))
        })?;
        Ok(GameProjection {
            game_id,
            turn_schedule: self.turn_schedule,
        })
    }
}

/// One row of `runtime_snapshots`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = runtime_snapshots)]
pub(crate) struct SnapshotRow {
    pub game_id: DbUuid,
    pub state: DbJson,
    pub observed_at: DbTime,
}

impl From<&Snapshot> for SnapshotRow {
    fn from(snapshot: &Snapshot) -> Self {
        Self {
            game_id: snapshot.game_id.into(),
            state: DbJson::Valid(std::sync::Arc::clone(&snapshot.state)),
            observed_at: snapshot.observed_at.into(),
        }
    }
}

impl SnapshotRow {
    pub(crate) fn into_snapshot(self) -> Result<Snapshot, PortError> {
        let game_id = self.game_id.game_id().map_err(|raw| {
            PortError::invalid(format!(
                "runtime_snapshots row with malformed game_id {raw:?}: not a hyphenated UUID"
            ))
        })?;
        let state = match self.state {
            DbJson::Valid(value) => value,
            DbJson::Malformed(raw) => {
                return Err(PortError::invalid(format!(
                    "runtime_snapshots row of game {game_id}: malformed state {raw:?}: not JSON"
                )));
            }
        };
        let observed_at = match self.observed_at {
            DbTime::Valid(at) => at,
            DbTime::Malformed(raw) => {
                return Err(PortError::invalid(format!(
                    "runtime_snapshots row of game {game_id}: malformed observed_at {raw:?}"
                )));
            }
        };
        Ok(Snapshot {
            game_id,
            state,
            observed_at,
        })
    }
}

/// `game_id` and `observed_at` of a snapshot, for status tables that do not need the state.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = runtime_snapshots)]
pub(crate) struct SnapshotTimeRow {
    pub game_id: DbUuid,
    pub observed_at: DbTime,
}

/// One row of `runtime_events`, every column.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = runtime_events)]
pub(crate) struct EventRow {
    pub seq: i64,
    pub event_id: DbUuid,
    pub game_id: DbUuid,
    pub op: String,
    pub status: String,
    pub message: String,
    pub at: DbTime,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DbTime,
    pub claimed_until: Option<DbTime>,
    pub delivered_at: Option<DbTime>,
}

/// A new row of `runtime_events`: the event of a status change, written with it.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = runtime_events)]
pub(crate) struct NewEventRow {
    pub event_id: DbUuid,
    pub game_id: DbUuid,
    pub op: &'static str,
    pub status: &'static str,
    pub message: String,
    pub at: DbTime,
    pub next_attempt_at: DbTime,
}

impl NewEventRow {
    /// The event of `game_id`'s change to `result.status`, committing at `at`, with a fresh id.
    pub(crate) fn new(game_id: GameId, result: JobResult, at: Timestamp) -> Self {
        Self {
            event_id: EventId::new_random().into(),
            game_id: game_id.into(),
            op: op_word(result.op),
            status: result.status.as_str(),
            message: result.message,
            at: at.into(),
            next_attempt_at: at.into(),
        }
    }
}

/// The snake_case word of a job's op, as in JSON and in the `op` column.
fn op_word(op: Op) -> &'static str {
    match op {
        Op::Start => "start",
        Op::Stop => "stop",
        Op::Restart => "restart",
        Op::Patch => "patch",
        Op::Reconcile => "reconcile",
    }
}

impl EventRow {
    /// The entry, or an `Invalid` error naming the event and the bad value.
    pub(crate) fn into_entry(self) -> Result<OutboxEntry, PortError> {
        let seq = self.seq;
        let bad = |what: &str, raw: &dyn std::fmt::Debug| {
            PortError::invalid(format!(
                "runtime_events row {seq}: malformed {what} {raw:?}"
            ))
        };
        let event_id = match &self.event_id {
            DbUuid::Valid(uuid) => EventId::from_uuid(*uuid),
            DbUuid::Malformed(raw) => return Err(bad("event_id", raw)),
        };
        let game_id = self.game_id.game_id().map_err(|raw| bad("game_id", &raw))?;
        let time = |what: &str, value: DbTime| match value {
            DbTime::Valid(at) => Ok(at),
            DbTime::Malformed(raw) => Err(bad(what, &raw)),
        };
        let op: Op = serde_json::from_value(serde_json::Value::String(self.op.clone()))
            .map_err(|_| bad("op", &self.op))?;
        let status: RuntimeStatus = self
            .status
            .parse()
            .map_err(|_| bad("status", &self.status))?;
        Ok(OutboxEntry {
            event: LobbyEvent {
                event_id,
                game_id,
                result: JobResult {
                    op,
                    status,
                    message: self.message,
                },
                at: time("at", self.at)?,
            },
            seq: u64::try_from(seq).map_err(|_| bad("seq", &seq))?,
            attempts: u32::try_from(self.attempts).map_err(|_| bad("attempts", &self.attempts))?,
            last_error: self.last_error,
            next_attempt_at: time("next_attempt_at", self.next_attempt_at)?,
            claimed_until: self
                .claimed_until
                .map(|at| time("claimed_until", at))
                .transpose()?,
            delivered_at: self
                .delivered_at
                .map(|at| time("delivered_at", at))
                .transpose()?,
        })
    }
}
