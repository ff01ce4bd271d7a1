"""The reviewer queue in a real browser: four-eyes with two reviewers in two contexts,
self-approval refused, a forged form without its CSRF token refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from attest_testing.browser import assert_keyboard_reachable, screenshot, sign_in
from attest_testing.mrz import mrz_evidence, td3, unique_number
from attest_testing.service import LPR_CARD, US_PASSPORT, events, submit
from attest_testing.support import Actors

REVIEWER = ("evidence:review", "evidence:write", "subjects:read", "subjects:write")


@pytest.fixture
def onboard(actors: Actors) -> Callable[[httpx.Client, str], dict[str, Any]]:
    def make(client: httpx.Client, ref: str) -> dict[str, Any]:
        response = client.post("/v1/subjects", json={"external_ref": ref})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return make


def _card(page: Any, evidence_id: str) -> Any:
    return page.locator("section.card").filter(has=page.locator(f"#ev-{evidence_id}"))


def test_four_eyes_with_two_reviewers(
    new_context: Callable[[], Any],
    actors: Actors,
    admin: httpx.Client,
    onboard: Callable[[httpx.Client, str], dict[str, Any]],
) -> None:
    alice_key = actors.key(*REVIEWER, name="alice")
    bob_key = actors.key(*REVIEWER, name="bob")
    with actors.live.client(alice_key) as alice_api:
        subject = onboard(alice_api, "hr-4eyes")
        passport = submit(alice_api, subject["id"], US_PASSPORT)
        card = submit(alice_api, subject["id"], LPR_CARD)
        number = unique_number()
        mrz = submit(alice_api, subject["id"], mrz_evidence(td3(number=number), "IAL2"))
    assert passport["status"] == card["status"] == mrz["status"] == "pending_approval"

    alice = new_context().new_page()
    bob = new_context().new_page()
    sign_in(alice, alice_key)
    sign_in(bob, bob_key)

    # Alice submitted both: her queue never shows them.
    alice.goto("/console/reviews")
    assert alice.locator(f"#ev-{passport['id']}").count() == 0
    assert alice.locator(f"#ev-{card['id']}").count() == 0

    # Bob sees both, with what was submitted (and never a document number).
    bob.goto("/console/reviews")
    item = _card(bob, passport["id"])
    text = item.inner_text()
    assert "manual review · us passport" in text
    assert "citizenship: US" in text
    assert "us_person_status: us_citizen" in text
    assert "IAL2" in text
    assert _card(bob, card["id"]).count() == 1
    # MRZ evidence: the checks it passed, the nationality it supports, never its number.
    passed = _card(bob, mrz["id"]).locator("ul.checks li").all_inner_texts()
    assert "✓ check digit: document number" in passed
    assert "✓ document not expired" in passed
    assert "citizenship: DE" in _card(bob, mrz["id"]).inner_text()
    assert number not in bob.content()
    screenshot(bob, "reviewer-queue")
    assert_keyboard_reachable(bob)

    item.get_by_label("Comment (optional)").fill("checked against the original")
    item.get_by_role("button", name="Approve").click()
    bob.wait_for_url("**/console/reviews?done=approved")
    assert bob.get_by_role("status").inner_text() == "Evidence approved."
    assert bob.locator(f"#ev-{passport['id']}").count() == 0

    # Rejecting needs a reason; the browser refuses the empty field, the server too.
    other = _card(bob, card["id"])
    other.get_by_label("Reason for rejecting").fill("photo does not match")
    other.get_by_role("button", name="Reject").click()
    bob.wait_for_url("**/console/reviews?done=rejected")
    assert bob.locator(f"#ev-{card['id']}").count() == 0

    # The same effects and audit events as the API: approved by Bob, rejected by Bob.
    profile = admin.get(f"/v1/subjects/{subject['id']}").json()
    by_id = {e["id"]: e for e in profile["evidence"]}
    assert by_id[passport["id"]]["status"] == "verified"
    assert by_id[passport["id"]]["approval_comment"] == "checked against the original"
    assert by_id[card["id"]]["status"] == "rejected"
    assert by_id[card["id"]]["reasons"] == ["rejected_by_reviewer: photo does not match"]
    trail = {e["type"]: e for e in events(admin, subject_id=subject["id"])}
    bob_id = by_id[passport["id"]]["approved_by"]
    assert bob_id != passport["submitted_by"]
    assert trail["evidence.approved"]["actor"] == bob_id
    assert trail["evidence.rejected"]["actor"] == bob_id
    assert trail["evidence.approved"]["data"]["comment_given"] is True

    # The subject page now shows the attribute the approved evidence supports.
    bob.goto(f"/console/subjects/{subject['id']}")
    assert "us_citizen" in bob.locator("table").first.inner_text()


def _csrf_of(page: Any) -> str:
    token: str = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


def test_self_approval_is_refused(
    page: Any, actors: Actors, admin: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    key = actors.key(*REVIEWER, name="carol")
    with actors.live.client(key) as api:
        subject = onboard(api, "hr-self")
        mine = submit(api, subject["id"], US_PASSPORT)
    sign_in(page, key)
    page.goto("/console/reviews")
    assert page.locator(f"#ev-{mine['id']}").count() == 0
    # Post the approval form for her own evidence anyway, with a valid CSRF token.
    answer = page.request.post(
        f"/console/reviews/{mine['id']}/approve",
        form={"csrf_token": _csrf_of(page), "comment": "looks fine"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "cannot approve it" in answer.text()
    assert "text/html" in answer.headers["content-type"]
    [evidence] = admin.get(f"/v1/subjects/{subject['id']}").json()["evidence"]
    assert evidence["status"] == "pending_approval"
    assert "evidence.approved" not in [e["type"] for e in events(admin, subject_id=subject["id"])]


def test_a_form_without_its_csrf_token_is_refused(
    new_context: Callable[[], Any],
    actors: Actors,
    admin: httpx.Client,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    with actors.live.client(actors.key(*REVIEWER, name="dave")) as api:
        subject = onboard(api, "hr-csrf")
        pending = submit(api, subject["id"], US_PASSPORT)
    page = new_context().new_page()
    sign_in(page, actors.key(*REVIEWER, name="erin"))
    page.goto("/console/reviews")
    assert _card(page, pending["id"]).count() == 1

    # A form built in the page (as a forging site would), without the token: refused.
    with page.expect_navigation():
        page.evaluate(
            """id => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = '/console/reviews/' + id + '/approve';
                document.body.appendChild(form);
                form.submit();
            }""",
            pending["id"],
        )
    assert page.get_by_role("heading", level=1).inner_text() == "Form refused"
    screenshot(page, "csrf-refused")
    # With a wrong token, and with another session's token: refused too.
    for token in ("x" * 43, _csrf_of(_other_session(new_context, actors))):
        answer = page.request.post(
            f"/console/reviews/{pending['id']}/approve",
            form={"csrf_token": token},
            max_redirects=0,
        )
        assert answer.status == 403, token
        assert "Form refused" in answer.text()
    [evidence] = admin.get(f"/v1/subjects/{subject['id']}").json()["evidence"]
    assert evidence["status"] == "pending_approval"


def _other_session(new_context: Callable[[], Any], actors: Actors) -> Any:
    other = new_context().new_page()
    sign_in(other, actors.key(*REVIEWER, name="frank"))
    return other


def test_the_queue_needs_the_review_scope(page: Any, actors: Actors) -> None:
    sign_in(page, actors.key("subjects:read", name="gina"))
    answer = page.goto("/console/reviews")
    assert answer is not None
    assert answer.status == 403
    assert "evidence:review" in page.locator("main").inner_text()


def test_evidence_of_a_related_client_is_not_in_the_queue(
    new_context: Callable[[], Any],
    actors: Actors,
    onboard: Callable[..., dict[str, Any]],
) -> None:
    """Four-eyes by relation: a reviewer who created the submitting client never sees its
    evidence in the queue (and the approval, posted anyway, is refused); an unrelated
    reviewer does see it."""
    creator_key = actors.key(*REVIEWER, "clients:admin", name="creator")
    with actors.live.client(creator_key) as creator_api:
        made = creator_api.post(
            "/v1/clients",
            json={"name": "made-by-creator", "scopes": ["evidence:write", "subjects:write"]},
        )
        assert made.status_code == 201, made.text
    with actors.live.client(made.json()["api_key"]) as submitter:
        subject = onboard(submitter, "hr-related")
        pending = submit(submitter, subject["id"], US_PASSPORT)

    creator = new_context().new_page()
    sign_in(creator, creator_key)
    creator.goto("/console/reviews")
    assert creator.locator(f"#ev-{pending['id']}").count() == 0
    answer = creator.request.post(
        f"/console/reviews/{pending['id']}/approve",
        form={"csrf_token": _csrf_of(creator)},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "related to the submitting client" in answer.text()

    stranger = new_context().new_page()
    sign_in(stranger, actors.key(*REVIEWER, name="stranger"))
    stranger.goto("/console/reviews")
    assert _card(stranger, pending["id"]).count() == 1
