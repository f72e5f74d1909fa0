-- The outbox of lobby events (see the PostgreSQL migration). UUIDs and timestamps are TEXT as in
-- the other tables.

CREATE TABLE runtime_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    game_id         TEXT    NOT NULL,
    op              TEXT    NOT NULL CHECK (op IN (
                        'start', 'stop', 'restart', 'patch', 'reconcile')),
    status          TEXT    NOT NULL CHECK (status IN (
                        'starting', 'running', 'engine_unreachable',
                        'stopped', 'removed', 'failed')),
    message         TEXT    NOT NULL,
    at              TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    next_attempt_at TEXT    NOT NULL,
    claimed_until   TEXT,
    delivered_at    TEXT
);

CREATE INDEX runtime_events_pending ON runtime_events (game_id, seq) WHERE delivered_at IS NULL;
CREATE INDEX runtime_events_delivered ON runtime_events (delivered_at)
    WHERE delivered_at IS NOT NULL;
