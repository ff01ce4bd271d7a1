"""Sign-in with an API key, the session cookie's attributes, sign-out, and what ends a
session: the clock passing its ttl, and the client being revoked."""

from __future__ import annotations

from typing import Any

import httpx
from attest_testing.browser import cookies_named, screenshot, sign_in, sign_out
from attest_testing.support import Actors, LiveServer

SESSION = "attest_console"


def test_sign_in_and_sign_out(page: Any, actors: Actors) -> None:
    key = actors.key("evidence:review", "subjects:read", name="alice")
    page.goto("/console")
    page.wait_for_url("**/console/sign-in")
    screenshot(page, "sign-in")

    sign_in(page, key)
    assert page.get_by_role("heading", level=1).inner_text() == "Signed in as alice"
    assert actors.tenant in page.locator("main").inner_text()
    [cookie] = cookies_named(page.context, SESSION)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console"
    assert cookie["secure"] is False  # the test issuer is http://; https sets Secure
    # The session id is random, never the key or a part of it.
    assert key not in cookie["value"]
    assert key.split("_")[2] not in cookie["value"]
    screenshot(page, "home")

    sign_out(page)
    assert cookies_named(page.context, SESSION) == []
    page.goto("/console")
    page.wait_for_url("**/console/sign-in")


def test_signed_out_session_cookie_no_longer_works(
    page: Any, actors: Actors, live: LiveServer
) -> None:
    """Sign-out ends the session on the server: the old cookie, replayed, is refused."""
    sign_in(page, actors.key("subjects:read", name="bob"))
    [cookie] = cookies_named(page.context, SESSION)
    sign_out(page)
    replay = httpx.get(
        live.base_url + "/console", cookies={SESSION: cookie["value"]}, follow_redirects=False
    )
    assert replay.status_code == 303
    assert replay.headers["location"] == "/console/sign-in"


def test_a_wrong_key_is_refused(page: Any, actors: Actors) -> None:
    key = actors.key("subjects:read")
    page.goto("/console/sign-in")
    page.get_by_label("API key").fill(key[:-4] + "aaaa")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "This API key was not accepted."
    assert cookies_named(page.context, SESSION) == []


def test_session_expires_after_its_ttl(page: Any, actors: Actors, live: LiveServer) -> None:
    sign_in(page, actors.key("subjects:read"))
    live.clock.advance(seconds=live.settings.console_session_ttl - 5)
    page.goto("/console")
    assert page.url.endswith("/console")
    live.clock.advance(seconds=10)
    page.goto("/console")
    page.wait_for_url("**/console/sign-in")


def test_revoking_the_client_ends_its_session(
    page: Any, actors: Actors, admin: httpx.Client
) -> None:
    key = actors.key("subjects:read", name="carol")
    sign_in(page, key)
    listed = admin.get("/v1/clients").json()["clients"]
    [client] = [c for c in listed if c["key_id"] == key.split("_")[1]]
    assert admin.post(f"/v1/clients/{client['id']}/revocations").status_code == 201
    page.goto("/console")
    page.wait_for_url("**/console/sign-in")


def test_console_responses_carry_the_security_headers(live: LiveServer) -> None:
    for path in ("/console/sign-in", "/console/static/console.css"):
        response = httpx.get(live.base_url + path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"


def test_the_sign_in_form_needs_its_csrf_token(live: LiveServer, actors: Actors) -> None:
    """Login CSRF: a sign-in posted without the form's token (and its cookie) is refused,
    even with a good key, and starts no session."""
    key = actors.key("subjects:read")
    answer = httpx.post(live.base_url + "/console/sign-in", data={"api_key": key})
    assert answer.status_code == 403
    assert "Form refused" in answer.text
    assert SESSION not in answer.cookies
    forged = httpx.post(
        live.base_url + "/console/sign-in",
        data={"api_key": key, "csrf_token": "a" * 43},
        cookies={"attest_console_csrf": "b" * 43},
    )
    assert forged.status_code == 403
    assert SESSION not in forged.cookies


def test_a_rotated_out_key_ends_its_session(page: Any, actors: Actors, admin: httpx.Client) -> None:
    """The session remembers the key id it signed in with: once a rotation's grace is over
    that key no longer authenticates, so the session ends (the new key signs in anew)."""
    key = actors.key("subjects:read", name="dora")
    sign_in(page, key)
    listed = admin.get("/v1/clients").json()["clients"]
    [client] = [c for c in listed if c["key_id"] == key.split("_")[1]]
    rotated = admin.post(f"/v1/clients/{client['id']}/keys", json={"grace_seconds": 0})
    assert rotated.status_code == 201, rotated.text
    page.goto("/console")
    page.wait_for_url("**/console/sign-in")
    sign_in(page, rotated.json()["api_key"])
    assert page.get_by_role("heading", level=1).inner_text() == "Signed in as dora"
