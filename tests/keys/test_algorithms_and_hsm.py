"""EdDSA per key, and the PKCS#11 keystore on a fresh SoftHSM2 token.

Tokens are checked with attest.verify and with an independent JOSE library (joserfc).
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from attest.keys.keystore import KeystoreError
from attest.verify import StaticJWKS, Verifier

AUDIENCE = "model:fable-5"


def check(token: str, server: Any, jwks: dict[str, Any]) -> str:
    """Verify with attest.verify (on the service's clock) and joserfc; return the alg."""
    Verifier(
        issuer=server.settings.issuer,
        audience=AUDIENCE,
        keys=StaticJWKS(jwks),
        now=lambda: server.clock().timestamp(),
    ).verify(token)
    alg: str = jwt.get_unverified_header(token)["alg"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags EdDSA as deprecated in favour of Ed25519
        decoded = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[alg])
    assert decoded.claims["aud"] == AUDIENCE
    return alg


def test_eddsa_first_key(world: Any, issuer_for: Any, published: Any) -> None:
    server = world.start(key_algorithm="EdDSA")
    token = issuer_for(server).issue()
    assert check(token, server, published(server)) == "EdDSA"
    assert published(server)["keys"][0]["crv"] == "Ed25519"


def test_changing_the_algorithm_rotates_to_it_safely(
    world: Any, issuer_for: Any, published: Any, admin_keys: Any
) -> None:
    old = world.start()
    es256 = issuer_for(old).issue()
    world.stop(old)
    server = world.start(key_algorithm="EdDSA")
    issuer = issuer_for(server)
    # The ES256 key keeps signing until the EdDSA key has been published long enough.
    assert world.tick(key_algorithm="EdDSA").create_pending
    assert jwt.get_unverified_header(issuer.issue())["alg"] == "ES256"
    world.clock.advance(seconds=60)
    world.tick(key_algorithm="EdDSA")
    eddsa = issuer.issue()
    jwks = published(server)
    assert sorted(k["alg"] for k in jwks["keys"]) == ["ES256", "EdDSA"]
    assert check(es256, old, jwks) == "ES256"
    assert check(eddsa, server, jwks) == "EdDSA"
    assert sorted(k["state"] for k in admin_keys(server)) == ["active", "retiring"]


# -- PKCS#11 (SoftHSM2) ------------------------------------------------------------------


@pytest.fixture
def hsm_store(softhsm: dict[str, str]) -> Any:
    from attest.keys.pkcs11 import Pkcs11Keystore

    store = Pkcs11Keystore(softhsm["module"], softhsm["label"], softhsm["pin"])
    yield store
    store.close()


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_hsm_keys_are_made_in_the_token_and_never_leave_it(hsm_store: Any, alg: str) -> None:
    import pkcs11

    signer = hsm_store.generate(alg)
    ref = hsm_store.ref(signer)
    assert ref.startswith("pkcs11:id=")
    private = signer._private  # the token object behind the signer
    assert private[pkcs11.Attribute.EXTRACTABLE] is False
    assert private[pkcs11.Attribute.SENSITIVE] is True
    assert private[pkcs11.Attribute.NEVER_EXTRACTABLE] is True
    with pytest.raises(pkcs11.exceptions.PKCS11Error):
        private[pkcs11.Attribute.VALUE]
    again = hsm_store.load(signer.kid, alg, ref)
    assert again.public_jwk() == signer.public_jwk()
    token = again.sign_jwt({"hello": "world"}, "elig+jwt")
    key = jwt.PyJWK({**signer.public_jwk(), "alg": alg})
    assert jwt.decode(token, key.key, algorithms=[alg]) == {"hello": "world"}
    with pytest.raises(KeystoreError, match="not held by a PKCS#11"):
        hsm_store.load(signer.kid, alg, f"file:{signer.kid}")
    with pytest.raises(KeystoreError, match="not in the PKCS#11 token"):
        hsm_store.load(signer.kid, alg, "pkcs11:id=00")


def test_hsm_service_restart_keeps_the_same_key(
    world: Any, issuer_for: Any, published: Any, softhsm: dict[str, str], tmp_path: Path
) -> None:
    hsm = {
        "keystore": "pkcs11",
        "pkcs11_module": softhsm["module"],
        "pkcs11_token_label": softhsm["label"],
        "log_origin": "attest.test/log",  # the default follows the issuer, hence the port
    }
    server = world.start(**hsm, pkcs11_pin=softhsm["pin"])
    first = issuer_for(server).issue()
    jwks = published(server)
    assert check(first, server, jwks) == "ES256"
    (record,) = world.fetch("SELECT kid, keystore_ref FROM signing_keys")
    assert record["keystore_ref"].startswith("pkcs11:id=")
    assert not (world.root / "keys").exists()  # nothing on disk: the key is in the token
    # The log key too: an Ed25519 key made in the token, recorded apart from token keys.
    (log_key,) = world.fetch("SELECT kid, keystore_ref FROM log_keys")
    assert log_key["keystore_ref"].startswith("pkcs11:id=")
    assert log_key["kid"] != record["kid"]
    vkey = log_checkpoint_key(server)
    world.stop(server)

    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm["pin"] + "\n")
    server = world.start(**hsm, pkcs11_pin_file=str(pin_file))
    second = issuer_for(server).issue()
    assert published(server) == jwks
    assert log_checkpoint_key(server) == vkey  # the same log key, loaded from the token
    assert jwt.get_unverified_header(second)["kid"] == record["kid"]
    check(second, server, jwks)
    # Rotation inside the token too: the new key is made by the HSM.
    with server.client(server.admin_key) as admin:
        rotated = admin.post("/v1/keys/rotate").json()
    world.clock.advance(seconds=60)
    assert world.tick(**hsm, pkcs11_pin=softhsm["pin"]).activate == rotated["kid"]
    third = issuer_for(server).issue()
    assert jwt.get_unverified_header(third)["kid"] == rotated["kid"]
    check(third, server, published(server))


def log_checkpoint_key(server: Any) -> str:
    """The log's vkey, once a checkpoint signed in the token verifies with it."""
    import httpx

    from attest.verify._tlog import open_checkpoint, parse_vkey

    config = httpx.get(server.base_url + "/.well-known/attest-configuration").json()
    vkey: str = config["log"]["vkey"]
    deadline = time.monotonic() + 10
    while (note := httpx.get(server.base_url + "/v1/log/checkpoint")).status_code != 200:
        assert time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.05)
    open_checkpoint(note.text, parse_vkey(vkey))
    return vkey


def test_a_wrong_pin_is_a_clear_error_without_the_pin(softhsm: dict[str, str]) -> None:
    # A fresh process: PKCS#11 login state is per process, so this one is not logged in.
    code = (
        "import sys\n"
        "from attest.keys.pkcs11 import Pkcs11Keystore\n"
        "from attest.keys.keystore import KeystoreError\n"
        "try:\n"
        f"    Pkcs11Keystore({softhsm['module']!r}, {softhsm['label']!r}, 'wrong-pin-4321')\n"
        "except KeystoreError as exc:\n"
        "    print(exc); sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"SOFTHSM2_CONF": softhsm["conf"], "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "PinIncorrect" in result.stdout
    assert "wrong-pin-4321" not in result.stdout + result.stderr


def test_a_token_removed_while_serving_is_503_then_signing_resumes(
    world: Any, issuer_for: Any, published: Any, softhsm: dict[str, str]
) -> None:
    """The token's directory taken away from SoftHSM (a token removed): token requests are
    503 problems with Retry-After, answered at once, naming neither the token nor its
    path; once it is back, issuance resumes with the same key, without a restart."""
    from concurrent.futures import ThreadPoolExecutor

    hsm = {
        "keystore": "pkcs11",
        "pkcs11_module": softhsm["module"],
        "pkcs11_token_label": softhsm["label"],
        "log_origin": "attest.test/log",
    }
    server = world.start(**hsm, pkcs11_pin=softhsm["pin"])
    issuer = issuer_for(server)
    before = issuer.issue()
    jwks = published(server)
    tokens = Path(softhsm["conf"]).parent / "tokens"
    (token_dir,) = [d for d in tokens.iterdir() if d.is_dir()]
    away = tokens.parent / "away"
    token_dir.rename(away)
    try:
        body = {"subject_id": issuer.subject_id, "audience": "model:fable-5"}

        def ask(_: int) -> Any:
            started = time.monotonic()
            reply = issuer.http.post("/v1/tokens", json=body)
            return reply, time.monotonic() - started

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(ask, range(12)))
        for reply, took in answers:
            assert reply.status_code == 503, reply.text
            assert reply.headers["content-type"].startswith("application/problem+json")
            assert reply.headers["retry-after"].isdigit()
            assert reply.json()["type"] == "urn:attest:problem:unavailable"
            assert softhsm["label"] not in reply.text
            assert str(tokens) not in reply.text
            assert took < 5
    finally:
        away.rename(token_dir)
    deadline = time.monotonic() + 10
    while (reply := issuer.http.post("/v1/tokens", json=body)).status_code != 201:
        assert reply.status_code == 503, reply.text
        assert time.monotonic() < deadline, "issuance did not resume"
        time.sleep(0.2)
    after = reply.json()["token"]
    assert jwt.get_unverified_header(after)["kid"] == jwt.get_unverified_header(before)["kid"]
    check(after, server, jwks)


def test_an_unusable_key_directory_is_503_for_rotation_and_issuance_goes_on(
    world: Any, issuer_for: Any
) -> None:
    """The file keystore's directory gone from under the service (a volume lost, its path
    now a file): a rotation, which must write its new key, is a 503 problem that names no
    path; tokens are still issued with the key in memory; once the directory is back, the
    rotation succeeds without a restart."""
    server = world.start()
    issuer = issuer_for(server)
    issuer.issue()
    keys = world.root / "keys"
    moved = world.root / "keys-away"
    keys.rename(moved)
    keys.write_text("not a directory")
    try:
        with server.client(server.admin_key) as admin:
            refused = admin.post("/v1/keys/rotate")
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["retry-after"].isdigit()
        assert str(world.root) not in refused.text
        issuer.issue()  # signing needs no file
    finally:
        keys.unlink()
        moved.rename(keys)
    with server.client(server.admin_key) as admin:
        rotated = admin.post("/v1/keys/rotate")
    assert rotated.status_code == 202, rotated.text
    assert rotated.json()["state"] == "pending"
    assert any(rotated.json()["kid"] in path.name for path in keys.iterdir())
