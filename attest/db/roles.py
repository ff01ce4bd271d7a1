"""Two database roles: the owner runs the migrations; the service may not rewrite history.

The service connects as a role that owns no table and may INSERT and SELECT the audit
trail and the log but not UPDATE, DELETE or TRUNCATE them (DESIGN.md, "Audit and
transparency log"). Two column- or row-level exceptions are granted, each bounded by an
owner-held trigger the service role cannot drop: ``audit_events.log_index`` may be set once
(the sequencer; 0007_log.sql refuses any other change) and a partial hash tile may grow
(``log_tiles``; refused unless the new hashes extend the old), with the log state's size.
Everything else is ordinary data the service maintains.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

from attest.db import Conn

__all__ = ["EMBEDDED_SERVICE_ROLE", "ensure_role", "grant_service", "url_user", "with_user"]

#: The service role the embedded default creates for itself.
EMBEDDED_SERVICE_ROLE = "attest_service"

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")

#: Append-only for the service: the trail, its signed checkpoints, the status history.
_APPEND_ONLY = ("audit_events", "log_checkpoints", "token_status_changes")


def url_user(url: str) -> str | None:
    """The user named in a postgresql:// URL (None: the library's default)."""
    parts = urlsplit(url)
    return parts.username or None


def with_user(url: str, user: str) -> str:
    """The same URL, connecting as ``user`` without a password (the embedded server trusts
    local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{quote(user)}:@{host}", parts.path, parts.query, ""))


#: Advisory lock key serialising the service role's grants ("attestgr" in ASCII, 63 bits).
GRANT_LOCK = 0x6174746573746772


def _ident(role: str) -> str:
    if not _IDENTIFIER.fullmatch(role):
        raise ValueError(f"the service role name {role!r} is not a plain lowercase identifier")
    return f'"{role}"'


async def ensure_role(conn: Conn, role: str) -> None:
    """Create the login role ``role`` unless it exists (embedded default only)."""
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        await conn.execute(f"CREATE ROLE {_ident(role)} LOGIN")


async def grant_service(conn: Conn, role: str) -> None:
    """Give the service role what it needs and no more (idempotent; run by the owner after
    the migrations, at every start, so new tables are covered)."""
    name = _ident(role)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {name}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {name}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {name}",
        f"REVOKE UPDATE, DELETE ON {', '.join(_APPEND_ONLY)} FROM {name}",
        f"GRANT UPDATE (log_index) ON audit_events TO {name}",
        f"REVOKE DELETE ON log_tiles, log_state, log_keys, schema_migrations FROM {name}",
        f"REVOKE INSERT, UPDATE ON schema_migrations FROM {name}",
    ]
    async with conn.transaction():
        # Instances (or `attest serve` workers) starting together grant at the same time, and
        # concurrent GRANTs on one table fail ("tuple concurrently updated"): one at a time.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", GRANT_LOCK)
        for statement in statements:
            await conn.execute(statement)
