"""Rotation as a table of cases: key state x which key signed -> outcome in attest.verify.

One timeline on a fresh database builds the tokens and the key sets a verifier sees at each
phase (A active; B pending; B active and A retiring; A retired; B compromised and C active),
then every case is checked against it with the verifier's clock at the token's ``iat``, so
the outcome depends on the key set alone.
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest

from attest.verify import InvalidToken, StaticJWKS, Verifier

AUDIENCE = "model:fable-5"


def outcome(token: str, jwks: dict[str, Any], issuer: str) -> str:
    iat = jwt.decode(token, options={"verify_signature": False})["iat"]
    verifier = Verifier(
        issuer=issuer, audience=AUDIENCE, keys=StaticJWKS(jwks), now=lambda: iat + 1.0
    )
    try:
        verifier.verify(token)
    except InvalidToken as exc:
        return exc.code
    return "ok"


def kid_of(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


def resign(token: str, signer: Any) -> str:
    """The same claims, a new jti, signed by ``signer`` (a key the server would not use)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["jti"] = uuid.uuid4().hex
    signed: str = signer.sign_jwt(claims, "elig+jwt")
    return signed


def test_rotation_table(world: Any, issuer_for: Any, admin_keys: Any, published: Any) -> None:
    server = world.start()
    admin = server.client(server.admin_key)
    issuer = issuer_for(server)
    states = lambda: {k["kid"]: k["state"] for k in admin_keys(server)}  # noqa: E731

    # Phase 0: A signs.
    (key_a,) = states()
    tokens = {"A": issuer.issue()}
    jwks = {"A active": published(server)}

    # Phase 1: rotation publishes B as pending; A still signs.
    rotated = admin.post("/v1/keys/rotate")
    assert rotated.status_code == 202, rotated.text
    key_b = rotated.json()["kid"]
    assert rotated.json()["state"] == "pending"
    assert admin.post("/v1/keys/rotate").json() == {**rotated.json(), "created": False}
    assert states() == {key_a: "active", key_b: "pending"}
    assert kid_of(issuer.issue()) == key_a
    store = world.keystore()
    tokens["B while pending"] = resign(tokens["A"], store.load(key_b, "ES256"))
    jwks["B pending"] = published(server)
    assert world.tick().empty  # not due before the pre-publication period has passed

    # Phase 2: after the pre-publication period B signs and A is retiring.
    world.clock.advance(seconds=60)
    assert world.tick().activate == key_b
    assert states() == {key_a: "retiring", key_b: "active"}
    tokens["B"] = issuer.issue()
    assert kid_of(tokens["B"]) == key_b  # picked up without a restart
    jwks["B active, A retiring"] = published(server)

    # Phase 3: A leaves the JWKS once the retiring window and its last token's life are over.
    world.clock.advance(seconds=659)
    assert world.tick().empty
    world.clock.advance(seconds=2)
    assert world.tick().retire == (key_a,)
    assert states() == {key_a: "retired", key_b: "active"}
    jwks["A retired"] = published(server)

    # Phase 4: B is compromised: out at once, C signs at once, no pre-publication.
    revoked = admin.post(f"/v1/keys/{key_b}/revoke", json={"compromised": True})
    assert revoked.status_code == 200, revoked.text
    body = revoked.json()
    assert body["prepublication_skipped"] is True
    assert body["previous_state"] == "active"
    key_c = body["replacement"]["kid"]
    assert states() == {key_a: "retired", key_b: "compromised", key_c: "active"}
    tokens["C"] = issuer.issue()
    assert kid_of(tokens["C"]) == key_c
    jwks["B compromised, C active"] = published(server)
    tokens["never published"] = resign(tokens["A"], store.generate("ES256"))

    cases = [
        # (signed by, key set seen by the verifier, expected outcome)
        ("A", "A active", "ok"),
        ("A", "B pending", "ok"),
        ("B while pending", "B pending", "ok"),
        ("B", "A active", "unknown_key"),  # why B must be published before it signs
        ("A", "B active, A retiring", "ok"),
        ("B", "B active, A retiring", "ok"),
        ("A", "A retired", "unknown_key"),
        ("B", "A retired", "ok"),
        ("B", "B compromised, C active", "unknown_key"),
        ("C", "B compromised, C active", "ok"),
        ("A", "B compromised, C active", "unknown_key"),
        ("never published", "B compromised, C active", "unknown_key"),
    ]
    issuer_url = server.settings.issuer
    got = [(s, k, outcome(tokens[s], jwks[k], issuer_url)) for s, k, _ in cases]
    assert got == cases

    # Key history keeps every key with its public half and validity window.
    config = server.client().get("/.well-known/attest-configuration").json()
    assert config["key_history_uri"] == issuer_url + "/v1/keys/history"
    history = server.client().get("/v1/keys/history").json()["keys"]
    by_kid = {k["kid"]: k for k in history}
    assert set(by_kid) == {key_a, key_b, key_c}
    assert by_kid[key_a]["retired_at"]
    assert by_kid[key_a]["retiring_at"]
    assert by_kid[key_b]["compromised_at"] == body["compromised_at"]
    assert by_kid[key_b]["signing_window"] == {
        "from": by_kid[key_b]["activated_at"],
        "until": body["compromised_at"],
    }
    assert by_kid[key_c]["signing_window"]["until"] is None
    assert outcome(tokens["A"], {"keys": [by_kid[key_a]["public_jwk"]]}, issuer_url) == "ok"
    assert all("d" not in k["public_jwk"] for k in history)  # public halves only

    # Every state change is an audit event.
    events = admin.get("/v1/audit/events", params={"limit": 1000}).json()
    kinds = [
        (e["type"], e["data"].get("kid"))
        for e in events.get("events", events.get("items", []))
        if e["type"].startswith("key.")
    ]
    assert kinds == [
        ("key.activated", key_a),
        ("key.published", key_b),
        ("key.retiring", key_a),
        ("key.activated", key_b),
        ("key.retired", key_a),
        ("key.compromised", key_b),
        ("key.published", key_c),
        ("key.activated", key_c),
    ]
    admin.close()


def test_a_retiring_key_stays_until_its_last_token_expires(
    world: Any, issuer_for: Any, admin_keys: Any
) -> None:
    """Retirement waits for real token expiry, not only for the retiring window.

    The API refuses such an audience (tests/keys/test_audience_lifetime.py); here the row is
    changed under the running service, as a hand edit of the database would, to show that
    the key still stays published until its last token has expired.
    """
    server = world.start(key_retiring_window=700)
    admin = server.client(server.admin_key)
    raised = world.fetch(
        "UPDATE audiences SET token_lifetime = 3600 WHERE audience = $1 RETURNING audience",
        AUDIENCE,
    )
    assert len(raised) == 1
    issuer_for(server).issue()  # lives 3600 s
    (key_a,) = [k["kid"] for k in admin_keys(server)]
    admin.post("/v1/keys/rotate")
    world.clock.advance(seconds=60)
    world.tick()
    world.clock.advance(seconds=701)  # retiring window over, the token is still alive
    assert world.tick().retire == ()
    world.clock.advance(seconds=3600 + 60 - 701 - 60)
    assert world.tick().retire == (key_a,)
    admin.close()


@pytest.mark.parametrize("body", [{}, {"compromised": False}])
def test_revoke_needs_the_compromise_flag(world: Any, body: dict[str, Any]) -> None:
    server = world.start()
    with server.client(server.admin_key) as admin:
        kid = admin.get("/v1/keys").json()["keys"][0]["kid"]
        refused = admin.post(f"/v1/keys/{kid}/revoke", json=body)
        assert refused.status_code == 400, refused.text
        missing = admin.post("/v1/keys/nope/revoke", json={"compromised": True})
        assert missing.status_code == 404
        assert admin.post(f"/v1/keys/{kid}/revoke", json={"compromised": True}).status_code == 200
        again = admin.post(f"/v1/keys/{kid}/revoke", json={"compromised": True})
        assert again.status_code == 409
    with server.client() as anonymous:
        assert anonymous.post("/v1/keys/rotate").status_code == 401
        assert anonymous.post(f"/v1/keys/{kid}/revoke", json=body).status_code == 401
        assert anonymous.get("/v1/keys").status_code == 401
        assert anonymous.get("/v1/keys/history").status_code == 200


def test_compromised_key_tokens_fail_once_the_verifier_refreshes(
    world: Any, issuer_for: Any
) -> None:
    from attest.verify import RemoteJWKS

    server = world.start()
    issuer = issuer_for(server)
    token = issuer.issue()
    verifier = Verifier(
        issuer=server.settings.issuer,
        audience=AUDIENCE,
        keys=RemoteJWKS(server.base_url + "/.well-known/jwks.json"),
        now=lambda: world.clock().timestamp(),
        cache_size=0,
    )
    verifier.verify(token)
    with server.client(server.admin_key) as admin:
        response = admin.post(f"/v1/keys/{kid_of(token)}/revoke", json={"compromised": True})
    assert "pre-publication" in response.json()["note"]
    # Within its cache lifetime (the JWKS max-age, 60 s here) the verifier still holds the key:
    # the bound on exposure is the max-age the service sends.
    verifier.verify(token)
    world.clock.advance(seconds=61)
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    assert info.value.code == "unknown_key"
    verifier.verify(issuer.issue())  # the replacement signs and verifies
