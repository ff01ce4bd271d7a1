"""Two database roles (DESIGN.md, "Audit and transparency log"): migrations run as the
owner; the service connects as a role that owns nothing and may not rewrite the audit
trail, its checkpoints or the status history, nor drop the triggers that guard them."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from attest_testing.support import US_PASSPORT, Clock, execute, make_settings, start_server

from attest.db.roles import with_user


@pytest.fixture
def service_role(fresh_database: str) -> Iterator[str]:
    role = f"attest_svc_{secrets.token_hex(4)}"
    asyncio.run(execute(fresh_database, f'CREATE ROLE "{role}" LOGIN'))
    try:
        yield role
    finally:
        for sql in (f'DROP OWNED BY "{role}"', f'DROP ROLE IF EXISTS "{role}"'):
            asyncio.run(execute(fresh_database, sql))


async def _as(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_the_service_role_cannot_rewrite_history(
    fresh_database: str, service_role: str, tmp_path: Path
) -> None:
    service_url = with_user(fresh_database, service_role)
    settings = make_settings(service_url, tmp_path, migration_database_url=fresh_database)
    server = start_server(settings, Clock())
    try:
        with server.client(server.admin_key) as admin:
            made = admin.post("/v1/subjects", json={"external_ref": "r-1", "tenant": "t"})
            assert made.status_code == 201, made.text
            evidence = admin.post(f"/v1/subjects/{made.json()['id']}/evidence", json=US_PASSPORT)
            assert evidence.status_code == 201, evidence.text
            issued = admin.post(
                "/v1/tokens", json={"subject_id": made.json()["id"], "audience": "model:fable-5"}
            )
            assert issued.status_code in (201, 403), issued.text
            revoked = admin.post(f"/v1/subjects/{made.json()['id']}/revocations", json={})
            assert revoked.status_code == 201, revoked.text
    finally:
        server.stop()

    assert asyncio.run(_as(service_url, "SELECT current_user")) == service_role
    assert asyncio.run(_as(service_url, "SELECT count(*) FROM audit_events")) > 0
    for sql in (
        "UPDATE audit_events SET data = '{}'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_events_no_rewrite ON audit_events",
        "UPDATE log_checkpoints SET note = ''",
        "DELETE FROM token_status_changes",
        "UPDATE schema_migrations SET checksum = 'x'",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            asyncio.run(_as(service_url, sql))
    owner = asyncio.run(_as(fresh_database, "SELECT tableowner FROM pg_tables "
                                             "WHERE tablename = 'audit_events'"))  # fmt: skip
    assert owner != service_role


def test_one_url_for_both_roles_starts_with_a_warning(fresh_database: str, tmp_path: Path) -> None:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep(logging.WARNING)
    logger = logging.getLogger("attest")
    logger.addHandler(handler)
    try:
        server = start_server(make_settings(fresh_database, tmp_path), Clock())
        server.stop()
    finally:
        logger.removeHandler(handler)
    assert any("ATTEST_MIGRATION_DATABASE_URL is not set" in m for m in seen)


def test_the_embedded_default_sets_up_both_roles() -> None:
    import shutil
    import tempfile

    from attest.db.embedded import EmbeddedPostgres
    from attest.db.roles import EMBEDDED_SERVICE_ROLE

    root = Path(tempfile.mkdtemp(prefix="at-"))  # the socket path must stay short
    settings = make_settings(None, root)  # type: ignore[arg-type]
    server = start_server(settings, Clock())
    try:
        url = EmbeddedPostgres(settings.data_dir).start()  # attaches to the running server
        checks = asyncio.run(
            _as(
                url,
                "SELECT array[has_table_privilege('attest_service', 'audit_events', 'UPDATE'),"
                " has_table_privilege('attest_service', 'audit_events', 'INSERT'),"
                " (SELECT count(*) > 0 FROM pg_stat_activity WHERE usename = 'attest_service')]",
            )
        )
        assert list(checks) == [False, True, True]
        assert EMBEDDED_SERVICE_ROLE == "attest_service"
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
