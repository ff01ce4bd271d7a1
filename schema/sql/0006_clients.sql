-- attest: API client management (issue 12). A client can expire, be revoked, and have its key
-- rotated with a grace period; who created each client and who rotated its key is recorded, so
-- four-eyes can refuse an approver related to the submitter by creation or rotation.

ALTER TABLE api_clients ADD COLUMN expires_at timestamptz;
ALTER TABLE api_clients ADD COLUMN disabled_by uuid REFERENCES api_clients (id);

-- Keys a rotation superseded: each still works until its not_after (the grace), then never.
-- The current key stays on api_clients (key_id, secret_sha256).
CREATE TABLE api_client_keys (
    key_id        text PRIMARY KEY,
    client_id     uuid NOT NULL REFERENCES api_clients (id),
    secret_sha256 bytea NOT NULL,
    superseded_at timestamptz NOT NULL,
    not_after     timestamptz NOT NULL
);
CREATE INDEX api_client_keys_client ON api_client_keys (client_id);

-- One edge per act that hands a client's powers over: from_client created to_client, or
-- rotated to_client's key (and so received it). Four-eyes walks these in both directions.
CREATE TABLE client_links (
    from_client uuid NOT NULL REFERENCES api_clients (id),
    to_client   uuid NOT NULL REFERENCES api_clients (id),
    kind        text NOT NULL CHECK (kind IN ('created', 'rotated')),
    at          timestamptz NOT NULL,
    PRIMARY KEY (from_client, to_client, kind),
    CHECK (from_client <> to_client)
);
CREATE INDEX client_links_to ON client_links (to_client);

INSERT INTO client_links (from_client, to_client, kind, at)
SELECT created_by, id, 'created', created_at FROM api_clients
WHERE created_by IS NOT NULL AND created_by <> id;

-- Fixed-window request counters shared by every instance (rate limits, failed-authentication
-- throttling): one row per key, reset when a new window starts; old rows are pruned.
CREATE TABLE rate_counters (
    key          text PRIMARY KEY,
    window_start bigint NOT NULL,
    count        integer NOT NULL
);
CREATE INDEX rate_counters_window ON rate_counters (window_start);
