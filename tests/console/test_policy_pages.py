"""The policy and audience pages in a real browser: versions and where each decided, the
diff of two versions chosen with a GET form (by keyboard), an audience's history, scopes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from attest_testing.browser import assert_keyboard_reachable, screenshot, sign_in
from attest_testing.support import Actors

CITIZENS = {
    "description": "US citizens only (console test)",
    "min_assurance": "IAL2",
    "rule": {"attribute": "us_person_status", "any_of": ["us_citizen"]},
}
PERSONS = {
    "description": "US persons (console test)",
    "min_assurance": "IAL2",
    "rule": {
        "attribute": "us_person_status",
        "any_of": ["us_citizen", "us_national", "lawful_permanent_resident"],
    },
}


@pytest.fixture
def published(admin: httpx.Client) -> dict[str, str]:
    """A policy with three versions (the third only reworded), an audience bound to it
    from version 1 on."""
    name = f"p-{uuid.uuid4().hex[:10]}"
    audience = f"model:console-{uuid.uuid4().hex[:8]}"
    for path, body in (
        (f"/v1/policies/{name}", CITIZENS),
        (f"/v1/audiences/{audience}", {"policy": name}),
        (f"/v1/policies/{name}", PERSONS),
        (f"/v1/policies/{name}", {**PERSONS, "description": "US persons, reworded"}),
    ):
        response = admin.put(path, json=body)
        assert response.status_code in {200, 201}, response.text
    return {"name": name, "audience": audience}


def test_policy_versions_and_their_diff(
    page: Any, actors: Actors, published: dict[str, str]
) -> None:
    name, audience = published["name"], published["audience"]
    sign_in(page, actors.key("policies:read", "audiences:read", name="policy-auditor"))
    page.get_by_role("link", name="Policies").click()
    page.wait_for_url("**/console/policies")
    row = page.locator(f'#policies tr[data-policy="{name}"]')
    assert "3" in row.locator("td").first.inner_text()
    assert audience in row.inner_text()
    assert_keyboard_reachable(page)
    screenshot(page, "policies")

    row.get_by_role("link", name=name).click()
    page.wait_for_url(f"**/console/policies/{name}")
    versions = page.locator("#versions tbody tr")
    assert [versions.nth(i).get_attribute("data-version") for i in range(3)] == ["3", "2", "1"]
    for i in range(3):
        assert audience in versions.nth(i).inner_text()  # each decided for it, in turn
    # By default the latest against the one before: only the description changed.
    assert page.locator("#changes tbody tr").count() == 2  # $.description and $.version
    assert page.locator('#changes tr[data-path="$.description"]').count() == 1

    # Choose versions 1 and 2 with the keyboard and submit the GET form.
    page.get_by_label("From version", exact=True).focus()
    page.get_by_label("From version", exact=True).select_option("1")
    page.keyboard.press("Tab")
    page.get_by_label("To version", exact=True).select_option("2")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/policies/{name}?old=1&new=2")
    added = page.locator('#changes tr[data-path="$.rule.any_of"][data-kind="added"]')
    assert sorted(added.all_inner_texts()) == sorted(
        [
            '$.rule.any_of\tadded\t\t"lawful_permanent_resident"',
            '$.rule.any_of\tadded\t\t"us_national"',
        ]
    )
    assert page.locator('#changes tr[data-kind="removed"]').count() == 0
    lines = [line.strip() for line in page.locator("#diff-lines").inner_text().splitlines()]
    assert lines[0].startswith("@@")
    assert '+ "lawful_permanent_resident"' in [" ".join(x.split()) for x in lines]
    assert '- "version": 1' in [" ".join(x.split()) for x in lines]
    assert '+ "version": 2' in [" ".join(x.split()) for x in lines]
    assert '"min_assurance": "IAL2",' in lines  # context: unchanged
    assert_keyboard_reachable(page)
    screenshot(page, "policy-diff")


def test_an_audience_shows_which_versions_governed_it(
    page: Any, actors: Actors, admin: httpx.Client, published: dict[str, str]
) -> None:
    name, audience = published["name"], published["audience"]
    rebound = admin.put(f"/v1/audiences/{audience}", json={"policy": "us-persons"})
    assert rebound.status_code == 200, rebound.text
    sign_in(page, actors.key("policies:read", "audiences:read", name="policy-auditor"))
    page.goto(f"/console/audiences/{audience}")
    assert page.get_by_role("heading", level=1).inner_text() == f"Audience {audience}"
    assert "us-persons" in page.locator("#audience-now").inner_text()
    rows = page.locator("#governed tbody tr")
    decided = [
        (rows.nth(i).get_attribute("data-policy"), rows.nth(i).get_attribute("data-version"))
        for i in range(rows.count())
    ]
    assert decided == [(name, "1"), (name, "2"), (name, "3"), ("us-persons", "1")]
    assert rows.nth(3).locator("td").nth(2).inner_text() == "now"
    assert page.locator("#bindings tbody tr").count() == 2
    assert_keyboard_reachable(page)
    screenshot(page, "audience")


def test_policy_and_audience_pages_need_their_scopes(
    page: Any, actors: Actors, published: dict[str, str]
) -> None:
    sign_in(page, actors.key("policies:read", name="policies-only"))
    response = page.goto(f"/console/policies/{published['name']}")
    assert response.status == 200
    # Without audiences:read the audience names are text, not links, and the page is shut.
    assert page.locator("#versions").get_by_role("link").count() == 0
    response = page.goto(f"/console/audiences/{published['audience']}")
    assert response.status == 403
    assert "audiences:read" in page.get_by_role("alert").inner_text()
    page.context.clear_cookies()
    sign_in(page, actors.key("audit:read", name="no-policies"))
    assert page.get_by_role("link", name="Policies").count() == 0
    assert page.goto("/console/policies").status == 403


def test_unknown_policy_and_versions_are_404_pages(
    page: Any, actors: Actors, published: dict[str, str]
) -> None:
    sign_in(page, actors.key("policies:read", "audiences:read", name="policy-auditor"))
    assert page.goto("/console/policies/no-such-policy").status == 404
    assert page.goto(f"/console/policies/{published['name']}?old=1&new=9").status == 404
    assert page.goto(f"/console/policies/{published['name']}?old=abc&new=2").status == 400
    assert page.goto("/console/audiences/model:nowhere").status == 404
