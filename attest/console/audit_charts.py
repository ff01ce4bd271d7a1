"""The auditor's charts, drawn on the server as SVG (pygal), readable without JavaScript.

Pure: counts in, SVG text out. pygal writes its configuration as an inline ``<script>``
whatever ``js`` says; an xml filter (``add_xml_filter``, pygal's hook on the element tree
before it is written) drops every script element, so the SVG holds shapes, text and
one ``<style>`` only. Pages show each chart as an ``<img>`` whose source is a ``data:`` URI
(the console's CSP allows ``img-src data:``): an SVG image never runs script nor loads
anything, and its own ``<style>`` is not an inline style of the page. Each chart comes with
its numbers as a table, for screen readers and for copying.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pygal
from pygal.style import Style

from attest.audit.models import DecisionCounts
from attest.keys.models import SigningKey

__all__ = [
    "KEY_STATES",
    "Chart",
    "bucket_starts",
    "decision_charts",
    "key_state_chart",
    "key_states",
    "render",
]

KEY_STATES = ("pending", "active", "retiring", "retired", "compromised")
#: Colours that stay apart for the common colour-vision deficiencies (Okabe-Ito).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#222222",
    foreground_strong="#111111",
    foreground_subtle="#666666",
    colors=PALETTE,
    font_family="system-ui, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    title_font_size=15,
)


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: its title, the x labels, each series' values, and the SVG."""

    name: str
    title: str
    labels: list[str]
    series: dict[str, list[int]]
    svg: str

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode()).decode()

    @property
    def empty(self) -> bool:
        return not any(any(values) for values in self.series.values())


def bucket_starts(since: datetime, until: datetime, bucket: timedelta) -> list[datetime]:
    """The start of every bucket of ``[since, until)`` (the buckets of ``date_bin``)."""
    out, at = [], since
    while at < until:
        out.append(at)
        at += bucket
    return out


def _label(at: datetime, bucket: timedelta) -> str:
    if bucket >= timedelta(days=1):
        return at.strftime("%Y-%m-%d")
    return at.strftime("%m-%d %H:%M")


def _no_scripts(root: Any) -> Any:
    """pygal xml filter: remove every script element (its config script included)."""
    for parent in list(root.iter()):
        for child in list(parent):
            if str(child.tag).rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def render(title: str, labels: Sequence[str], series: dict[str, list[int]]) -> str:
    """A stacked bar chart as standalone SVG text without any script."""
    chart = pygal.StackedBar(
        title=title,
        style=STYLE,
        width=860,
        height=340,
        js=[],
        disable_xml_declaration=True,
        x_label_rotation=30,
        show_minor_x_labels=False,
        x_labels_major_every=max(1, len(labels) // 12),
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        truncate_legend=-1,
        print_values=False,
        no_data_text="No data in this period",
    )
    if series:
        # Counts are whole numbers: integer ticks, about five of them.
        top = max((sum(column) for column in zip(*series.values(), strict=True)), default=0)
        step = max(1, -(-top // 5))
        chart.y_labels = list(range(0, max(top, 1) + step, step))
    chart.add_xml_filter(_no_scripts)
    chart.x_labels = list(labels)
    for name, values in series.items():
        chart.add(name, values)
    svg: str = chart.render(is_unicode=True)
    return svg


def _series(
    starts: list[datetime], rows: Iterable[tuple[datetime, str, int]]
) -> dict[str, list[int]]:
    index = {at: i for i, at in enumerate(starts)}
    out: dict[str, list[int]] = {}
    for at, name, count in rows:
        i = index.get(at)
        if i is not None:
            out.setdefault(name, [0] * len(starts))[i] += count
    return dict(sorted(out.items()))


def decision_charts(counts: DecisionCounts) -> list[Chart]:
    """Tokens issued per audience, tokens denied per audience, denials by reason."""
    starts = bucket_starts(counts.since, counts.until, counts.bucket)
    labels = [_label(at, counts.bucket) for at in starts]
    issued = _series(
        starts, ((d.bucket, d.audience, d.count) for d in counts.decisions if d.kind == "issued")
    )
    denied = _series(
        starts, ((d.bucket, d.audience, d.count) for d in counts.decisions if d.kind == "denied")
    )
    reasons = _series(starts, ((r.bucket, r.reason, r.count) for r in counts.reasons))
    out = []
    for name, title, series in (
        ("issued", "Tokens issued, per audience", issued),
        ("denied", "Tokens denied, per audience", denied),
        ("reasons", "Denials by reason (a denial counts once per reason)", reasons),
    ):
        out.append(Chart(name, title, labels, series, render(title, labels, series)))
    return out


def _state_at(key: SigningKey, at: datetime) -> str | None:
    """The key's state at ``at`` from its lifecycle times (None: not created yet)."""
    for state, since in (
        ("compromised", key.compromised_at),
        ("retired", key.retired_at),
        ("retiring", key.retiring_at),
        ("active", key.activated_at),
        ("pending", key.created_at),
    ):
        if since is not None and since <= at:
            return state
    return None


def key_states(keys: Iterable[SigningKey], points: Sequence[datetime]) -> dict[str, list[int]]:
    """How many keys were in each state at each of ``points``."""
    series = {state: [0] * len(points) for state in KEY_STATES}
    for key in keys:
        for i, at in enumerate(points):
            state = _state_at(key, at)
            if state is not None:
                series[state][i] += 1
    return series


def key_state_chart(
    keys: Iterable[SigningKey], since: datetime, until: datetime, bucket: timedelta
) -> Chart:
    """Signing keys by state at the end of each bucket (from the key history)."""
    starts = bucket_starts(since, until, bucket)
    ends = [min(at + bucket, until) for at in starts]
    labels = [_label(at, bucket) for at in starts]
    series = key_states(keys, ends)
    title = "Signing keys by state (at the end of each period)"
    return Chart("keys", title, labels, series, render(title, labels, series))
