"""idp_assertion over HTTP: a tenant's trusted provider, each refusal with its reason,
replay rejected, expiry against the injected clock, nothing personal in the audit trail."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from attest_testing.idp import ISSUER, TestIdp
from attest_testing.support import Actors, Clock, LiveServer, make_settings, start_server

TENANT = f"t-idp-{uuid.uuid4().hex[:8]}"
IDP = TestIdp()


@pytest.fixture(scope="module")
def idp_server(
    live: LiveServer, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """An instance whose provider file makes TENANT trust IDP (de_aml -> IAL2, 1 year)."""
    root = tmp_path_factory.mktemp("idp")
    (root / "idp.jwks").write_text(json.dumps(IDP.jwks), encoding="utf-8")
    providers = {
        "providers": [
            {
                "tenant": TENANT,
                "issuer": ISSUER,
                "jwks_file": "idp.jwks",
                "trust_frameworks": {"de_aml": "IAL2"},
                "max_age_days": 365,
            }
        ]
    }
    (root / "providers.json").write_text(json.dumps(providers), encoding="utf-8")
    settings = make_settings(
        database_url,
        root,
        keystore=live.settings.keystore,
        keystore_passphrase=live.settings.keystore_passphrase,
        pairwise_secret=live.settings.pairwise_secret,
        bootstrap_admin_key=live.settings.bootstrap_admin_key,
        idp_providers=str(root / "providers.json"),
    )
    server = start_server(settings, Clock())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def operator(idp_server: LiveServer, actors: Actors) -> Iterator[httpx.Client]:
    key = actors.key("subjects:write", "subjects:read", "evidence:write", tenant=TENANT)
    with idp_server.client(key) as client:
        yield client


def _subject(operator: httpx.Client) -> str:
    response = operator.post("/v1/subjects", json={"external_ref": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    subject_id: str = response.json()["id"]
    return subject_id


def _submit(operator: httpx.Client, subject_id: str, token: str) -> dict[str, Any]:
    response = operator.post(
        f"/v1/subjects/{subject_id}/evidence", json={"type": "idp_assertion", "assertion": token}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _codes(evidence: dict[str, Any]) -> list[str]:
    return [reason.split(":")[0] for reason in evidence["reasons"]]


def _claims(server: LiveServer, **changes: Any) -> dict[str, Any]:
    return IDP.claims(audience=server.settings.issuer, now=server.clock(), **changes)


def test_a_trusted_assertion_is_verified(
    idp_server: LiveServer, operator: httpx.Client, actors: Actors
) -> None:
    subject_id = _subject(operator)
    claims = _claims(idp_server)
    evidence = _submit(operator, subject_id, IDP.sign(claims))
    assert evidence["status"] == "verified", evidence
    assert evidence["assurance"] == "IAL2"
    assert evidence["attributes"] == {"citizenship": ["DE"]}
    # The evidence dates from the provider's verification, ten days ago.
    verified = claims["verified_claims"]["verification"]["time"]
    assert evidence["verified_at"] == verified
    view = operator.get(f"/v1/subjects/{subject_id}").json()
    assert [a["value"] for a in view["attributes"]["citizenship"]] == ["DE"]
    with idp_server.client(actors.key("audit:read", tenant=TENANT)) as auditor:
        trail = auditor.get("/v1/audit/events", params={"subject_id": subject_id}).json()
    assert [e["type"] for e in trail["events"]] == ["subject.onboarded", "evidence.verified"]
    for personal in ("Erika", "user-4711", claims["jti"]):
        assert personal not in json.dumps(trail)


def test_untrusted_key(idp_server: LiveServer, operator: httpx.Client) -> None:
    impostor = TestIdp(kid=IDP.kid)
    evidence = _submit(operator, _subject(operator), impostor.sign(_claims(idp_server)))
    assert (evidence["status"], _codes(evidence)) == ("rejected", ["untrusted_key"])
    assert evidence["attributes"] == {}


def test_unmapped_trust_framework(idp_server: LiveServer, operator: httpx.Client) -> None:
    token = IDP.sign(_claims(idp_server, framework="uk_tfida"))
    assert _codes(_submit(operator, _subject(operator), token)) == ["trust_framework_unmapped"]


def test_expired(idp_server: LiveServer, operator: httpx.Client) -> None:
    token = IDP.sign(_claims(idp_server))
    subject_id = _subject(operator)
    try:
        idp_server.clock.advance(minutes=10)
        assert _codes(_submit(operator, subject_id, token)) == ["expired"]
    finally:
        idp_server.clock.offset = timedelta()


def test_replayed(idp_server: LiveServer, operator: httpx.Client) -> None:
    token = IDP.sign(_claims(idp_server))
    assert _submit(operator, _subject(operator), token)["status"] == "verified"
    # The same assertion again, for another subject or the same one: a replay.
    assert _codes(_submit(operator, _subject(operator), token)) == ["replayed"]


def test_wrong_audience(idp_server: LiveServer, operator: httpx.Client) -> None:
    claims = _claims(idp_server)
    claims["aud"] = "https://another-attest.example"
    assert _codes(_submit(operator, _subject(operator), IDP.sign(claims))) == ["wrong_audience"]


def test_a_provider_is_trusted_only_by_its_tenant(idp_server: LiveServer, actors: Actors) -> None:
    key = actors.key("subjects:write", "evidence:write")  # the test's own tenant
    with idp_server.client(key) as other:
        token = IDP.sign(_claims(idp_server))
        assert _codes(_submit(other, _subject(other), token)) == ["untrusted_issuer"]


def test_verification_age_flips_with_the_clock(
    idp_server: LiveServer, operator: httpx.Client
) -> None:
    subject_id = _subject(operator)
    evidence = _submit(operator, subject_id, IDP.sign(_claims(idp_server)))
    # Ten days old at submission, limit one year: it stops counting after 355 more days.
    try:
        idp_server.clock.advance(days=354)
        assert operator.get(f"/v1/subjects/{subject_id}").json()["attributes"] != {}
        idp_server.clock.advance(days=2)
        assert operator.get(f"/v1/subjects/{subject_id}").json()["attributes"] == {}
    finally:
        idp_server.clock.offset = timedelta()
    assert evidence["reverify_at"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "idp_assertion"}, "$.assertion"),
        ({"type": "idp_assertion", "assertion": "not-a-jwt"}, "$.assertion"),
        ({"type": "idp_assertion", "assertion": "a.b.c", "assurance": "IAL3"}, "$.assurance"),
        (
            {"type": "idp_assertion", "assertion": "a.b.c", "attributes": {"citizenship": ["US"]}},
            "$.attributes",
        ),
        ({"type": "idp_assertion", "assertion": "x" * 20_000}, "$.assertion"),
    ],
)
def test_malformed_input_is_a_problem(
    operator: httpx.Client, body: dict[str, Any], field: str
) -> None:
    response = operator.post(f"/v1/subjects/{_subject(operator)}/evidence", json=body)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if response.status_code == 422:
        assert field in [e["field"] for e in response.json()["errors"]]


def test_batch_refuses_idp_assertions(idp_server: LiveServer, operator: httpx.Client) -> None:
    token = IDP.sign(_claims(idp_server))
    item = {"external_ref": "b-1", "evidence": [{"type": "idp_assertion", "assertion": token}]}
    answer = operator.post("/v1/subjects/batch", json={"items": [item]}).json()
    assert answer["items"][0]["status"] == "invalid"


def test_a_bad_provider_file_stops_start_up(tmp_path: Path, database_url: str) -> None:
    from attest.app import create_app
    from attest.settings import SettingsError

    (tmp_path / "providers.json").write_text('{"providers": [{"tenant": 5}]}', encoding="utf-8")
    settings = make_settings(database_url, tmp_path, idp_providers=str(tmp_path / "providers.json"))
    with pytest.raises(SettingsError, match=r"ATTEST_IDP_PROVIDERS: .*providers\[0\]"):
        create_app(settings)


async def _used_jtis(database_url: str, jtis: list[str]) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT jti FROM idp_assertion_jtis WHERE jti = ANY($1::text[])", jtis
        )
    finally:
        await conn.close()
    return {row["jti"] for row in rows}


def test_used_assertions_are_forgotten_once_expired(
    idp_server: LiveServer, operator: httpx.Client, database_url: str
) -> None:
    old = _claims(idp_server)
    assert _submit(operator, _subject(operator), IDP.sign(old))["status"] == "verified"
    assert asyncio.run(_used_jtis(database_url, [old["jti"]])) == {old["jti"]}
    try:
        idp_server.clock.advance(minutes=16)  # 5 min lifetime + 10 min margin, and then some
        new = _claims(idp_server)
        assert _submit(operator, _subject(operator), IDP.sign(new))["status"] == "verified"
        assert asyncio.run(_used_jtis(database_url, [old["jti"], new["jti"]])) == {new["jti"]}
        # The forgotten assertion is still refused, by its exp.
        assert _codes(_submit(operator, _subject(operator), IDP.sign(old))) == ["expired"]
    finally:
        idp_server.clock.offset = timedelta()
