"""The auditor pages in a real browser: a receipt or a token checked step by step (valid,
tampered, revoked), the checkpoint history, the charts as SVG images; each page reachable
by keyboard with labelled inputs, and closed to keys without ``audit:read``."""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from attest_testing.browser import assert_keyboard_reachable, screenshot, sign_in
from attest_testing.service import token_for
from attest_testing.support import US_PASSPORT, Actors

FABLE = "model:fable-5"


def _issue(actors: Actors) -> tuple[httpx.Client, dict[str, Any]]:
    """An operator and a token for a US citizen whose evidence a second reviewer approved."""
    operator = actors.client(
        "subjects:write", "evidence:write", "tokens:issue", "tokens:revoke", name="operator"
    )
    reviewer = actors.client("evidence:review", "subjects:read", name="reviewer")
    subject = operator.post("/v1/subjects", json={"external_ref": "audited-1"}).json()
    evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=US_PASSPORT).json()
    approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
    assert approved.status_code == 200, approved.text
    issued = token_for(operator, subject["id"], FABLE)
    assert issued.status_code == 201, issued.text
    body: dict[str, Any] = issued.json()
    return operator, body


def _receipt(auditor: httpx.Client, jti: str) -> dict[str, Any]:
    """The receipt, once the token's issuance is in a signed checkpoint."""
    deadline = time.monotonic() + 15
    while True:
        response = auditor.get(f"/v1/audit/attestations/{jti}/receipt")
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        assert response.status_code == 404, response.text
        assert time.monotonic() < deadline, "the receipt never became available"
        time.sleep(0.1)


def _rows(page: Any, table: str) -> list[tuple[str, str, str]]:
    """(check name, outcome, text of the result cell) of each row of a checks table."""
    rows = page.locator(f"#{table} tbody tr")
    return [
        (
            rows.nth(i).get_attribute("data-check"),
            rows.nth(i).get_attribute("data-outcome"),
            rows.nth(i).locator("td").first.inner_text(),
        )
        for i in range(rows.count())
    ]


def _upload(page: Any, receipt: dict[str, Any]) -> None:
    page.goto("/console/audit")
    page.get_by_label("Attestation receipt (JSON file)").set_input_files(
        {
            "name": "receipt.json",
            "mimeType": "application/json",
            "buffer": json.dumps(receipt).encode(),
        }
    )
    page.get_by_role("button", name="Check receipt").click()
    page.wait_for_selector("#log-checks")


@pytest.fixture
def auditor_key(actors: Actors) -> str:
    return actors.key("audit:read", name="auditor")


@pytest.fixture
def auditor(actors: Actors, auditor_key: str) -> Iterator[httpx.Client]:
    http = actors.live.client(auditor_key)
    yield http
    http.close()


def test_the_check_page_is_keyboard_reachable(page: Any, auditor_key: str) -> None:
    sign_in(page, auditor_key)
    page.get_by_role("link", name="Audit").click()
    page.wait_for_url("**/console/audit")
    assert page.get_by_role("heading", level=1).inner_text() == "Check a token or a receipt"
    assert_keyboard_reachable(page)
    screenshot(page, "audit-check")


def test_a_valid_receipt_passes_every_check(
    page: Any, actors: Actors, auditor_key: str, auditor: httpx.Client
) -> None:
    _, issued = _issue(actors)
    receipt = _receipt(auditor, issued["jti"])
    sign_in(page, auditor_key)
    _upload(page, receipt)
    rows = _rows(page, "log-checks")
    assert [name for name, _, _ in rows] == [
        "format",
        "checkpoint",
        "inclusion",
        "signing_key",
        "signature",
        "record",
        "key_window",
        "policy_digest",
        "leaf",
        "key_history",
    ]
    assert {outcome for _, outcome, _ in rows} == {"pass"}
    assert all("passed" in text for _, _, text in rows)
    assert page.locator("#verdict").get_attribute("data-valid") == "true"
    policy = receipt["attestation"]["policy"]
    deciding = page.locator("#deciding-policy").inner_text()
    assert f"{policy['name']} version {policy['version']}" in deciding
    assert policy["digest"] in deciding
    window = page.locator("#key-window").inner_text()
    assert receipt["attestation"]["kid"] in window
    assert receipt["signing_key"]["not_before"][:19].replace("T", " ") in window
    screenshot(page, "audit-receipt-check")
    assert_keyboard_reachable(page)


def _flip_proof_byte(r: dict[str, Any]) -> None:
    lines = r["log"]["tlog_proof"].split("\n")
    raw = bytearray(base64.b64decode(lines[2]))  # the first hash of the audit path
    raw[-1] ^= 0x01
    lines[2] = base64.b64encode(bytes(raw)).decode()
    r["log"]["tlog_proof"] = "\n".join(lines)


def _alter_attestation(r: dict[str, Any]) -> None:
    r["attestation"]["audience"] = "model:mythos-5"


def _alter_policy(r: dict[str, Any]) -> None:
    r["policy_document"]["min_assurance"] = "IAL1"
    r["attestation"]["policy"]["document"] = r["policy_document"]


@pytest.mark.parametrize(
    ("tamper", "failing", "title"),
    [
        (_flip_proof_byte, "inclusion", "Log inclusion"),
        (_alter_attestation, "record", "Signed record"),
        (_alter_policy, "policy_digest", "Policy digest"),
    ],
    ids=["proof-byte", "attestation-field", "policy-document"],
)
def test_a_tampered_receipt_fails_at_its_check(
    page: Any,
    actors: Actors,
    auditor_key: str,
    auditor: httpx.Client,
    tamper: Any,
    failing: str,
    title: str,
) -> None:
    _, issued = _issue(actors)
    receipt = copy.deepcopy(_receipt(auditor, issued["jti"]))
    tamper(receipt)
    sign_in(page, auditor_key)
    _upload(page, receipt)
    rows = _rows(page, "log-checks")
    names = [name for name, _, _ in rows]
    at = names.index(failing)
    assert [outcome for _, outcome, _ in rows[:at]] == ["pass"] * at
    assert rows[at][1] == "fail"
    assert "failed" in rows[at][2]
    # Nothing after the failure is claimed passed.
    assert [outcome for _, outcome, _ in rows[at + 1 :]] == ["skipped"] * (len(rows) - at - 1)
    assert all("passed" not in text for _, _, text in rows[at + 1 :])
    verdict = page.get_by_role("alert")
    assert verdict.get_attribute("data-valid") == "false"
    assert f"Failed at “{title}”" in verdict.inner_text()
    if failing == "inclusion":
        screenshot(page, "audit-receipt-tampered")


def test_a_file_that_is_not_a_receipt_fails_at_the_format(page: Any, auditor_key: str) -> None:
    sign_in(page, auditor_key)
    page.goto("/console/audit")
    page.get_by_label("Attestation receipt (JSON file)").set_input_files(
        {"name": "x.json", "mimeType": "application/json", "buffer": b"\xff not json <b>"}
    )
    page.get_by_role("button", name="Check receipt").click()
    rows = _rows(page, "log-checks")
    assert rows[0][:2] == ("format", "fail")
    assert {outcome for _, outcome, _ in rows[1:]} == {"skipped"}


def _paste(page: Any, token: str) -> None:
    page.goto("/console/audit")
    page.get_by_label("Eligibility token (compact JWS)").fill(token)
    page.get_by_role("button", name="Check token").click()
    page.wait_for_selector("#token-checks")


def test_a_valid_token_passes_and_its_log_entry_is_proven(
    page: Any, actors: Actors, auditor_key: str, auditor: httpx.Client
) -> None:
    _, issued = _issue(actors)
    _receipt(auditor, issued["jti"])  # wait for its checkpoint
    sign_in(page, auditor_key)
    _paste(page, issued["token"])
    assert [(n, o) for n, o, _ in _rows(page, "token-checks")] == [
        ("signature", "pass"),
        ("claims", "pass"),
        ("status", "pass"),
        ("binding", "skipped"),
    ]
    log_rows = _rows(page, "log-checks")
    assert log_rows[0][:2] == ("attestation", "pass")
    assert {o for _, o, _ in log_rows} == {"pass"}
    assert page.locator("#verdict").get_attribute("data-valid") == "true"
    assert issued["jti"] in page.locator("#details").inner_text()
    screenshot(page, "audit-token-check")


def test_a_revoked_token_fails_its_status_check(
    page: Any, actors: Actors, auditor_key: str
) -> None:
    operator, issued = _issue(actors)
    revoked = operator.post(f"/v1/tokens/{issued['jti']}/revocations", json={})
    assert revoked.status_code in {200, 201}, revoked.text
    sign_in(page, auditor_key)
    _paste(page, issued["token"])
    rows = _rows(page, "token-checks")
    assert [(n, o) for n, o, _ in rows] == [
        ("signature", "pass"),
        ("claims", "pass"),
        ("status", "fail"),
        ("binding", "skipped"),
    ]
    status_row = page.locator('#token-checks tr[data-check="status"]')
    assert "revoked" in status_row.inner_text()
    assert "Status-list entry" in page.get_by_role("alert").inner_text()
    screenshot(page, "audit-token-revoked")


def test_a_forged_token_fails_at_its_signature(page: Any, actors: Actors, auditor_key: str) -> None:
    _, issued = _issue(actors)
    head, body, sig = issued["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["aud"] = "model:mythos-5"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    sign_in(page, auditor_key)
    _paste(page, f"{head}.{forged_body}.{sig}")
    rows = _rows(page, "token-checks")
    assert rows[0][:2] == ("signature", "fail")
    assert {o for _, o, _ in rows[1:]} == {"skipped"}
    assert {o for _, o, _ in _rows(page, "log-checks")} == {"skipped"}
    assert "bad_signature" in page.locator('#token-checks tr[data-check="signature"]').inner_text()


def test_checkpoint_history(page: Any, actors: Actors, auditor_key: str) -> None:
    _issue(actors)
    sign_in(page, auditor_key)
    page.goto("/console/audit")
    page.get_by_role("link", name="Checkpoint history").click()
    page.wait_for_url("**/console/audit/checkpoints")
    rows = page.locator("#checkpoints tbody tr")
    assert rows.count() >= 2
    sizes = [int(rows.nth(i).get_attribute("data-size")) for i in range(rows.count())]
    assert sizes == sorted(sizes, reverse=True)
    first = rows.nth(0).inner_text()
    assert "verified" in first
    assert f"extends size {sizes[1]}" in first
    assert "does not verify" not in page.locator("#checkpoints").inner_text()
    assert_keyboard_reachable(page)
    screenshot(page, "audit-checkpoints")


def test_charts_are_svg_images_with_their_series(
    page: Any, actors: Actors, auditor_key: str
) -> None:
    operator, _ = _issue(actors)
    nobody = operator.post("/v1/subjects", json={"external_ref": "audited-2"}).json()
    denied = token_for(operator, nobody["id"], FABLE)
    assert denied.status_code == 403
    reason = denied.json()["reason_details"][0]["code"]
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    sign_in(page, auditor_key)
    page.goto("/console/audit/charts")
    expected = {
        "issued": FABLE,
        "denied": FABLE,
        "reasons": reason,
        "keys": "active",
    }
    for name, series in expected.items():
        image = page.locator(f"#chart-{name} img")
        source = image.get_attribute("src")
        assert source.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(source.split(",", 1)[1]).decode()
        assert svg.startswith("<svg")
        assert "<script" not in svg
        assert f">{series}<" in svg, (name, series)
        # The browser decoded and drew it.
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
        assert series in image.get_attribute("alt") or name == "keys"
    # The numbers behind the chart, for people who do not see it: this tenant's 1 issued.
    page.locator("#chart-issued summary").press("Enter")  # opens the details, by keyboard
    table = page.locator("#chart-issued table")
    assert FABLE in table.inner_text()
    assert "1" in table.locator("tbody td").all_inner_texts()
    assert violations == []
    # The period is chosen with a GET form, by keyboard.
    page.get_by_label("Period").focus()
    page.get_by_label("Period").select_option("7d")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/audit/charts?window=7d")
    assert "last 7d" in page.get_by_label("Period").inner_text()
    assert_keyboard_reachable(page)
    screenshot(page, "audit-charts")


def test_auditor_pages_need_audit_read(page: Any, actors: Actors) -> None:
    sign_in(page, actors.key("subjects:read", name="no-audit"))
    assert page.get_by_role("link", name="Audit").count() == 0
    for path in ("/console/audit", "/console/audit/checkpoints", "/console/audit/charts"):
        response = page.goto(path)
        assert response.status == 403, path
        assert "audit:read" in page.get_by_role("alert").inner_text()


def test_another_tenants_token_is_authentic_but_not_in_view(
    page: Any, actors: Actors, auditor: httpx.Client
) -> None:
    """An auditor sees only their tenant's attestations: a token of another tenant verifies,
    but its attestation is not shown (nor its log entry checked)."""
    _, issued = _issue(actors)
    _receipt(auditor, issued["jti"])
    other = actors.key("audit:read", name="elsewhere", tenant=f"t-{uuid.uuid4().hex[:12]}")
    sign_in(page, other)
    _paste(page, issued["token"])
    assert _rows(page, "token-checks")[0][:2] == ("signature", "pass")
    log_rows = _rows(page, "log-checks")
    assert log_rows[0][:2] == ("attestation", "fail")
    assert "no_attestation" in page.locator('#log-checks tr[data-check="attestation"]').inner_text()
    assert {o for _, o, _ in log_rows[1:]} == {"skipped"}
    assert issued["jti"] not in page.locator("#details").inner_text()


def test_hostile_receipt_text_is_shown_as_text(
    page: Any, actors: Actors, auditor_key: str, auditor: httpx.Client
) -> None:
    """What a receipt says reaches the page only escaped (a dialog would fail the test)."""
    _, issued = _issue(actors)
    receipt = copy.deepcopy(_receipt(auditor, issued["jti"]))
    hostile = "<img src=x onerror=alert(1)>"
    receipt["log"]["origin"] = hostile
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, auditor_key)
    _upload(page, receipt)
    row = page.locator('#log-checks tr[data-check="checkpoint"]')
    assert row.get_attribute("data-outcome") == "fail"
    assert hostile in row.inner_text()
    assert page.locator("#log-checks img").count() == 0
    assert dialogs == []
