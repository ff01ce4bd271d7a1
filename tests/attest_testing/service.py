"""Small helpers shared by the service test modules (problem checks, audit reads, evidence)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from attest.verify import InvalidToken, StaticJWKS, StatusLists, Verifier
from attest_testing.support import US_PASSPORT, LiveServer

PROBLEM = "application/problem+json"
TYPE_PREFIX = "urn:attest:problem:"

LPR_CARD = {
    "type": "manual_review",
    "document_type": "permanent_resident_card",
    "attributes": {"citizenship": ["MX"], "us_person_status": "lawful_permanent_resident"},
    "assurance": "IAL2",
}


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem with the given status (and stable code, when given)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body, dict)
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["type"], str)
    assert body["type"].startswith(TYPE_PREFIX)
    if code is not None:
        assert body["type"] == TYPE_PREFIX + code, body
    return body


def events(admin: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    """Every audit event matching the filters, following next_cursor."""
    params = {k: v for k, v in filters.items() if v is not None}
    params.setdefault("limit", 1000)
    found: list[dict[str, Any]] = []
    while True:
        response = admin.get("/v1/audit/events", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        found.extend(body["events"])
        if body["next_cursor"] is None:
            return found
        params["cursor"] = body["next_cursor"]


class AuditTrail:
    """The whole audit trail of one server's database, read forward from a watermark.

    Events take log positions in the order they commit (the sequencer, DESIGN.md "Audit
    and transparency log"), so "the events appended since ``mark()``" is every event at a
    position from the mark on, plus those not sequenced yet: ``mark()`` first waits until
    the sequencer has reached every event committed so far, then answers the next position.
    Across tenants and types: use it where a test asserts something about *every* event it
    caused (or that none was caused); read a test's own events by ``subject_id`` or with a
    tenant-scoped ``audit:read`` client. The server's clock does not matter here.
    """

    def __init__(self, admin: httpx.Client) -> None:
        self.admin = admin
        self._head = 0

    def mark(self) -> int:
        """The next log position, once every event committed so far is sequenced."""
        deadline = time.monotonic() + 10
        while True:
            newer = events(self.admin, cursor=self._head)
            if all(e["log_index"] is not None for e in newer):
                break
            assert time.monotonic() < deadline, "the log sequencer did not catch up"
            time.sleep(0.05)
        if newer:
            self._head = newer[-1]["log_index"] + 1
        return self._head

    def since(self, mark: int, **filters: Any) -> list[dict[str, Any]]:
        """Every event appended after ``mark`` (any tenant), matching the filters."""
        return events(self.admin, cursor=mark, **filters)


def wait_sequenced(admin: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    """The matching events once every one of them has its log position (in log order)."""
    deadline = time.monotonic() + 10
    while True:
        found = events(admin, **filters)
        if all(e["log_index"] is not None for e in found):
            return found
        assert time.monotonic() < deadline, "the log sequencer did not catch up"
        time.sleep(0.05)


def event_types(admin: httpx.Client, subject_id: str) -> list[str]:
    return [e["type"] for e in events(admin, subject_id=subject_id)]


def submit(client: httpx.Client, subject_id: str, evidence: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/subjects/{subject_id}/evidence", json=evidence)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def approved_subject(
    operator: httpx.Client,
    reviewer: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
    evidence: dict[str, Any],
) -> dict[str, Any]:
    subject = onboard()
    submitted = submit(operator, subject["id"], evidence)
    assert submitted["status"] == "pending_approval"
    approved = reviewer.post(f"/v1/evidence/{submitted['id']}/approvals", json={})
    assert approved.status_code == 200, approved.text
    return subject


def token_for(client: httpx.Client, subject_id: str, audience: str, **extra: Any) -> httpx.Response:
    return client.post("/v1/tokens", json={"subject_id": subject_id, "audience": audience, **extra})


def jwks(live: LiveServer) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(live.base_url + "/.well-known/jwks.json").json()
    return document


def verifier(live: LiveServer, audience: str) -> Verifier:
    return Verifier(issuer=live.settings.issuer, audience=audience, keys=StaticJWKS(jwks(live)))


def status_outcome(live: LiveServer, token: str, audience: str) -> str:
    """What a downstream verifier with StatusLists says of ``token`` now, at the server's
    clock: "valid" or the reason code. A fresh verifier each time: no cached list."""
    verifier = Verifier(
        issuer=live.settings.issuer,
        audience=audience,
        keys=StaticJWKS(jwks(live)),
        status=StatusLists(),
        now=lambda: live.clock().timestamp(),
    )
    try:
        verifier.verify(token)
    except InvalidToken as exc:
        return exc.code
    return "valid"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rfc7638(jwk: dict[str, Any]) -> str:
    members = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


__all__ = [
    "LPR_CARD",
    "PROBLEM",
    "US_PASSPORT",
    "AuditTrail",
    "approved_subject",
    "assert_problem",
    "b64url",
    "event_types",
    "events",
    "jwks",
    "rfc7638",
    "status_outcome",
    "submit",
    "token_for",
    "unique",
    "verifier",
]
