"""Suspending an audience at once, and noticing shared credentials (DESIGN.md, "Policies and
audiences"): what the issuer answers, what the status lists say, what is recorded."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from attest_testing.service import assert_problem, events, status_outcome, submit
from attest_testing.support import US_PASSPORT, Actors, LiveServer
from cryptography.hazmat.primitives.asymmetric import ec


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def holder_jwk() -> dict[str, str]:
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


@pytest.fixture
def audience(admin: httpx.Client) -> str:
    name = f"model:ctl-{uuid.uuid4().hex[:10]}"
    bound = admin.put(f"/v1/audiences/{name}", json={"policy": "us-nationals-only"})
    assert bound.status_code == 201, bound.text
    return name


@pytest.fixture
def people(actors: Actors) -> tuple[httpx.Client, str]:
    """(operator, subject id): a US citizen with approved IAL2 evidence."""
    operator = actors.client(
        "subjects:write", "subjects:read", "evidence:write", "tokens:issue", name="operator"
    )
    reviewer = actors.client("evidence:review", name="reviewer")
    made = operator.post("/v1/subjects", json={"external_ref": f"c-{uuid.uuid4().hex}"})
    evidence = submit(operator, made.json()["id"], US_PASSPORT)
    assert reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={}).status_code == 200
    return operator, made.json()["id"]


def ask(operator: httpx.Client, subject_id: str, audience: str, **extra: Any) -> httpx.Response:
    return operator.post(
        "/v1/tokens", json={"subject_id": subject_id, "audience": audience, **extra}
    )


def test_suspension_stops_issuance_and_suspends_outstanding_tokens_until_lifted(
    live: LiveServer,
    admin: httpx.Client,
    actors: Actors,
    audience: str,
    people: tuple[httpx.Client, str],
) -> None:
    operator, subject_id = people
    tokens = [ask(operator, subject_id, audience).json()["token"] for _ in range(3)]
    url = f"/v1/audiences/{audience}/suspension"

    # Platform configuration: a tenant's client with the scope is not enough.
    tenant_writer = actors.client("audiences:write", name="writer")
    assert_problem(tenant_writer.post(url, json={}), 403)

    suspended = admin.post(url, json={"reason": "government order 2026-17"})
    assert suspended.status_code == 201, suspended.text
    assert suspended.json()["suspended"] is True
    assert suspended.json()["tokens_suspended"] == 3
    assert [status_outcome(live, t, audience) for t in tokens] == ["suspended"] * 3
    body = assert_problem(ask(operator, subject_id, audience), 403, "audience-suspended")
    assert body["reasons"]
    denied = events(admin, subject_id=subject_id, type="token.denied")
    assert denied[-1]["data"]["reasons"] == ["audience_suspended"]
    [event] = [
        e for e in events(admin, type="audience.suspended") if e["data"]["audience"] == audience
    ]
    assert event["data"]["tokens_suspended"] == 3
    assert "government order" not in json.dumps(event)
    assert admin.get(f"/v1/audiences/{audience}").json()["suspended"] is True

    # One of them is revoked while the audience is suspended: lifting does not revive it.
    revoker = actors.client("tokens:revoke", name="revoker")
    jti = json.loads(base64.urlsafe_b64decode(tokens[0].split(".")[1] + "==="))["jti"]
    assert revoker.post(f"/v1/tokens/{jti}/revocations", json={}).status_code == 201

    resumed = admin.delete(url)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["suspended"] is False
    assert resumed.json()["tokens_restored"] == 2
    assert [status_outcome(live, t, audience) for t in tokens] == ["revoked", "valid", "valid"]
    assert ask(operator, subject_id, audience).status_code == 201
    assert admin.delete(url).json()["tokens_restored"] == 0  # lifting twice changes nothing


def test_suspending_an_unknown_audience_is_a_404(admin: httpx.Client) -> None:
    assert_problem(admin.post("/v1/audiences/model:nope-404/suspension", json={}), 404)


def test_a_holder_key_limit_denies_the_key_too_many_and_records_the_signal(
    admin: httpx.Client, people: tuple[httpx.Client, str]
) -> None:
    operator, subject_id = people
    name = f"model:keys-{uuid.uuid4().hex[:10]}"
    bound = admin.put(
        f"/v1/audiences/{name}", json={"policy": "us-nationals-only", "max_holder_keys": 2}
    )
    assert bound.status_code == 201, bound.text
    assert bound.json()["max_holder_keys"] == 2
    first, second, third = holder_jwk(), holder_jwk(), holder_jwk()
    assert ask(operator, subject_id, name, holder_jwk=first).status_code == 201
    assert ask(operator, subject_id, name, holder_jwk=second).status_code == 201
    assert ask(operator, subject_id, name, holder_jwk=first).status_code == 201  # seen key
    refused = assert_problem(ask(operator, subject_id, name, holder_jwk=third), 403, "not-eligible")
    assert [r["code"] for r in refused["reason_details"]] == ["holder_key_limit"]
    [signal] = events(admin, subject_id=subject_id, type="subject.sharing_suspected")
    assert signal["data"]["signal"] == "holder_key_limit"
    assert signal["data"]["holder_keys"] == 3
    assert signal["data"]["limit"] == 2
    keys = operator.get(f"/v1/subjects/{subject_id}").json()["holder_keys"]
    assert sorted(k["tokens"] for k in keys) == [1, 2]
    assert {k["audience"] for k in keys} == {name}
    metrics = httpx.get(str(operator.base_url) + "/metrics").text
    assert 'attest_sharing_suspected_total{audience="' + name + '",signal="holder_key_limit"}' in (
        metrics
    )


def test_tokens_asked_for_by_a_second_client_are_flagged_not_denied(
    admin: httpx.Client, actors: Actors, audience: str, people: tuple[httpx.Client, str]
) -> None:
    operator, subject_id = people
    other = actors.client("tokens:issue", name="second gateway")
    assert ask(operator, subject_id, audience).status_code == 201
    assert ask(operator, subject_id, audience).status_code == 201
    assert events(admin, subject_id=subject_id, type="subject.sharing_suspected") == []
    assert ask(other, subject_id, audience).status_code == 201
    [signal] = events(admin, subject_id=subject_id, type="subject.sharing_suspected")
    assert signal["data"]["signal"] == "multiple_clients"
    assert signal["data"]["clients"] == 2
    assert ask(other, subject_id, audience).status_code == 201  # flagged once per client
    assert len(events(admin, subject_id=subject_id, type="subject.sharing_suspected")) == 1


def test_attest_audiences_suspend_and_resume(
    live: LiveServer,
    audience: str,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from attest.cli import main

    key = tmp_path / "admin-key"
    key.write_text(live.admin_key)
    common = ["--url", live.base_url, "--api-key-file", str(key)]
    assert main(["audiences", "suspend", audience, "--reason", "order", *common]) == 0
    assert json.loads(capsys.readouterr().out)["suspended"] is True
    assert main(["audiences", "resume", audience, *common]) == 0
    assert json.loads(capsys.readouterr().out)["suspended"] is False
    assert main(["audiences", "suspend", "model:no-such", *common]) == 1
    assert "404" in capsys.readouterr().err
