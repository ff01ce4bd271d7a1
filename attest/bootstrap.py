"""First-start work: migrations, built-in policies and demo audiences, admin key, signing key.

Each step is idempotent and runs under an advisory lock, so several instances starting
at once do it exactly once between them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from attest.audit import service as audit
from attest.clients.service import ALL_SCOPES, count_clients, generate_key, parse_key, register
from attest.db import Conn
from attest.db.migrations import apply_migrations
from attest.keys.keystore import Keystore, Signer
from attest.keys.lifecycle import KeyPolicy, check_audience_lifetimes, ensure_signing_key
from attest.policy import repository as policies
from attest.policy.document import builtin_policies, policy_digest
from attest.settings import Settings

__all__ = ["DEMO_AUDIENCES", "BootstrapResult", "bootstrap"]

log = logging.getLogger(__name__)

BOOTSTRAP_LOCK = 0x617474657302
DEMO_AUDIENCES = ("model:fable-5", "model:mythos-5")
DEMO_POLICY = "us-nationals-only"
ADMIN_TENANT = "default"


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    signer: Signer
    #: The admin API key when this start generated it (print once), else None.
    generated_admin_key: str | None


async def _seed_policies(conn: Conn, settings: Settings, now: datetime) -> None:
    for document in builtin_policies():
        if await policies.latest_policy(conn, document["name"]) is not None:
            continue
        digest = policy_digest(document)
        await policies.insert_policy(conn, document, digest, None)
        await audit.record(
            conn,
            "policy.published",
            occurred_at=now,
            actor=None,
            tenant=None,
            data={"policy": document["name"], "version": document["version"], "digest": digest},
        )
    for audience in DEMO_AUDIENCES:
        if await policies.get_audience(conn, audience) is not None:
            continue
        lifetime = settings.default_token_lifetime
        await policies.insert_audience_if_absent(conn, audience, DEMO_POLICY, lifetime)
        await audit.record(
            conn,
            "audience.updated",
            occurred_at=now,
            actor=None,
            tenant=None,
            data={
                "audience": audience,
                "policy": DEMO_POLICY,
                "token_lifetime": lifetime,
                "binding_required": False,
            },
        )


async def _ensure_admin(conn: Conn, settings: Settings, now: datetime) -> str | None:
    if await count_clients(conn) > 0:
        return None
    if settings.bootstrap_admin_key:
        key = parse_key(settings.bootstrap_admin_key)
        assert key is not None  # noqa: S101 - the format is checked when settings load
        generated = None
    else:
        key = generate_key()
        generated = key.api_key
    await register(
        conn,
        key=key,
        name="bootstrap admin",
        tenant=ADMIN_TENANT,
        scopes=list(ALL_SCOPES),
        is_admin=True,
        created_by=None,
        now=now,
        via="bootstrap",
    )
    return generated


async def bootstrap(
    conn: Conn, settings: Settings, keystore: Keystore, now: datetime
) -> BootstrapResult:
    await apply_migrations(conn)
    await conn.execute("SELECT pg_advisory_lock($1)", BOOTSTRAP_LOCK)
    try:
        async with conn.transaction():
            await _seed_policies(conn, settings, now)
            admin_key = await _ensure_admin(conn, settings, now)
            await check_audience_lifetimes(conn, settings)
            signer = await ensure_signing_key(
                conn, keystore, KeyPolicy.from_settings(settings), now
            )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", BOOTSTRAP_LOCK)
    return BootstrapResult(signer, admin_key)
