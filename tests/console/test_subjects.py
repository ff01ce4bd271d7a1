"""The subject page in a real browser: lookup, values rendered as text (the XSS string),
tokens with their status, revoking a token and the subject; every page by keyboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from attest_testing.browser import assert_keyboard_reachable, screenshot, sign_in
from attest_testing.service import US_PASSPORT, events, submit, token_for
from attest_testing.support import OPERATOR_SCOPES, Actors, LiveServer

XSS = "<img src=x onerror=alert(1)>"
FABLE = "model:fable-5"
OFFICER = (
    *OPERATOR_SCOPES,
    "subjects:revoke",
    "tokens:revoke",
    "evidence:review",
)


def _eligible(actors: Actors, operator: httpx.Client, ref: str) -> dict[str, Any]:
    made = operator.post("/v1/subjects", json={"external_ref": ref})
    assert made.status_code == 201, made.text
    subject: dict[str, Any] = made.json()
    evidence = submit(operator, subject["id"], US_PASSPORT)
    with actors.live.client(actors.key("evidence:review", name="second")) as reviewer:
        approved = reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={})
        assert approved.status_code == 200, approved.text
    return subject


def _watch_dialogs(page: Any) -> list[str]:
    fired: list[str] = []

    def on_dialog(dialog: Any) -> None:
        fired.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return fired


def test_external_ref_is_shown_as_text(page: Any, actors: Actors) -> None:
    key = actors.key(*OFFICER, name="officer")
    with actors.live.client(key) as operator:
        made = operator.post("/v1/subjects", json={"external_ref": XSS})
        assert made.status_code == 201, made.text
    fired = _watch_dialogs(page)
    sign_in(page, key)
    # Found by its external_ref through the search form.
    page.goto("/console/subjects")
    page.get_by_label("Subject id or external reference").fill(XSS)
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(f"**/console/subjects/{made.json()['id']}")
    shown = page.locator("h1 .external-ref")
    assert shown.text_content() == XSS
    assert page.locator("dd.external-ref").text_content() == XSS
    assert page.locator("img").count() == 0
    assert XSS not in page.content()  # only its escaped form is in the markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.content()
    assert page.title() == f"Subject {XSS} · attest"
    assert fired == []
    screenshot(page, "subject-xss")


def test_subject_page_tokens_and_revocation(
    page: Any, actors: Actors, admin: httpx.Client, live: LiveServer
) -> None:
    key = actors.key(*OFFICER, name="officer")
    with live.client(key) as operator:
        subject = _eligible(actors, operator, "hr-tokens")
        first = token_for(operator, subject["id"], FABLE)
        second = token_for(operator, subject["id"], FABLE)
        assert first.status_code == second.status_code == 201, first.text
    fired = _watch_dialogs(page)
    sign_in(page, key)
    page.goto(f"/console/subjects/{subject['id']}")
    main = page.locator("main").inner_text()
    # Current attributes with the evidence behind them and its re-verification date.
    assert "us_person_status" in main
    assert "us_citizen" in main
    # The dry run for the seeded audience: eligible, nothing issued by looking.
    row = page.locator("tr").filter(has=page.locator("th", has_text=FABLE))
    assert "eligible" in row.inner_text()
    assert "not eligible" not in row.inner_text()
    states = page.locator(".token-state").all_inner_texts()
    assert states == ["valid", "valid"]
    screenshot(page, "subject")
    assert_keyboard_reachable(page)

    # Revoke one token: the confirmation box is required (the browser will not submit).
    jti = second.json()["jti"]
    form = page.locator(f"form[action$='/tokens/{jti}/revoke']")
    form.get_by_role("button", name="Revoke token").click()
    assert page.url.endswith(f"/console/subjects/{subject['id']}")
    form.get_by_role("checkbox").check()
    form.get_by_role("button", name="Revoke token").click()
    page.wait_for_url("**?done=token-revoked")
    assert page.get_by_role("status").inner_text() == "The token was revoked."
    assert sorted(page.locator(".token-state").all_inner_texts()) == ["revoked", "valid"]

    # A token past its expiry shows as expired.
    live.clock.advance(seconds=live.settings.default_token_lifetime + 60)
    page.goto(f"/console/subjects/{subject['id']}")
    assert sorted(page.locator(".token-state").all_inner_texts()) == ["expired", "revoked"]
    live.clock.advance(seconds=-(live.settings.default_token_lifetime + 60))

    # Revoke the subject: its other token becomes revoked too; the decision is a denial.
    page.goto(f"/console/subjects/{subject['id']}")
    page.get_by_label("Reason (optional; the audit log records only whether one was given)").fill(
        "left"
    )
    page.get_by_label("I confirm revoking this subject's eligibility").check()
    page.get_by_role("button", name="Revoke subject").click()
    page.wait_for_url("**?done=subject-revoked")
    assert page.locator(".token-state").all_inner_texts() == ["revoked", "revoked"]
    assert (
        "not eligible"
        in page.locator("tr").filter(has=page.locator("th", has_text=FABLE)).inner_text()
    )
    types = [e["type"] for e in events(admin, subject_id=subject["id"])]
    assert "token.revoked" in types
    assert "subject.revoked" in types
    assert fired == []


def test_revocation_needs_its_scope(page: Any, actors: Actors, live: LiveServer) -> None:
    """A key without tokens:revoke sees no revoke form, and a posted one is refused."""
    officer = actors.key(*OFFICER, name="officer")
    with live.client(officer) as operator:
        subject = _eligible(actors, operator, "hr-scope")
        jti = token_for(operator, subject["id"], FABLE).json()["jti"]
    sign_in(page, actors.key("subjects:read", name="reader"))
    page.goto(f"/console/subjects/{subject['id']}")
    assert page.get_by_role("button", name="Revoke token").count() == 0
    assert page.get_by_role("button", name="Revoke subject").count() == 0
    assert "policies:read" in page.locator("main").inner_text()  # no dry run without it
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post(
        f"/console/subjects/{subject['id']}/tokens/{jti}/revoke",
        form={"csrf_token": token, "confirm": "yes"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "tokens:revoke" in answer.text()
    assert page.locator(".token-state").all_inner_texts() == ["valid"]


def test_another_tenants_subject_is_not_found(page: Any, actors: Actors, live: LiveServer) -> None:
    with live.client(actors.key(*OFFICER, name="officer")) as operator:
        subject = operator.post("/v1/subjects", json={"external_ref": "hr-mine"}).json()
    sign_in(page, actors.key("subjects:read", name="elsewhere", tenant=actors.tenant + "-other"))
    answer = page.goto(f"/console/subjects/{subject['id']}")
    assert answer is not None
    assert answer.status == 404
    page.goto("/console/subjects?q=hr-mine")
    assert "No subject in your tenant" in page.get_by_role("alert").inner_text()


def test_every_page_is_reachable_by_keyboard(
    new_context: Callable[[], Any], actors: Actors, live: LiveServer
) -> None:
    key = actors.key(*OFFICER, name="officer")
    with live.client(key) as operator:
        subject = _eligible(actors, operator, "hr-keyboard")
        pending = operator.post("/v1/subjects", json={"external_ref": "hr-keyboard-2"}).json()
        submit(operator, pending["id"], US_PASSPORT)
    page = new_context().new_page()
    page.goto("/console/sign-in")
    assert_keyboard_reachable(page)
    # Sign in with the keyboard only: Tab to the field, type, Enter.
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the brand link
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "api_key"
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console")
    reviewer = new_context().new_page()
    sign_in(reviewer, actors.key("evidence:review", "subjects:read", name="reviewer"))
    pages = [
        (page, "/console"),
        (page, "/console/subjects"),
        (page, "/console/subjects?q=nobody-has-this"),
        (page, f"/console/subjects/{subject['id']}"),
        (reviewer, "/console/reviews"),
    ]
    for browser_page, path in pages:
        browser_page.goto(path)
        order = assert_keyboard_reachable(browser_page)
        assert any("Sign out" in stop for stop in order), (path, order)
    screenshot(page, "subjects-search")
