-- attest: signing-key lifecycle (DESIGN.md "Keys"). Private keys never enter the database.
--
-- pending -> active -> retiring -> retired, and compromised from any state but retired-
-- compromised. The database enforces the transitions, one active key per algorithm (0001)
-- and at most one pending key, so two instances racing a rotation cannot both add a key.

ALTER TABLE signing_keys
    -- A pending key may start signing from this time (publication + pre-publication period).
    ADD COLUMN activate_after timestamptz,
    -- A retiring key may leave the JWKS from this time (retiring + retiring window).
    ADD COLUMN retire_after timestamptz,
    ADD CONSTRAINT signing_keys_pending_has_activate_after
        CHECK (state <> 'pending' OR activate_after IS NOT NULL),
    ADD CONSTRAINT signing_keys_active_has_activated_at
        CHECK (state NOT IN ('active', 'retiring', 'retired') OR activated_at IS NOT NULL),
    ADD CONSTRAINT signing_keys_retiring_has_times
        CHECK (state NOT IN ('retiring', 'retired') OR (retiring_at IS NOT NULL AND retire_after IS NOT NULL)),
    ADD CONSTRAINT signing_keys_retired_has_retired_at
        CHECK (state <> 'retired' OR retired_at IS NOT NULL),
    ADD CONSTRAINT signing_keys_compromised_has_time
        CHECK (state <> 'compromised' OR compromised_at IS NOT NULL);

CREATE UNIQUE INDEX signing_keys_one_pending ON signing_keys ((true)) WHERE state = 'pending';

CREATE FUNCTION signing_keys_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'signing_keys rows are key history: never deleted';
    END IF;
    IF NEW.kid <> OLD.kid OR NEW.alg <> OLD.alg OR NEW.public_jwk <> OLD.public_jwk
       OR NEW.keystore_ref <> OLD.keystore_ref OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'signing key % : identity columns are immutable', OLD.kid;
    END IF;
    IF NEW.state <> OLD.state AND NOT (
           (OLD.state = 'pending' AND NEW.state IN ('active', 'compromised'))
        OR (OLD.state = 'active' AND NEW.state IN ('retiring', 'compromised'))
        OR (OLD.state = 'retiring' AND NEW.state IN ('retired', 'compromised'))
        OR (OLD.state = 'retired' AND NEW.state = 'compromised')
    ) THEN
        RAISE EXCEPTION 'signing key % : transition % -> % is not allowed',
            OLD.kid, OLD.state, NEW.state;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER signing_keys_lifecycle BEFORE UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION signing_keys_guard();

CREATE INDEX attestations_kid_expiry ON attestations (kid, expires_at);
