"""Which policy version governed which audience, and when. Pure: plain data in and out.

A version governs its policy from its ``effective_at`` (a scheduled version) or from its
publication, until a later version starts to (the repository's ``SELECT_GOVERNING``: the
highest version already in effect decides). An audience is bound to a policy from each
``audience.updated`` event until the next one for that audience. Intersecting the two gives,
per audience, the versions that decided for it and over which interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Binding", "Governed", "VersionSpan", "bindings", "governed", "version_spans"]


@dataclass(frozen=True, slots=True)
class VersionSpan:
    """A version governs its policy over ``[starts, ends)``; ``ends`` None: still does."""

    policy: str
    version: int
    starts: datetime
    ends: datetime | None


@dataclass(frozen=True, slots=True)
class Binding:
    """The audience was bound to ``policy`` over ``[since, until)``."""

    audience: str
    policy: str
    since: datetime
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Governed:
    """Version ``version`` of ``policy`` decided for ``audience`` over ``[since, until)``."""

    audience: str
    policy: str
    version: int
    since: datetime
    until: datetime | None


def version_spans(
    policy: str, versions: Iterable[tuple[int, datetime, datetime | None]]
) -> list[VersionSpan]:
    """Spans of ``(version, published_at, effective_at)``: a version superseded before it
    took effect never governed and has no span."""
    starts = sorted((v, effective or published) for v, published, effective in versions)
    out: list[VersionSpan] = []
    for i, (version, start) in enumerate(starts):
        later = [s for _, s in starts[i + 1 :]]
        if any(s <= start for s in later):
            continue  # a higher version was in effect by the time this one would start
        out.append(VersionSpan(policy, version, start, min(later, default=None)))
    return out


def bindings(events: Iterable[tuple[str, str, datetime]]) -> list[Binding]:
    """Bindings from ``(audience, policy, at)`` events (``audience.updated``), any order."""
    by_audience: dict[str, list[tuple[datetime, str]]] = {}
    for audience, policy, at in events:
        by_audience.setdefault(audience, []).append((at, policy))
    out: list[Binding] = []
    for audience, changes in sorted(by_audience.items()):
        changes.sort(key=lambda c: c[0])
        for i, (at, policy) in enumerate(changes):
            until = changes[i + 1][0] if i + 1 < len(changes) else None
            out.append(Binding(audience, policy, at, until))
    return out


def _before(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier end; None is open."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def governed(
    spans: Mapping[str, Sequence[VersionSpan]], bound: Iterable[Binding]
) -> list[Governed]:
    """Each binding intersected with its policy's version spans, in time order."""
    out: list[Governed] = []
    for binding in bound:
        for span in spans.get(binding.policy, ()):
            since = max(binding.since, span.starts)
            until = _before(binding.until, span.ends)
            if until is None or since < until:
                out.append(Governed(binding.audience, span.policy, span.version, since, until))
    out.sort(key=lambda g: (g.since, g.audience, g.version))
    return out
