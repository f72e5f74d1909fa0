-- The outbox of lobby events (CONTRACT §3, §7). An event is inserted in the same transaction as
-- the status change it tells of; the relay delivers it, at least once, in commit order per game.

CREATE TABLE runtime_events (
    -- Commit order: per game, events are inserted in the order their status changes commit,
    -- since each change first updates the record's row, which serialises writers of a game.
    seq             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        UUID        NOT NULL UNIQUE,
    game_id         UUID        NOT NULL,
    op              TEXT        NOT NULL CHECK (op IN (
                        'start', 'stop', 'restart', 'patch', 'reconcile')),
    status          TEXT        NOT NULL CHECK (status IN (
                        'starting', 'running', 'engine_unreachable',
                        'stopped', 'removed', 'failed')),
    message         TEXT        NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    -- Set while a relay holds the event for an attempt; a claim that expires frees it.
    claimed_until   TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ
);

-- The relay's question: the oldest pending event of each game.
CREATE INDEX runtime_events_pending ON runtime_events (game_id, seq) WHERE delivered_at IS NULL;
-- Pruning delivered events.
CREATE INDEX runtime_events_delivered ON runtime_events (delivered_at)
    WHERE delivered_at IS NOT NULL;
