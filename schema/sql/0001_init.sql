-- attest: initial schema. Private keys never enter the database; API keys are stored as hashes.

CREATE TABLE api_clients (
    id            uuid PRIMARY KEY,
    key_id        text NOT NULL UNIQUE,
    secret_sha256 bytea NOT NULL,
    name          text NOT NULL,
    tenant        text NOT NULL,
    scopes        text[] NOT NULL,
    is_admin      boolean NOT NULL DEFAULT false,
    created_by    uuid REFERENCES api_clients (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

CREATE TABLE subjects (
    id           uuid PRIMARY KEY,
    tenant       text NOT NULL,
    external_ref text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    UNIQUE (tenant, external_ref)
);

CREATE TABLE evidence (
    id             uuid PRIMARY KEY,
    subject_id     uuid NOT NULL REFERENCES subjects (id),
    tenant         text NOT NULL,
    type           text NOT NULL,
    document_type  text,
    attributes     jsonb NOT NULL,
    assurance      text NOT NULL CHECK (assurance IN ('IAL1', 'IAL2', 'IAL3')),
    status         text NOT NULL
                   CHECK (status IN ('pending_approval', 'verified', 'rejected', 'withdrawn')),
    reasons        jsonb NOT NULL DEFAULT '[]',
    submitted_by   uuid NOT NULL REFERENCES api_clients (id),
    approved_by    uuid REFERENCES api_clients (id),
    created_at     timestamptz NOT NULL,
    verified_at    timestamptz,
    reverify_at    timestamptz,
    CHECK (approved_by IS NULL OR approved_by <> submitted_by)
);
CREATE INDEX evidence_subject ON evidence (subject_id, status);

CREATE TABLE policies (
    name        text NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    document    jsonb NOT NULL,
    digest      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  uuid REFERENCES api_clients (id),
    PRIMARY KEY (name, version)
);

CREATE TABLE audiences (
    audience         text PRIMARY KEY,
    policy_name      text NOT NULL,
    token_lifetime   integer NOT NULL CHECK (token_lifetime BETWEEN 10 AND 3600),
    binding_required boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE signing_keys (
    kid           text PRIMARY KEY,
    alg           text NOT NULL CHECK (alg IN ('ES256', 'EdDSA')),
    state         text NOT NULL
                  CHECK (state IN ('pending', 'active', 'retiring', 'retired', 'compromised')),
    public_jwk    jsonb NOT NULL,
    keystore_ref  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    activated_at  timestamptz,
    retiring_at   timestamptz,
    retired_at    timestamptz,
    compromised_at timestamptz
);
-- Exactly one signing key per algorithm, enforced by the database.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE state = 'active';

CREATE TABLE attestations (
    jti             text PRIMARY KEY,
    subject_id      uuid NOT NULL REFERENCES subjects (id),
    tenant          text NOT NULL,
    audience        text NOT NULL,
    sub             text NOT NULL,
    policy_name     text NOT NULL,
    policy_version  integer NOT NULL,
    policy_digest   text NOT NULL,
    assurance       text NOT NULL,
    evidence_ids    uuid[] NOT NULL,
    kid             text NOT NULL REFERENCES signing_keys (kid),
    token_sha256    text NOT NULL,
    cnf_jkt         text,
    issued_at       timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    requested_by    uuid NOT NULL REFERENCES api_clients (id),
    signature       text NOT NULL,
    FOREIGN KEY (policy_name, policy_version) REFERENCES policies (name, version)
);
CREATE INDEX attestations_subject ON attestations (subject_id);

-- Append-only record of every decision and change. Pseudonymous ids and digests only.
CREATE TABLE audit_events (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor       uuid,
    tenant      text,
    subject_id  uuid,
    data        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_type ON audit_events (type, id);
CREATE INDEX audit_events_subject ON audit_events (subject_id, id);
CREATE INDEX audit_events_time ON audit_events (occurred_at);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END $$;
CREATE TRIGGER audit_events_no_rewrite BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
