-- The tables of galaxy-runtime's store (SQLite). See docs/store.md.
-- UUIDs are lowercase hyphenated TEXT; timestamps are RFC 3339 TEXT with six fractional digits
-- in UTC (2026-11-27T12:00:00.000000Z), so that text order is time order; JSON is TEXT.

CREATE TABLE runtime_records (
    game_id                TEXT    NOT NULL PRIMARY KEY,
    status                 TEXT    NOT NULL CHECK (status IN (
                               'starting', 'running', 'engine_unreachable',
                               'stopped', 'removed', 'failed')),
    current_container_id   TEXT    NOT NULL DEFAULT '',
    current_image_ref      TEXT    NOT NULL DEFAULT '',
    current_engine_version TEXT    NOT NULL DEFAULT '',
    engine_endpoint        TEXT    NOT NULL DEFAULT '',
    docker_network         TEXT    NOT NULL DEFAULT '',
    turn_schedule          TEXT    NOT NULL DEFAULT '',
    probe_failures         INTEGER NOT NULL DEFAULT 0 CHECK (probe_failures >= 0),
    status_changed_at      TEXT    NOT NULL,
    status_message         TEXT    NOT NULL DEFAULT '',
    created_at             TEXT    NOT NULL,
    updated_at             TEXT    NOT NULL,
    version                INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

-- The forward-only rule, enforced here too (see the PostgreSQL migration). The store maps this
-- error to a Conflict by its message, so keep the text "is terminal and cannot change status".
CREATE TRIGGER runtime_records_forward_only
    BEFORE UPDATE OF status ON runtime_records
    FOR EACH ROW WHEN OLD.status IN ('removed', 'failed') AND NEW.status IS NOT OLD.status
BEGIN
    SELECT RAISE(ABORT, 'runtime record is terminal and cannot change status');
END;

-- The lobby's view of a game; a host may replace it with a view (docs/store.md).
CREATE TABLE game_projections (
    game_id       TEXT NOT NULL PRIMARY KEY,
    turn_schedule TEXT NOT NULL DEFAULT ''
);

-- The latest engine status of each game (no foreign key, as on PostgreSQL).
CREATE TABLE runtime_snapshots (
    game_id     TEXT NOT NULL PRIMARY KEY,
    state       TEXT NOT NULL,
    observed_at TEXT NOT NULL
);
