"""The data behind the auditor pages, read through the services from a real database:
decisions per bucket and denial reasons, the checkpoint history with its checks, the key
state series, and the charts drawn from them (SVG without script)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from attest_testing.service import token_for
from attest_testing.support import US_PASSPORT, Actors, LiveServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attest.audit.models import DecisionCount, DecisionCounts, ReasonCount
from attest.audit.service import AuditService
from attest.console.audit_charts import decision_charts, key_state_chart, key_states
from attest.console.audit_reports import period
from attest.db.pool import create_pool
from attest.errors import UnprocessableInput
from attest.keys.keyring import open_keystore
from attest.keys.models import SigningKey
from attest.log.models import SignedCheckpoint
from attest.log.service import LogService, _consistent, _signed
from attest.verify import _tlog

FABLE = "model:fable-5"
MYTHOS = "model:mythos-5"


@pytest.fixture
async def pool(live: LiveServer) -> AsyncIterator[Any]:
    made = await create_pool(live.settings.database_url, 2)
    try:
        yield made
    finally:
        await made.close()


def _decisions(actors: Actors) -> dict[str, Any]:
    """In the test's tenant: two tokens for fable, one for mythos, one denial for fable."""
    operator = actors.client("subjects:write", "evidence:write", "tokens:issue", name="op")
    reviewer = actors.client("evidence:review", "subjects:read", name="rev")
    eligible = operator.post("/v1/subjects", json={"external_ref": "c-1"}).json()
    evidence = operator.post(f"/v1/subjects/{eligible['id']}/evidence", json=US_PASSPORT).json()
    assert reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={}).status_code == 200
    for audience in (FABLE, FABLE, MYTHOS):
        assert token_for(operator, eligible["id"], audience).status_code == 201
    nobody = operator.post("/v1/subjects", json={"external_ref": "c-2"}).json()
    denied = token_for(operator, nobody["id"], FABLE)
    assert denied.status_code == 403, denied.text
    return {"reasons": sorted(r["code"] for r in denied.json()["reason_details"])}


async def test_decision_counts_per_audience_and_reason(
    live: LiveServer, actors: Actors, tenant: str, pool: Any
) -> None:
    expected = _decisions(actors)
    now = datetime.now(UTC)
    since, until, bucket = (
        now - timedelta(minutes=30),
        now + timedelta(minutes=30),
        timedelta(hours=1),
    )
    audit = AuditService(pool)
    counts = await audit.decision_counts(tenant, since=since, until=until, bucket=bucket)
    assert {(d.kind, d.audience, d.count) for d in counts.decisions} == {
        ("issued", FABLE, 2),
        ("issued", MYTHOS, 1),
        ("denied", FABLE, 1),
    }
    assert all(d.bucket == since for d in counts.decisions)
    assert sorted(r.reason for r in counts.reasons) == expected["reasons"]
    assert all(r.count == 1 for r in counts.reasons)
    # Another tenant sees none of them; every tenant (admin) sees at least them.
    other = await audit.decision_counts("t-nobody", since=since, until=until, bucket=bucket)
    assert other.decisions == []
    assert other.reasons == []
    every = await audit.decision_counts(None, since=since, until=until, bucket=bucket)
    assert sum(d.count for d in every.decisions if d.kind == "issued") >= 3
    # Outside the window: nothing.
    later = await audit.decision_counts(
        tenant, since=until, until=until + timedelta(hours=2), bucket=bucket
    )
    assert later.decisions == []
    # The charts drawn from them: one series per audience, no script anywhere.
    charts = {c.name: c for c in decision_charts(counts)}
    assert charts["issued"].series == {FABLE: [2], MYTHOS: [1]}
    assert charts["denied"].series == {FABLE: [1]}
    assert sorted(charts["reasons"].series) == expected["reasons"]
    for chart in charts.values():
        assert chart.svg.startswith("<svg")
        assert "<script" not in chart.svg
        assert "javascript" not in chart.svg.lower()
        assert base64.b64decode(chart.data_uri.split(",", 1)[1]).decode() == chart.svg
    assert FABLE in charts["issued"].svg


async def test_decision_counts_refuse_unbounded_charts(pool: Any) -> None:
    audit = AuditService(pool)
    now = datetime.now(UTC)
    with pytest.raises(UnprocessableInput):
        await audit.decision_counts(
            None, since=now - timedelta(days=30), until=now, bucket=timedelta(minutes=1)
        )
    with pytest.raises(UnprocessableInput):
        await audit.decision_counts(None, since=now, until=now, bucket=timedelta(hours=1))


def test_chart_labels_are_escaped_text() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    hostile = "<img src=x onerror=alert(1)>"
    counts = DecisionCounts(
        None,
        at,
        at + timedelta(hours=2),
        timedelta(hours=1),
        [DecisionCount(at, "denied", hostile, 4)],
        [ReasonCount(at + timedelta(hours=1), "no_evidence", 4)],
    )
    denied = {c.name: c for c in decision_charts(counts)}["denied"]
    assert denied.series == {hostile: [4, 0]}
    assert hostile not in denied.svg
    assert "&lt;img src=x onerror=alert(1)&gt;" in denied.svg
    # Parsed: no img element, no event-handler attribute anywhere; the label is text.
    root = ElementTree.fromstring(denied.svg)  # noqa: S314 - our own output, in a test
    elements = list(root.iter())
    assert not [e for e in elements if e.tag.rsplit("}", 1)[-1] in {"img", "image", "script"}]
    assert not [a for e in elements for a in e.attrib if a.lower().startswith("on")]
    assert any(e.text == hostile for e in elements)


def _key(kid: str, **times: datetime | None) -> SigningKey:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    fields: dict[str, Any] = {
        "activated_at": None,
        "retiring_at": None,
        "retired_at": None,
        "compromised_at": None,
        "activate_after": None,
        "retire_after": None,
        **times,
    }
    return SigningKey(
        kid=kid,
        alg="ES256",
        state="active",
        public_jwk={},
        keystore_ref="",
        created_at=times.get("created_at") or base,
        **{k: v for k, v in fields.items() if k != "created_at"},
    )


def test_key_states_follow_the_lifecycle_times() -> None:
    t = [datetime(2026, 1, d, tzinfo=UTC) for d in range(1, 7)]
    keys = [
        _key("a", created_at=t[0], activated_at=t[0], retiring_at=t[2], retired_at=t[4]),
        _key("b", created_at=t[1], activated_at=t[2], compromised_at=t[3]),
        _key("c", created_at=t[3], activated_at=t[3]),
    ]
    series = key_states(keys, t)
    assert series == {
        "pending": [0, 1, 0, 0, 0, 0],
        "active": [1, 1, 1, 1, 1, 1],
        "retiring": [0, 0, 1, 1, 0, 0],
        "retired": [0, 0, 0, 0, 1, 1],
        "compromised": [0, 0, 0, 1, 1, 1],
    }
    chart = key_state_chart(keys, t[0], t[5], timedelta(days=1))
    assert chart.labels == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
    assert chart.series["compromised"] == [0, 0, 1, 1, 1]  # at each period's end
    assert "compromised" in chart.svg


def test_periods_end_with_the_bucket_of_now() -> None:
    now = datetime(2026, 3, 1, 10, 17, tzinfo=UTC)
    since, until, bucket = period("24h", now)
    assert (since, until, bucket) == (
        datetime(2026, 2, 28, 11, tzinfo=UTC),
        datetime(2026, 3, 1, 11, tzinfo=UTC),
        timedelta(hours=1),
    )


def _tree_size(live: LiveServer) -> int:
    return int(httpx.get(live.base_url + "/v1/log/checkpoint").text.split("\n")[1])


def _grow_log(live: LiveServer, admin: httpx.Client) -> None:
    """Three more checkpoints: an audit event each, then wait for its checkpoint."""
    for _ in range(3):
        size = _tree_size(live)
        admin.put("/v1/audiences/model:history-test", json={"policy": "us-persons"})
        deadline = time.monotonic() + 10
        while _tree_size(live) <= size:
            assert time.monotonic() < deadline, "no new checkpoint"
            time.sleep(0.05)


async def test_checkpoint_history_checks_each_checkpoint(
    live: LiveServer, admin: httpx.Client, pool: Any
) -> None:
    settings = live.settings
    keystore = open_keystore(settings, lambda: settings.keystore_passphrase)
    service = LogService(
        pool,
        settings,
        keystore=keystore,
        connect=None,  # type: ignore[arg-type]  # no sequencer here: reads only
        key_service=None,  # type: ignore[arg-type]
        token_service=None,  # type: ignore[arg-type]
    )
    await service.open(datetime.now(UTC))
    await asyncio.to_thread(_grow_log, live, admin)
    history = await service.checkpoint_history(limit=3)
    assert len(history) == 3
    sizes = [c.size for c in history]
    assert sizes == sorted(sizes, reverse=True)
    assert all(c.signature_verified for c in history)
    assert all(c.consistent_with_older for c in history)
    assert [c.older_size for c in history[:-1]] == sizes[1:]
    # The next page starts below the last one shown.
    older = await service.checkpoint_history(limit=2, below=sizes[-1])
    assert all(c.size < sizes[-1] for c in older)
    keystore.close()


def test_a_forged_checkpoint_is_not_verified() -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    origin = "attest.test/log"
    key = _tlog.parse_vkey(_tlog.vkey(origin, public))
    leaves = [b"a", b"b", b"c"]
    hashes = [_tlog.leaf_hash(x) for x in leaves]
    root2 = _tlog.node_hash(hashes[0], hashes[1])
    root3 = _tlog.node_hash(root2, hashes[2])

    def note(size: int, root: bytes) -> str:
        text = _tlog.format_checkpoint(origin, size, root)
        return text + "\n" + _tlog.signature_line(origin, public, private.sign(text.encode()))

    at = datetime.now(UTC)
    two = SignedCheckpoint(2, root2, note(2, root2), at)
    three = SignedCheckpoint(3, root3, note(3, root3), at)
    assert _signed(two, key)
    assert _signed(three, key)
    # A row whose root is not what its note signed, and a note signed by another key.
    assert not _signed(SignedCheckpoint(3, root2, three.note, at), key)
    other = Ed25519PrivateKey.generate()
    forged_text = _tlog.format_checkpoint(origin, 3, root3)
    forged = (
        forged_text + "\n" + _tlog.signature_line(origin, public, other.sign(forged_text.encode()))
    )
    assert not _signed(SignedCheckpoint(3, root3, forged, at), key)
    # Consistency 2 -> 3 is the single hash of leaf c; a forked root fails it.
    assert _consistent(two, three, [hashes[2]])
    assert not _consistent(two, SignedCheckpoint(3, b"\1" * 32, "", at), [hashes[2]])
