//! The one diesel schema of both backends, and the portable SQL types that make it possible.
//!
//! PostgreSQL has `uuid`, `timestamptz` and `jsonb`; SQLite has none of them and keeps all three
//! as `TEXT`. A SQL type declared here names the PostgreSQL type (by its oid) and SQLite's `Text`,
//! so one `table!` serves both; the values in `types.rs` carry the four `ToSql`/`FromSql`
//! impls. The migrations still differ per backend (`UUID` vs `TEXT`), hence one migrations
//! folder per backend.

/// The portable SQL types of the schema.
pub mod sql_types {
    /// A UUID: PostgreSQL `uuid`, SQLite `TEXT` in lowercase hyphenated form.
    #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId, Debug, Clone, Copy)]
    #[diesel(postgres_type(oid = 2950, array_oid = 2951))]
    #[diesel(sqlite_type(name = "Text"))]
    pub struct PortableUuid;

    /// A point in time in UTC, kept to the microsecond: PostgreSQL `timestamptz`, SQLite `TEXT`
    /// as RFC 3339 with six fractional digits (`2026-11-27T12:00:00.000000Z`), which sorts as it
    /// reads.
    #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId, Debug, Clone, Copy)]
    #[diesel(postgres_type(oid = 1184, array_oid = 1185))]
    #[diesel(sqlite_type(name = "Text"))]
    pub struct PortableTimestamp;

    /// A JSON document: PostgreSQL `jsonb`, SQLite `TEXT`.
    #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId, Debug, Clone, Copy)]
    #[diesel(postgres_type(oid = 3802, array_oid = 3807))]
    #[diesel(sqlite_type(name = "Text"))]
    pub struct PortableJson;
}

diesel::table! {
    use diesel::sql_types::{BigInt, Integer, Text};
    use super::sql_types::{PortableTimestamp, PortableUuid};

    /// What the backend believes runs for each game (CONTRACT §1).
    runtime_records (game_id) {
        /// The game.
        game_id -> PortableUuid,
        /// One of the six runtime statuses (CHECK-constrained).
        status -> Text,
        /// The container believed to run the game; empty when unknown.
        current_container_id -> Text,
        /// Its image.
        current_image_ref -> Text,
        /// Its engine version label.
        current_engine_version -> Text,
        /// Where the engine answers.
        engine_endpoint -> Text,
        /// The Docker network of the container.
        docker_network -> Text,
        /// The game's turn schedule.
        turn_schedule -> Text,
        /// Consecutive failed engine probes (never negative).
        probe_failures -> Integer,
        /// When `status` last changed.
        status_changed_at -> PortableTimestamp,
        /// Why `status` last changed (the message of the status change); empty when unknown.
        status_message -> Text,
        /// When the row was inserted.
        created_at -> PortableTimestamp,
        /// When the row was last written.
        updated_at -> PortableTimestamp,
        /// Incremented by every write of the row.
        version -> BigInt,
        /// The Docker host the container runs on (CONTRACT §6); `''` for the first host.
        docker_host -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::Text;
    use super::sql_types::PortableUuid;

    /// The lobby's view of each game (a host may replace this table by a view).
    game_projections (game_id) {
        /// The game.
        game_id -> PortableUuid,
        /// Its turn schedule.
        turn_schedule -> Text,
    }
}

diesel::table! {
    use super::sql_types::{PortableJson, PortableTimestamp, PortableUuid};

    /// The latest engine status of each game.
    runtime_snapshots (game_id) {
        /// The game.
        game_id -> PortableUuid,
        /// The engine's status JSON, as it answered.
        state -> PortableJson,
        /// When the probe was made.
        observed_at -> PortableTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::{BigInt, Integer, Nullable, Text};
    use super::sql_types::{PortableTimestamp, PortableUuid};

    /// The outbox of lobby events (CONTRACT §7), written with the status changes they tell of.
    runtime_events (seq) {
        /// Commit order.
        seq -> BigInt,
        /// Unique per event, the same on every redelivery.
        event_id -> PortableUuid,
        /// The game.
        game_id -> PortableUuid,
        /// The job the event reports on (`reconcile` for a pass's changes).
        op -> Text,
        /// The status the change led to.
        status -> Text,
        /// Why.
        message -> Text,
        /// When the change committed.
        at -> PortableTimestamp,
        /// Delivery attempts so far.
        attempts -> Integer,
        /// Why the last attempt failed.
        last_error -> Nullable<Text>,
        /// When the next attempt is due.
        next_attempt_at -> PortableTimestamp,
        /// Until when a relay holds the event for an attempt.
        claimed_until -> Nullable<PortableTimestamp>,
        /// When the lobby accepted it.
        delivered_at -> Nullable<PortableTimestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    runtime_records,
    game_projections,
    runtime_snapshots,
    runtime_events
);
