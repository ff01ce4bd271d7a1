"""Keyboard and label checks for the console's browser tests (tests/console)."""

from __future__ import annotations

from typing import Any

__all__ = ["FOCUSABLE", "assert_keyboard_reachable"]

FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, summary"


def assert_keyboard_reachable(page: Any) -> None:
    """Tab from the top reaches every link, button and field of the page, and every field
    has a label (``<label for>``, ``aria-label`` or ``aria-labelledby``)."""
    count = page.evaluate(
        """(selector) => {
            const found = [...document.querySelectorAll(selector)]
                .filter(e => !e.disabled && e.getClientRects().length > 0);
            found.forEach((e, i) => e.setAttribute('data-kb', String(i)));
            return found.length;
        }""",
        FOCUSABLE,
    )
    assert count > 0
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")
    seen: set[str] = set()
    for _ in range(count * 2 + 5):
        page.keyboard.press("Tab")
        mark = page.evaluate("() => document.activeElement.getAttribute('data-kb')")
        if mark is not None:
            seen.add(mark)
        if len(seen) == count:
            break
    assert seen == {str(i) for i in range(count)}, f"{count - len(seen)} not reached by Tab"
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(e => !(e.id && document.querySelector('label[for="' + e.id + '"]'))
                      && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
            .map(e => e.outerHTML)"""
    )
    assert unlabelled == []
