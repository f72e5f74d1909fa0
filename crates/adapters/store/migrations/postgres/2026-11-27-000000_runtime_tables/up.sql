-- The tables of galaxy-runtime's store (PostgreSQL). See docs/store.md.

CREATE TABLE runtime_records (
    game_id                UUID        PRIMARY KEY,
    status                 TEXT        NOT NULL CHECK (status IN (
                               'starting', 'running', 'engine_unreachable',
                               'stopped', 'removed', 'failed')),
    current_container_id   TEXT        NOT NULL DEFAULT '',
    current_image_ref      TEXT        NOT NULL DEFAULT '',
    current_engine_version TEXT        NOT NULL DEFAULT '',
    engine_endpoint        TEXT        NOT NULL DEFAULT '',
    docker_network         TEXT        NOT NULL DEFAULT '',
    turn_schedule          TEXT        NOT NULL DEFAULT '',
    probe_failures         INTEGER     NOT NULL DEFAULT 0 CHECK (probe_failures >= 0),
    status_changed_at      TIMESTAMPTZ NOT NULL,
    status_message         TEXT        NOT NULL DEFAULT '',
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    version                BIGINT      NOT NULL DEFAULT 1
);

-- The forward-only rule, enforced here too so that no writer (another version of this code, a
-- hand-written UPDATE) can move a record out of a terminal status. The store maps this error
-- to a Conflict by its message, so keep the text "is terminal and cannot change status".
CREATE FUNCTION runtime_records_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('removed', 'failed') AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'runtime record % is terminal and cannot change status (% to %)',
            OLD.game_id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER runtime_records_forward_only
    BEFORE UPDATE OF status ON runtime_records
    FOR EACH ROW EXECUTE FUNCTION runtime_records_forward_only();

-- The lobby's view of a game. A host whose lobby owns the games table may drop this table and
-- create a view of the same name and columns instead (docs/store.md).
CREATE TABLE game_projections (
    game_id       UUID PRIMARY KEY,
    turn_schedule TEXT NOT NULL DEFAULT ''
);

-- The latest engine status of each game. No foreign key to runtime_records: a snapshot is an
-- observation, and publishing it must not fail because a stop job removed the record meanwhile.
CREATE TABLE runtime_snapshots (
    game_id     UUID        PRIMARY KEY,
    state       JSONB       NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL
);
