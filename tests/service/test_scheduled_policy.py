"""A policy version scheduled with effective_at: published (and audited) at once, governing
from that instant, and at the switch the outstanding tokens are re-evaluated. Driven by the
server's injected clock."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import httpx
from attest_testing.service import assert_problem, events, status_outcome, submit
from attest_testing.support import US_PASSPORT, Actors, LiveServer


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(token.split(".")[1] + "=" * (-len(token.split(".")[1]) % 4))
    )
    return claims


def test_a_scheduled_version_governs_from_its_instant_and_reaches_issued_tokens(
    live: LiveServer, admin: httpx.Client, actors: Actors
) -> None:
    operator = actors.client("subjects:write", "evidence:write", "tokens:issue", name="op")
    reviewer = actors.client("evidence:review", name="reviewer")
    subject = operator.post("/v1/subjects", json={"external_ref": f"s-{uuid.uuid4().hex}"})
    evidence = submit(operator, subject.json()["id"], US_PASSPORT)
    assert reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={}).status_code == 200
    subject_id = subject.json()["id"]

    name = f"sched-{uuid.uuid4().hex[:8]}"
    audience = f"model:{name}"
    base = admin.get("/v1/policies/us-nationals-only").json()["document"]
    first = {k: v for k, v in base.items() if k not in ("name", "version")}
    assert admin.put(f"/v1/policies/{name}", json=first).status_code == 201
    assert admin.put(f"/v1/audiences/{audience}", json={"policy": name}).status_code == 201
    before = operator.post("/v1/tokens", json={"subject_id": subject_id, "audience": audience})
    assert before.status_code == 201, before.text

    # A clarified order, from five minutes from now: US nationals who are not citizens only.
    switch = live.clock() + timedelta(minutes=5)
    second = {
        **first,
        "rule": {"attribute": "us_person_status", "any_of": ["us_national"]},
        "effective_at": switch.isoformat(),
    }
    past = {**second, "effective_at": (live.clock() - timedelta(minutes=1)).isoformat()}
    assert_problem(admin.put(f"/v1/policies/{name}", json=past), 422)
    published = admin.put(f"/v1/policies/{name}", json=second)
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 2
    [event] = [e for e in events(admin, type="policy.published") if e["data"]["policy"] == name
               and e["data"]["version"] == 2]  # fmt: skip
    assert event["data"]["effective_at"] == switch.isoformat()

    still = operator.post("/v1/tokens", json={"subject_id": subject_id, "audience": audience})
    assert still.status_code == 201, still.text
    assert _claims(still.json()["token"])["eligibility"]["policy_version"] == 1  # type: ignore[index]
    tokens = [before.json()["token"], still.json()["token"]]
    assert [status_outcome(live, t, audience) for t in tokens] == ["valid", "valid"]

    live.clock.advance(minutes=5, seconds=1)
    after = operator.post("/v1/tokens", json={"subject_id": subject_id, "audience": audience})
    body = assert_problem(after, 403, "not-eligible")
    assert body["policy_version"] == 2
    deadline = time.monotonic() + live.settings.status_list_ttl
    while [status_outcome(live, t, audience) for t in tokens] != ["revoked", "revoked"]:
        assert time.monotonic() < deadline, "the switch did not reach the issued tokens"
        time.sleep(0.1)
