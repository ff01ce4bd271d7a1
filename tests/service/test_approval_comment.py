"""The second reviewer's approval comment is stored and shown, never silently dropped,
and never written to the audit trail (free text may hold personal data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from attest_testing.service import assert_problem, events, submit
from attest_testing.support import US_PASSPORT


def _pending(operator: httpx.Client, onboard: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    subject = onboard()
    evidence = submit(operator, subject["id"], US_PASSPORT)
    assert evidence["status"] == "pending_approval"
    return evidence


def test_the_comment_is_kept_on_the_evidence_and_only_its_presence_is_audited(
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    evidence = _pending(operator, onboard)
    comment = "passport photo page matches; checked against the holder in person"
    approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={"comment": comment})
    assert approved.status_code == 200, approved.text
    assert approved.json()["approval_comment"] == comment

    shown = reviewer.get(f"/v1/subjects/{evidence['subject_id']}")
    assert shown.status_code == 200, shown.text
    [stored] = shown.json()["evidence"]
    assert stored["approval_comment"] == comment

    [event] = events(admin, subject_id=evidence["subject_id"], type="evidence.approved")
    assert event["data"]["comment_given"] is True
    assert comment not in str(event)


def test_an_approval_without_a_comment_says_so(
    operator: httpx.Client,
    reviewer: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    evidence = _pending(operator, onboard)
    approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
    assert approved.status_code == 200, approved.text
    assert approved.json()["approval_comment"] is None
    [event] = events(admin, subject_id=evidence["subject_id"], type="evidence.approved")
    assert event["data"]["comment_given"] is False


def test_an_over_long_or_empty_comment_is_refused_and_changes_nothing(
    operator: httpx.Client,
    reviewer: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    evidence = _pending(operator, onboard)
    url = f"/v1/evidence/{evidence['id']}/approvals"
    assert_problem(reviewer.post(url, json={"comment": "x" * 501}), 400, "invalid-request")
    assert_problem(reviewer.post(url, json={"comment": ""}), 400, "invalid-request")
    still = reviewer.get(f"/v1/subjects/{evidence['subject_id']}").json()["evidence"]
    assert [e["status"] for e in still] == ["pending_approval"]
