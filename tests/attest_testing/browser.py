"""Browser helpers for the console tests (tests/console): sign in and out through the
forms, save screenshots.

``screenshot(page, name)`` saves a full-page PNG as tests/console/screenshots/<name>.png
(git-ignored) for people to look at; the README shows two of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SCREENSHOTS", "cookies_named", "screenshot", "sign_in", "sign_out"]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "console" / "screenshots"


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG of what the browser shows, as tests/console/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, api_key: str) -> None:
    """Sign in through the form, as a person would (into the field labelled "API key")."""
    page.goto("/console/sign-in")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in")


def cookies_named(context: Any, name: str) -> list[dict[str, Any]]:
    return [c for c in context.cookies() if c["name"] == name]
