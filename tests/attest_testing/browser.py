"""Browser helpers for the console tests (tests/console): sign in and out through the
forms, save screenshots.

``screenshot(page, name)`` saves a full-page PNG as tests/console/screenshots/<name>.png
(git-ignored) for people to look at; the README shows two of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "SCREENSHOTS",
    "assert_keyboard_reachable",
    "cookies_named",
    "screenshot",
    "sign_in",
    "sign_out",
    "tab_order",
]

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


#: What a keyboard user must be able to reach.
INTERACTIVE = (
    "a[href], button, input:not([type=hidden]), select, textarea, summary,"
    " [tabindex]:not([tabindex='-1'])"
)

_DESCRIBE = """el => {
    const id = el.id ? '#' + el.id : '';
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim();
    const where = el.getAttribute('href') || el.name || '';
    return el.tagName.toLowerCase() + id + '|' + where + '|' + text.slice(0, 40);
}"""


def tab_order(page: Any, limit: int = 300) -> list[str]:
    """Press Tab from the top of the page until focus comes back round (or ``limit``
    presses); what was focused, in order."""
    page.evaluate(
        "() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }"
    )
    page.locator("body").focus()
    seen: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            f"() => document.activeElement && document.activeElement !== document.body"
            f" ? ({_DESCRIBE})(document.activeElement) : null"
        )
        if focused is None or (seen and focused == seen[0]):
            break
        seen.append(focused)
    return seen


def assert_keyboard_reachable(page: Any) -> list[str]:
    """Every interactive element of the page is reached with Tab, the first stop is the
    skip link, and every form control has a label (a <label for>, or wraps one, or
    aria-label); returns the tab order."""
    order = tab_order(page)
    expected = page.eval_on_selector_all(
        INTERACTIVE, f"els => els.filter(e => !e.disabled).map({_DESCRIBE})"
    )
    missing = [e for e in expected if e not in order]
    assert missing == [], f"not reachable by keyboard: {missing} (tab order: {order})"
    assert order, "nothing on the page takes focus"
    assert order[0].startswith("a|#main|"), order
    unlabelled = page.eval_on_selector_all(
        "input:not([type=hidden]), select, textarea",
        "els => els.filter(e => (e.labels === null || e.labels.length === 0)"
        " && !e.getAttribute('aria-label')).map(e => e.outerHTML)",
    )
    assert unlabelled == [], f"inputs without a label: {unlabelled}"
    return order
