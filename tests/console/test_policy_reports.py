"""Policy diffs and governance history: the pure functions, then the policy and audience
pages' data composed from the real policy and audit services on a live database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from attest_testing.support import LiveServer

from attest.audit.service import AuditService
from attest.console.policies_reports import audience_page, policy_list, policy_page
from attest.db.pool import create_pool
from attest.errors import NotFound
from attest.policy.diff import Change, diff_documents
from attest.policy.history import Binding, VersionSpan, bindings, governed, version_spans
from attest.policy.service import PolicyService
from attest.principal import Client

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
T = [datetime(2026, 1, d, tzinfo=UTC) for d in range(1, 11)]


def test_diff_names_the_changed_rule() -> None:
    old = {"name": "p", "version": 1, **CITIZENS}
    new = {"name": "p", "version": 2, **PERSONS}
    diff = diff_documents(old, new, old_label="version 1", new_label="version 2")
    assert not diff.same
    assert Change("$.rule.any_of", "added", new="us_national") in diff.changes
    assert Change("$.rule.any_of", "added", new="lawful_permanent_resident") in diff.changes
    assert Change("$.version", "changed", old=1, new=2) in diff.changes
    assert (
        Change("$.description", "changed", old=CITIZENS["description"], new=PERSONS["description"])
        in diff.changes
    )
    assert not [c for c in diff.changes if c.kind == "removed"]
    added = [line.text.strip() for line in diff.lines if line.kind == "added"]
    assert '"lawful_permanent_resident"' in added
    assert '"version": 2' in added
    removed = [line.text.strip() for line in diff.lines if line.kind == "removed"]
    assert '"version": 1' in removed
    assert diff.lines[0].kind == "hunk"


def test_diff_of_nested_and_removed_members() -> None:
    old = {"rule": {"all_of": [{"attribute": "a", "any_of": ["x"]}]}, "max_age": 5, "k y": 1}
    new = {"rule": {"all_of": [{"attribute": "a", "none_of": ["x"]}]}, "k y": 2}
    changes = diff_documents(old, new).changes
    assert Change("$.max_age", "removed", old=5) in changes
    assert Change("$.rule.all_of[0].any_of", "removed", old=["x"]) in changes
    assert Change("$.rule.all_of[0].none_of", "added", new=["x"]) in changes
    assert Change('$["k y"]', "changed", old=1, new=2) in changes
    assert diff_documents(old, dict(old)).same
    assert diff_documents(old, dict(old)).lines == []


def test_version_spans_follow_effective_at() -> None:
    spans = version_spans(
        "p",
        [
            (1, T[0], None),
            (2, T[1], T[4]),  # scheduled: governs from T4
            (3, T[2], T[3]),  # scheduled earlier than 2 would start: 2 never governs
            (4, T[5], None),
        ],
    )
    assert spans == [
        VersionSpan("p", 1, T[0], T[3]),
        VersionSpan("p", 3, T[3], T[5]),
        VersionSpan("p", 4, T[5], None),
    ]


def test_governed_intersects_bindings_and_versions() -> None:
    spans = {
        "p": [VersionSpan("p", 1, T[0], T[4]), VersionSpan("p", 2, T[4], None)],
        "q": [VersionSpan("q", 1, T[0], None)],
    }
    bound = bindings([("aud", "p", T[2]), ("aud", "q", T[6]), ("other", "p", T[5])])
    assert bound == [
        Binding("aud", "p", T[2], T[6]),
        Binding("aud", "q", T[6], None),
        Binding("other", "p", T[5], None),
    ]
    decided = governed(spans, bound)
    assert [(g.audience, g.policy, g.version, g.since, g.until) for g in decided] == [
        ("aud", "p", 1, T[2], T[4]),
        ("aud", "p", 2, T[4], T[6]),
        ("other", "p", 2, T[5], None),
        ("aud", "q", 1, T[6], None),
    ]


def _publish_and_bind(admin: httpx.Client, name: str, audience: str) -> None:
    """v1, bind the audience to it, v2, then rebind the audience to us-persons."""
    for path, body in (
        (f"/v1/policies/{name}", CITIZENS),
        (f"/v1/audiences/{audience}", {"policy": name}),
        (f"/v1/policies/{name}", PERSONS),
        (f"/v1/audiences/{audience}", {"policy": "us-persons"}),
    ):
        response = admin.put(path, json=body)
        assert response.status_code in {200, 201}, response.text


@pytest.fixture
async def services(live: LiveServer) -> AsyncIterator[tuple[PolicyService, AuditService]]:
    pool = await create_pool(live.settings.database_url, 2)
    try:
        yield PolicyService(pool, live.settings), AuditService(pool)
    finally:
        await pool.close()


def _admin_client() -> Client:
    return Client(
        id=uuid.uuid4(), name="admin", tenant="default", scopes=frozenset(), is_admin=True
    )


async def test_policy_and_audience_pages_from_the_database(
    live: LiveServer, admin: httpx.Client, services: tuple[PolicyService, AuditService]
) -> None:
    policies, audit = services
    name = f"p-{uuid.uuid4().hex[:10]}"
    audience = f"model:console-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(_publish_and_bind, admin, name, audience)
    client = _admin_client()
    page = await policy_page(
        name, client=client, old=None, new=None, policy_service=policies, audit_service=audit
    )
    assert [row.version.version for row in page.versions] == [2, 1]
    assert (page.old, page.new) == (1, 2)
    assert page.diff is not None
    assert Change("$.rule.any_of", "added", new="lawful_permanent_resident") in page.diff.changes
    v2, v1 = page.versions
    assert [g.audience for g in v1.governed] == [audience]
    assert [g.audience for g in v2.governed] == [audience]
    # v1 decided from the binding until v2; v2 from then until the rebinding.
    assert v1.governed[0].until == v2.governed[0].since == v2.version.created_at
    assert v2.governed[0].until is not None
    assert page.audiences_now == []  # rebound to us-persons
    # The audience page: two bindings, the versions that decided for it.
    seen = await audience_page(
        audience, client=client, policy_service=policies, audit_service=audit
    )
    assert [b.policy for b in seen.bindings] == [name, "us-persons"]
    assert [(g.policy, g.version) for g in seen.governed] == [
        (name, 1),
        (name, 2),
        ("us-persons", 1),
    ]
    assert seen.governed[-1].until is None
    # A tenant's auditor sees the same platform history.
    tenant = Client(id=uuid.uuid4(), name="aud", tenant="t-x", scopes=frozenset(), is_admin=False)
    theirs = await audience_page(
        audience, client=tenant, policy_service=policies, audit_service=audit
    )
    assert theirs.governed == seen.governed
    listed, audiences = await policy_list(policies)
    assert {p.name for p in listed} >= {name, "us-persons", "us-nationals-only"}
    assert next(p for p in listed if p.name == name).version == 2
    assert any(a.audience == audience for a in audiences)
    with pytest.raises(NotFound):
        await policy_page(
            name, client=client, old=1, new=7, policy_service=policies, audit_service=audit
        )
    with pytest.raises(NotFound):
        await policy_page(
            f"{name}-none",
            client=client,
            old=None,
            new=None,
            policy_service=policies,
            audit_service=audit,
        )
