"""A readable difference between two policy documents. Pure: documents in, plain data out.

Two views of one change: the lines of a unified diff of both documents as pretty JSON with
sorted keys (what changed where, in context), and the list of changed paths with their old
and new values (``$.rule.any_of`` gained ``lawful_permanent_resident``). Lists of plain
values, such as the codes of an ``any_of``, are compared as sets, so a value added in the
middle reads as one addition rather than as every later position changing.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Change", "DiffLine", "DocumentDiff", "diff_documents", "pretty"]

#: How many unchanged lines a hunk shows around a change.
CONTEXT = 3
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: Literal["added", "removed", "changed"]
    old: Any = None
    new: Any = None


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: Literal["hunk", "context", "added", "removed"]
    text: str


@dataclass(frozen=True, slots=True)
class DocumentDiff:
    changes: list[Change]
    lines: list[DiffLine]

    @property
    def same(self) -> bool:
        return not self.changes


def pretty(document: Mapping[str, Any]) -> str:
    """The document as indented JSON with sorted keys: one spelling per document."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _member(path: str, name: str) -> str:
    return f"{path}.{name}" if _NAME.match(name) else f"{path}[{json.dumps(name)}]"


def _changes(path: str, old: Any, new: Any, out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(set(old) | set(new)):
            where = _member(path, name)
            if name not in old:
                out.append(Change(where, "added", new=new[name]))
            elif name not in new:
                out.append(Change(where, "removed", old=old[name]))
            else:
                _changes(where, old[name], new[name], out)
    elif isinstance(old, list) and isinstance(new, list):
        if all(_scalar(v) for v in [*old, *new]):
            # A list of codes: what left, what came (order of first appearance).
            removed = [v for v in old if v not in new]
            added = [v for v in new if v not in old]
            out.extend(Change(path, "removed", old=v) for v in removed)
            out.extend(Change(path, "added", new=v) for v in added)
            if not removed and not added and old != new:
                out.append(Change(path, "changed", old=old, new=new))  # reordered, repeated
            return
        for i in range(max(len(old), len(new))):
            where = f"{path}[{i}]"
            if i >= len(old):
                out.append(Change(where, "added", new=new[i]))
            elif i >= len(new):
                out.append(Change(where, "removed", old=old[i]))
            else:
                _changes(where, old[i], new[i], out)
    elif type(old) is not type(new) or old != new:
        out.append(Change(path, "changed", old=old, new=new))


def _lines(old: str, new: str, old_label: str, new_label: str) -> list[DiffLine]:
    out: list[DiffLine] = []
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_label, new_label, n=CONTEXT, lineterm=""
    )
    for line in diff:
        if line.startswith(("---", "+++")):
            continue  # the labels are shown by whoever renders the diff
        if line.startswith("@@"):
            out.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            out.append(DiffLine("added", line[1:]))
        elif line.startswith("-"):
            out.append(DiffLine("removed", line[1:]))
        else:
            out.append(DiffLine("context", line[1:]))
    return out


def diff_documents(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    old_label: str = "old",
    new_label: str = "new",
) -> DocumentDiff:
    """What changed from ``old`` to ``new``: the changed paths, and unified diff lines."""
    changes: list[Change] = []
    _changes("$", dict(old), dict(new), changes)
    return DocumentDiff(changes, _lines(pretty(old), pretty(new), old_label, new_label))
