-- attest: identity-provider assertions already used, so that a replayed assertion (same
-- issuer and jti) is rejected. A row may be deleted once expires_at has passed: the
-- assertion's own exp then rejects it.
CREATE TABLE idp_assertion_jtis (
    issuer     text NOT NULL,
    jti        text NOT NULL,
    tenant     text NOT NULL,
    used_at    timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX idp_assertion_jtis_expiry ON idp_assertion_jtis (expires_at);
