"""Status lists on the issuer: every token has an entry, GET /v1/status-lists/{id} serves
the Status List Token, and each path that revokes reaches tokens already issued; checked
with attest.verify.StatusLists, the way a downstream service checks them."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from attest_testing.service import assert_problem, events, status_outcome, submit, token_for
from attest_testing.support import US_PASSPORT, Actors, LiveServer

from attest.verify import StatusLists, Verifier

FABLE = "model:fable-5"


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def claims_of(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(_b64(token.split(".")[1]))
    return payload


def entries(list_token: str) -> bytes:
    return zlib.decompress(_b64(claims_of(list_token)["status_list"]["lst"]))


def entry(list_token: str, idx: int) -> int:
    return (entries(list_token)[idx // 4] >> (2 * (idx % 4))) & 3


@pytest.fixture
def holder(actors: Actors) -> tuple[httpx.Client, httpx.Client]:
    operator = actors.client(
        "subjects:write",
        "subjects:read",
        "evidence:write",
        "tokens:issue",
        "subjects:revoke",
        name="operator",
    )
    reviewer = actors.client("evidence:review", name="reviewer")
    return operator, reviewer


def eligible(operator: httpx.Client, reviewer: httpx.Client) -> tuple[str, str]:
    """(subject id, evidence id) of a US citizen with approved IAL2 evidence."""
    made = operator.post("/v1/subjects", json={"external_ref": f"st-{uuid.uuid4().hex}"})
    assert made.status_code == 201, made.text
    evidence = submit(operator, made.json()["id"], US_PASSPORT)
    approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
    assert approved.status_code == 200, approved.text
    return made.json()["id"], evidence["id"]


def issue(operator: httpx.Client, subject_id: str, audience: str = FABLE) -> str:
    response = token_for(operator, subject_id, audience)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def test_every_token_has_an_entry_and_the_list_is_served_as_the_draft_says(
    live: LiveServer, holder: tuple[httpx.Client, httpx.Client]
) -> None:
    subject_id, _ = eligible(*holder)
    token = issue(holder[0], subject_id)
    ref = claims_of(token)["status"]["status_list"]
    assert isinstance(ref["idx"], int)
    assert ref["uri"].startswith(live.settings.issuer + "/v1/status-lists/")

    response = httpx.get(ref["uri"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/statuslist+jwt")
    ttl = live.settings.status_list_ttl
    assert response.headers["cache-control"] == f"public, max-age={ttl}"
    header = json.loads(_b64(response.text.split(".")[0]))
    assert header["typ"] == "statuslist+jwt"
    assert set(header) == {"alg", "typ", "kid"}
    claims = claims_of(response.text)
    assert claims["sub"] == ref["uri"]
    assert claims["ttl"] == ttl
    assert claims["exp"] > claims["iat"]
    assert claims["status_list"]["bits"] == 2
    assert len(entries(response.text)) == live.settings.status_list_size // 4
    assert entry(response.text, ref["idx"]) == 0
    assert status_outcome(live, token, FABLE) == "valid"

    # Ready bytes: the same answer until an entry changes, and a 304 for its ETag.
    again = httpx.get(ref["uri"])
    assert again.content == response.content
    cached = httpx.get(ref["uri"], headers={"If-None-Match": response.headers["etag"]})
    assert cached.status_code == 304


def test_indexes_look_random_and_never_repeat(
    holder: tuple[httpx.Client, httpx.Client],
) -> None:
    subject_id, _ = eligible(*holder)
    refs = [claims_of(issue(holder[0], subject_id))["status"]["status_list"] for _ in range(30)]
    pairs = [(r["uri"], r["idx"]) for r in refs]
    assert len(set(pairs)) == len(pairs)
    indexes = [r["idx"] for r in refs]
    # A counter would give consecutive indexes; a keyed permutation does not.
    assert sum(b - a == 1 for a, b in itertools.pairwise(indexes)) < 5


def test_revoking_the_subject_revokes_its_outstanding_tokens(
    live: LiveServer, admin: httpx.Client, holder: tuple[httpx.Client, httpx.Client]
) -> None:
    subject_id, _ = eligible(*holder)
    tokens = [issue(holder[0], subject_id) for _ in range(2)]
    assert holder[0].post(f"/v1/subjects/{subject_id}/revocations", json={}).status_code == 201
    assert [status_outcome(live, t, FABLE) for t in tokens] == ["revoked", "revoked"]
    [event] = events(admin, subject_id=subject_id, type="subject.revoked")
    assert event["data"]["tokens_revoked"] == 2


def test_withdrawing_evidence_revokes_the_tokens_that_relied_on_it(
    live: LiveServer, admin: httpx.Client, holder: tuple[httpx.Client, httpx.Client]
) -> None:
    operator, reviewer = holder
    subject_id, evidence_id = eligible(operator, reviewer)
    other_id, _ = eligible(operator, reviewer)
    token, bystander = issue(operator, subject_id), issue(operator, other_id)
    withdrawn = reviewer.post(f"/v1/evidence/{evidence_id}/withdrawals", json={})
    assert withdrawn.status_code == 200, withdrawn.text
    assert status_outcome(live, token, FABLE) == "revoked"
    assert status_outcome(live, bystander, FABLE) == "valid"
    [event] = events(admin, subject_id=subject_id, type="evidence.withdrawn")
    assert event["data"]["tokens_revoked"] == 1


def test_one_token_is_revoked_by_its_jti_with_the_scope_in_its_tenant(
    live: LiveServer,
    admin: httpx.Client,
    actors: Actors,
    holder: tuple[httpx.Client, httpx.Client],
) -> None:
    subject_id, _ = eligible(*holder)
    token, kept = issue(holder[0], subject_id), issue(holder[0], subject_id)
    jti = claims_of(token)["jti"]
    url = f"/v1/tokens/{jti}/revocations"
    assert_problem(holder[0].post(url, json={}), 403, "insufficient-scope")
    stranger = actors.client("tokens:revoke", tenant=f"t-{uuid.uuid4().hex[:10]}", name="x")
    assert_problem(stranger.post(url, json={}), 404, "not-found")
    revoker = actors.client("tokens:revoke", name="revoker")
    done = revoker.post(url, json={"reason": "reported stolen"})
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "revoked"
    assert done.json()["changed"] is True
    assert revoker.post(url, json={}).json()["changed"] is False
    assert status_outcome(live, token, FABLE) == "revoked"
    assert status_outcome(live, kept, FABLE) == "valid"
    first, second = events(admin, subject_id=subject_id, type="token.revoked")
    assert first["data"] == {"jti": jti, "changed": True, "reason_given": True}
    assert second["data"] == {"jti": jti, "changed": False, "reason_given": False}
    assert_problem(revoker.post("/v1/tokens/no-such-jti/revocations", json={}), 404)


def test_the_list_as_it_was_at_a_time(
    live: LiveServer, holder: tuple[httpx.Client, httpx.Client]
) -> None:
    subject_id, _ = eligible(*holder)
    token = issue(holder[0], subject_id)
    ref = claims_of(token)["status"]["status_list"]
    before = int(live.clock().timestamp())
    live.clock.advance(seconds=5)
    holder[0].post(f"/v1/subjects/{subject_id}/revocations", json={})
    after = int(live.clock().timestamp()) + 1
    then = httpx.get(ref["uri"], params={"time": before})
    now = httpx.get(ref["uri"], params={"time": after})
    assert then.status_code == now.status_code == 200
    assert entry(then.text, ref["idx"]) == 0
    assert entry(now.text, ref["idx"]) == 1
    assert entry(httpx.get(ref["uri"]).text, ref["idx"]) == 1


@pytest.mark.parametrize("when", ["1099511627775", "253402300800", "-1", "soon"])
def test_a_time_past_what_a_date_can_hold_is_a_400_problem(live: LiveServer, when: str) -> None:
    # Found by schemathesis: ?time=2**40-1 passed validation and failed in datetime (a 500).
    response = httpx.get(f"{live.base_url}/v1/status-lists/0", params={"time": when})
    assert_problem(response, 400)


@pytest.mark.parametrize("bad", ["abc", "0x1", "-1", "999999999", "1.5"])
def test_an_unknown_list_is_a_404_problem(live: LiveServer, bad: str) -> None:
    assert_problem(httpx.get(f"{live.base_url}/v1/status-lists/{bad}"), 404)


def test_a_new_policy_version_revokes_tokens_no_longer_eligible_within_one_ttl(
    live: LiveServer,
    admin: httpx.Client,
    holder: tuple[httpx.Client, httpx.Client],
    onboard_lpr: Callable[[], str],
) -> None:
    operator = holder[0]
    # A policy and an audience of this test's own: US persons first, then citizens only.
    name = f"st-{uuid.uuid4().hex[:10]}"
    audience = f"model:{name}"
    persons = admin.get("/v1/policies/us-persons").json()["document"]
    nationals = admin.get("/v1/policies/us-nationals-only").json()["document"]
    strip = ("name", "version")
    assert (
        admin.put(
            f"/v1/policies/{name}", json={k: v for k, v in persons.items() if k not in strip}
        ).status_code
        == 201
    )
    assert admin.put(f"/v1/audiences/{audience}", json={"policy": name}).status_code == 201
    citizen, _ = eligible(*holder)
    resident = onboard_lpr()
    kept, lost = issue(operator, citizen, audience), issue(operator, resident, audience)
    assert [status_outcome(live, t, audience) for t in (kept, lost)] == ["valid", "valid"]

    published = admin.put(
        f"/v1/policies/{name}", json={k: v for k, v in nationals.items() if k not in strip}
    )
    assert published.status_code == 201, published.text
    deadline = time.monotonic() + live.settings.status_list_ttl
    while status_outcome(live, lost, audience) != "revoked":
        assert time.monotonic() < deadline, "not revoked within one status-list ttl"
        time.sleep(0.1)
    assert status_outcome(live, kept, audience) == "valid"
    done = [
        e for e in events(admin, type="tokens.reevaluated") if e["data"]["audience"] == audience
    ]
    assert len(done) == 1


@pytest.fixture
def onboard_lpr(holder: tuple[httpx.Client, httpx.Client]) -> Callable[[], str]:
    operator, reviewer = holder

    def make() -> str:
        made = operator.post("/v1/subjects", json={"external_ref": f"lpr-{uuid.uuid4().hex}"})
        card = {
            "type": "manual_review",
            "document_type": "permanent_resident_card",
            "attributes": {"citizenship": ["MX"], "us_person_status": "lawful_permanent_resident"},
            "assurance": "IAL2",
        }
        evidence = submit(operator, made.json()["id"], card)
        assert reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={}).status_code == 200
        subject_id: str = made.json()["id"]
        return subject_id

    return make


async def test_a_model_gateway_refuses_a_revoked_token_through_the_middleware(
    live: LiveServer, holder: tuple[httpx.Client, httpx.Client]
) -> None:
    from litestar import Litestar, get
    from litestar.middleware import DefineMiddleware

    from attest.verify import AttestMiddleware, RemoteJWKS

    operator = holder[0]
    subject_id, _ = eligible(*holder)
    token = issue(operator, subject_id)
    verifier = Verifier(
        issuer=live.settings.issuer,
        audience=FABLE,
        keys=RemoteJWKS(live.base_url + "/.well-known/jwks.json"),
        status=StatusLists(max_ttl=1),
        now=lambda: live.clock().timestamp(),
    )

    @get("/v1/models/fable-5")
    async def model() -> dict[str, str]:
        return {"ok": "served"}

    gateway = Litestar(
        route_handlers=[model],
        middleware=[DefineMiddleware(AttestMiddleware, verifier=verifier, protect=["/v1/models"])],
    )
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/v1/models/fable-5", headers=headers)).status_code == 200
        revoked = await asyncio.to_thread(
            operator.post, f"/v1/subjects/{subject_id}/revocations", json={}
        )
        assert revoked.status_code == 201
        live.clock.advance(seconds=2)  # past the gateway's cached list (max_ttl=1)
        refused = await client.get("/v1/models/fable-5", headers=headers)
        assert refused.status_code == 401
        assert "revoked" in refused.headers["www-authenticate"]
