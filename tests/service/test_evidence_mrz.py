"""document_mrz evidence over HTTP: verified by the service, one reason per failed rule,
the document number only as a keyed hash, expiry against the injected clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from attest_testing.mrz import mrz_evidence, td3, unique_number
from attest_testing.service import assert_problem, event_types, events, submit, token_for
from attest_testing.support import LiveServer


def test_a_valid_passport_mrz_is_verified_and_supports_citizenship(
    operator: httpx.Client, admin: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    subject = onboard()
    number = unique_number()
    evidence = submit(operator, subject["id"], mrz_evidence(td3(number=number)))
    assert evidence["status"] == "verified", evidence
    assert evidence["reasons"] == []
    assert evidence["attributes"] == {"citizenship": ["DE"]}
    assert evidence["document_type"] is None
    view = operator.get(f"/v1/subjects/{subject['id']}").json()
    assert [a["value"] for a in view["attributes"]["citizenship"]] == ["DE"]
    # Neither the document number nor the birth date nor the name is echoed or audited.
    trail = str(events(admin, subject_id=subject["id"]))
    for secret in (number, "640812", "MUSTERMANN", "ERIKA"):
        assert secret not in str(view)
        assert secret not in trail
    assert "evidence.verified" in event_types(admin, subject["id"])


async def test_only_a_keyed_hash_of_the_number_is_stored(
    live: LiveServer, operator: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    number = unique_number()
    evidence = submit(operator, onboard()["id"], mrz_evidence(td3(number=number)))
    conn = await asyncpg.connect(live.settings.database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM evidence WHERE id = $1", uuid.UUID(evidence["id"]))
    finally:
        await conn.close()
    assert row is not None
    assert len(row["document_hash"]) == 64
    assert number not in str(dict(row))
    assert "640812" not in str(dict(row))


def test_the_same_document_for_another_subject_is_detected(
    operator: httpx.Client, admin: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    text = td3(number=unique_number())
    first, second = onboard(), onboard()
    assert submit(operator, first["id"], mrz_evidence(text))["status"] == "verified"
    # The same subject may present its document again (re-verification).
    assert submit(operator, first["id"], mrz_evidence(text))["status"] == "verified"
    reused = submit(operator, second["id"], mrz_evidence(text))
    assert reused["status"] == "rejected"
    assert [r.split(":")[0] for r in reused["reasons"]] == ["document_in_use"]
    rejected = events(admin, subject_id=second["id"], type="evidence.rejected")
    assert rejected[-1]["data"]["reason_codes"] == ["document_in_use"]


def _mutate(text: str, pos: int, value: str) -> str:
    line1, line2 = text.split("\n")
    return line1 + "\n" + line2[:pos] + value + line2[pos + len(value) :]


@pytest.mark.parametrize(
    ("change", "codes"),
    [
        ({"number": "C01X00T47"}, []),
        ({"nationality": "UTO"}, ["nationality_unknown"]),
        ({"state": "ZZZ"}, ["issuing_state_unknown"]),
        ({"birth": "741312"}, ["birth_date_invalid"]),
        ({"expiry": date(2011, 1, 1)}, ["document_expired"]),
        ({"nationality": "XXA"}, ["no_citizenship"]),
        ({"name": "MUSTERM4NN<<ERIKA"}, ["name_malformed"]),
    ],
)
def test_each_failed_rule_rejects_with_its_reason(
    operator: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
    change: dict[str, Any],
    codes: list[str],
) -> None:
    subject = onboard()
    fields = {"number": unique_number(), **change}
    if change.get("number"):
        fields["number"] = unique_number()
    evidence = submit(operator, subject["id"], mrz_evidence(td3(**fields)))
    assert [r.split(":")[0] for r in evidence["reasons"]] == codes
    assert evidence["status"] == ("rejected" if codes else "verified")
    if codes:
        assert evidence["attributes"] == {}
        event = events(admin, subject_id=subject["id"], type="evidence.rejected")[-1]
        assert event["data"]["reason_codes"] == codes


@pytest.mark.parametrize(
    ("pos", "value", "codes"),
    [
        (9, "+1", ["document_number_check_digit", "composite_check_digit"]),
        (19, "+1", ["birth_date_check_digit", "composite_check_digit"]),
        (27, "+1", ["expiry_date_check_digit", "composite_check_digit"]),
        (42, "7", ["optional_data_check_digit", "composite_check_digit"]),
        (43, "X", ["composite_check_digit"]),
        (20, "Q", ["sex_invalid"]),
    ],
)
def test_check_digit_failures_over_http(
    operator: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
    pos: int,
    value: str,
    codes: list[str],
) -> None:
    text = td3(number=unique_number())
    if value == "+1":
        # Another digit: the composite, which covers this digit with a weight of 7, 3 or 1,
        # then always changes too (a letter could leave it intact by chance).
        value = str((int(text.split("\n")[1][pos]) + 1) % 10)
    text = _mutate(text, pos, value)
    evidence = submit(operator, onboard()["id"], mrz_evidence(text))
    assert evidence["status"] == "rejected"
    assert [r.split(":")[0] for r in evidence["reasons"]] == codes


@pytest.mark.parametrize(
    "body",
    [
        {"type": "document_mrz"},
        {"type": "document_mrz", "mrz": ""},
        {"type": "document_mrz", "mrz": "P<D<<SHORT"},
        {"type": "document_mrz", "mrz": "x" * 201},
        {"type": "document_mrz", "mrz": 7},
        {"type": "document_mrz", "mrz": td3().lower()},
        {"type": "document_mrz", "mrz": td3(), "attributes": {"citizenship": ["US"]}},
        {"type": "document_mrz", "mrz": td3(), "document_type": "us_passport"},
    ],
)
def test_malformed_mrz_input_is_a_problem_and_records_nothing(
    operator: httpx.Client,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
    body: dict[str, Any],
) -> None:
    subject = onboard()
    response = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=body)
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)
    assert event_types(admin, subject["id"]) == ["subject.onboarded"]


def test_document_expiry_flips_a_decision_under_the_injected_clock(
    live: LiveServer,
    admin: httpx.Client,
    operator: httpx.Client,
    reviewer: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    name = f"p-{uuid.uuid4().hex[:12]}"
    policy = {
        "description": "Germans (test)",
        "rule": {"attribute": "citizenship", "any_of": ["DE"]},
    }
    assert admin.put(f"/v1/policies/{name}", json=policy).status_code == 201
    audience = f"model:test-{uuid.uuid4()}"
    assert admin.put(f"/v1/audiences/{audience}", json={"policy": name}).status_code == 201
    subject = onboard()
    expires = (live.clock() + timedelta(days=30)).date()  # 30 days after the server's now
    evidence = submit(
        operator, subject["id"], mrz_evidence(td3(number=unique_number(), expiry=expires), "IAL2")
    )
    assert evidence["status"] == "pending_approval"
    approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
    assert approved.status_code == 200, approved.text
    # Approval does not extend the evidence past the document's own expiry date.
    assert approved.json()["reverify_at"].startswith((expires + timedelta(days=1)).isoformat())
    assert token_for(operator, subject["id"], audience).status_code == 201

    live.clock.advance(days=31)
    denied = assert_problem(token_for(operator, subject["id"], audience), 403, "not-eligible")
    assert "evidence_expired" in [r["code"] for r in denied["reason_details"]]
    dry = operator.post(f"/v1/policies/{name}/evaluate", json={"subject_id": subject["id"]})
    assert dry.json()["decision"] == "not_eligible"
    # Presenting the now expired document again is rejected for that reason.
    again = submit(
        operator, subject["id"], mrz_evidence(td3(number=unique_number(), expiry=expires))
    )
    assert [r.split(":")[0] for r in again["reasons"]] == ["document_expired"]
