-- attest: OAuth Token Status Lists (draft-ietf-oauth-status-list). Every token has one entry
-- of 2 bits (0 VALID, 1 INVALID, 2 SUSPENDED) in a list; entries are allocated through a
-- keyed permutation of an internal slot counter, so an index says nothing about how many
-- tokens were issued, and an index is never reused (the sequence never goes back).
CREATE SEQUENCE status_slots AS bigint MINVALUE 0 START 0;

CREATE TABLE status_lists (
    id         integer PRIMARY KEY,
    first_slot bigint NOT NULL UNIQUE,
    size       integer NOT NULL CHECK (size > 0 AND size % 4 = 0),
    perm_key   bytea NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE token_statuses (
    list_id    integer NOT NULL REFERENCES status_lists (id),
    idx        integer NOT NULL,
    jti        text NOT NULL UNIQUE REFERENCES attestations (jti),
    status     smallint NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),
    changed_at timestamptz,
    PRIMARY KEY (list_id, idx)
);

-- Every change of an entry, append-only: GET /v1/status-lists/{id}?time= answers a list as
-- it was, and the latest id per list tells an instance whether its ready bytes are current.
CREATE TABLE token_status_changes (
    id         bigserial PRIMARY KEY,
    list_id    integer NOT NULL,
    idx        integer NOT NULL,
    status     smallint NOT NULL,
    changed_at timestamptz NOT NULL
);
CREATE INDEX token_status_changes_list ON token_status_changes (list_id, id);

CREATE FUNCTION token_status_changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'token_status_changes is append-only';
END $$;
CREATE TRIGGER token_status_changes_no_rewrite BEFORE UPDATE OR DELETE ON token_status_changes
    FOR EACH ROW EXECUTE FUNCTION token_status_changes_append_only();

-- A policy version published or an audience rebound: the outstanding tokens of these
-- audiences are re-evaluated by one instance (FOR UPDATE SKIP LOCKED), in batches that each
-- commit with the job's cursor, so another instance resumes where a dead one stopped.
CREATE TABLE status_reevaluations (
    id           bigserial PRIMARY KEY,
    audience     text NOT NULL,
    cause        text NOT NULL,
    requested_at timestamptz NOT NULL,
    not_before   timestamptz,
    after_jti    text NOT NULL DEFAULT '',
    checked      integer NOT NULL DEFAULT 0,
    revoked      integer NOT NULL DEFAULT 0,
    done_at      timestamptz
);
CREATE INDEX status_reevaluations_pending ON status_reevaluations (id) WHERE done_at IS NULL;

CREATE INDEX attestations_subject_expiry ON attestations (subject_id, expires_at);
CREATE INDEX attestations_audience ON attestations (audience, jti);
CREATE INDEX attestations_kid ON attestations (kid, expires_at);

-- Clients that hold every scope keep holding every scope: the admin gets tokens:revoke.
UPDATE api_clients SET scopes = array_append(scopes, 'tokens:revoke')
WHERE is_admin AND NOT ('tokens:revoke' = ANY (scopes));
