-- attest: console sessions (issue 13). The browser's cookie carries a random session id;
-- only its SHA-256 is stored, with the API client that signed in, the key id it presented,
-- the session's CSRF token and its expiry. Signing out deletes the row, and every console
-- request re-reads the client by that key id, so a revoked or expired client, or a key past
-- its rotation grace, ends the session at once on every instance.
CREATE TABLE console_sessions (
    id_sha256  bytea PRIMARY KEY,
    client_id  uuid NOT NULL REFERENCES api_clients (id),
    key_id     text NOT NULL,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
