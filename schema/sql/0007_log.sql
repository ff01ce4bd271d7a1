-- attest: the transparency log (DESIGN.md, "Audit and transparency log").
--
-- Every audit event becomes a leaf; the sequencer (one leader, advisory lock) gives it
-- its position, log_index, once, after it committed. The index lives on the event row
-- rather than in a side table so GET /v1/audit/events pages by log order on one index
-- and an event and its position are read together; the append-only trigger is widened
-- to allow exactly that one write: log_index from NULL to a value, nothing else changed.
ALTER TABLE audit_events ADD COLUMN log_index bigint UNIQUE CHECK (log_index >= 0);
CREATE INDEX audit_events_unsequenced ON audit_events (id) WHERE log_index IS NULL;

CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.log_index IS NULL AND NEW.log_index IS NOT NULL
       AND (NEW.id, NEW.event_id, NEW.type, NEW.occurred_at, NEW.actor, NEW.tenant,
            NEW.subject_id, NEW.data)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.event_id, OLD.type, OLD.occurred_at, OLD.actor, OLD.tenant,
            OLD.subject_id, OLD.data) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END $$;

-- The tree size: leaves 0 .. size-1 are sequenced. One row, locked by each batch.
CREATE TABLE log_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    size      bigint NOT NULL DEFAULT 0 CHECK (size >= 0)
);
INSERT INTO log_state DEFAULT VALUES;

-- C2SP tlog-tiles hash tiles of height 8: (level, index) -> up to 256 32-byte hashes.
-- A tile only grows (a partial tile becomes wider, then full); it never changes.
CREATE TABLE log_tiles (
    level  smallint NOT NULL CHECK (level >= 0),
    idx    bigint NOT NULL CHECK (idx >= 0),
    hashes bytea NOT NULL CHECK (length(hashes) BETWEEN 32 AND 8192 AND length(hashes) % 32 = 0),
    PRIMARY KEY (level, idx)
);
CREATE FUNCTION log_tiles_grow_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND length(NEW.hashes) >= length(OLD.hashes)
       AND substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) = OLD.hashes
       AND (NEW.level, NEW.idx) = (OLD.level, OLD.idx) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'log_tiles only grow';
END $$;
CREATE TRIGGER log_tiles_no_rewrite BEFORE UPDATE OR DELETE ON log_tiles
    FOR EACH ROW EXECUTE FUNCTION log_tiles_grow_only();

-- Signed checkpoints (C2SP signed-note text), one per tree size and log identity (origin
-- and key: ATTEST_LOG_ORIGIN may change, and a new origin gets a key of its own): two
-- checkpoints of one size by one key never differ.
CREATE TABLE log_checkpoints (
    key_id    text NOT NULL,
    size      bigint NOT NULL CHECK (size >= 0),
    root      bytea NOT NULL CHECK (length(root) = 32),
    note      text NOT NULL,
    signed_at timestamptz NOT NULL,
    PRIMARY KEY (key_id, size)
);
CREATE FUNCTION log_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'log_checkpoints is append-only';
END $$;
CREATE TRIGGER log_checkpoints_no_rewrite BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION log_checkpoints_append_only();

-- The log's Ed25519 key: in the keystore like the token keys, never a token signing key
-- (it is not in signing_keys, so it never signs a token and never enters the JWKS).
CREATE TABLE log_keys (
    origin       text PRIMARY KEY,
    key_id       text NOT NULL,
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    kid          text NOT NULL,
    keystore_ref text NOT NULL,
    created_at   timestamptz NOT NULL
);
