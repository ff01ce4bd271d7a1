"""Fixtures for the key lifecycle tests: a fresh database per test, servers on it, tokens.

Each test gets its own database, so rotations (which change the whole service's keys) never
reach the session's shared server. Time moves through the injected clock; where a
background task must act (the scheduled rotation), tests poll for its result with a
deadline instead of sleeping for a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from attest_testing.postgres import database
from attest_testing.support import (
    OPERATOR_SCOPES,
    US_PASSPORT,
    Clock,
    LiveServer,
    make_settings,
)
from attest_testing.support import start_server as _start_server

SOFTHSM_LIB = Path("/usr/lib/softhsm/libsofthsm2.so")

#: Short but valid key settings: pre-publication = JWKS max-age, retiring window =
#: token lifetime (600 s default) + leeway.
KEY_SETTINGS: dict[str, Any] = {
    "jwks_max_age": 60,
    "key_prepublish": 60,
    "key_rotation_interval": 3600,
    "key_retiring_window": 660,
    "key_leeway": 60,
    "key_check_interval_ms": 3_600_000,  # no background ticks unless a test asks for them
    "four_eyes_min_assurance": "never",
}


class KeyWorld:
    """Servers sharing one fresh database and one keystore, with one adjustable clock."""

    def __init__(self, database_url: str, root: Path) -> None:
        self.database_url = database_url
        self.root = root
        self.clock = Clock()
        self.servers: list[LiveServer] = []
        base = make_settings(database_url, root, **KEY_SETTINGS)
        self.secrets = {
            "keystore_passphrase": base.keystore_passphrase,
            "pairwise_secret": base.pairwise_secret,
            "bootstrap_admin_key": base.bootstrap_admin_key,
        }

    def settings(self, **overrides: Any) -> Any:
        values = {**KEY_SETTINGS, **self.secrets, **overrides}
        return make_settings(self.database_url, self.root, **values)

    def start(self, **overrides: Any) -> LiveServer:
        server = _start_server(self.settings(**overrides), self.clock)
        self.servers.append(server)
        return server

    def stop(self, server: LiveServer) -> None:
        server.stop()
        self.servers.remove(server)

    def close(self) -> None:
        for server in list(self.servers):
            self.stop(server)

    def run(self, work: Callable[[Any], Any]) -> Any:
        """Run ``work(conn)`` on the world's database (a connection set up as the app's)."""
        import asyncpg

        from attest.db.pool import init_connection

        async def run() -> Any:
            conn = await asyncpg.connect(self.database_url)
            try:
                await init_connection(conn)
                return await work(conn)
            finally:
                await conn.close()

        return asyncio.run(run())

    def keystore(self) -> Any:
        from attest.keys.keystore import FileKeystore

        return FileKeystore(self.root / "keys", self.secrets["keystore_passphrase"])

    def tick(self, **overrides: Any) -> Any:
        """One scheduled-transition check at the world's clock, as an instance runs it."""
        from attest.keys.lifecycle import KeyPolicy, tick

        policy = KeyPolicy.from_settings(self.settings(**overrides))
        return self.run(lambda conn: tick(conn, self.keystore(), policy, self.clock()))

    def fetch(self, sql: str, *args: Any) -> list[Any]:
        import asyncpg

        async def run() -> list[Any]:
            conn = await asyncpg.connect(self.database_url)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(run())


class Issuer:
    """An operator client with one eligible subject on a server: issues tokens."""

    def __init__(self, server: LiveServer) -> None:
        tenant = f"t-{uuid.uuid4().hex[:10]}"
        with server.client(server.admin_key) as admin:
            made = admin.post(
                "/v1/clients",
                json={"name": "operator", "scopes": list(OPERATOR_SCOPES), "tenant": tenant},
            )
            assert made.status_code == 201, made.text
        self.http = server.client(made.json()["api_key"])
        subject = self.http.post("/v1/subjects", json={"external_ref": "hr-1"}).json()
        evidence = self.http.post(f"/v1/subjects/{subject['id']}/evidence", json=US_PASSPORT)
        assert evidence.json()["status"] == "verified", evidence.text
        self.subject_id = subject["id"]

    def issue(self, audience: str = "model:fable-5") -> str:
        response = self.http.post(
            "/v1/tokens", json={"subject_id": self.subject_id, "audience": audience}
        )
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def key_db(database_url: str) -> Iterator[str]:
    with database(database_url, "attest_keys") as url:
        yield url


@pytest.fixture
def world(key_db: str, tmp_path: Path) -> Iterator[KeyWorld]:
    made = KeyWorld(key_db, tmp_path)
    yield made
    made.close()


def wait_for(check: Callable[[], Any], *, timeout: float = 15, what: str = "condition") -> Any:
    """Poll a background task's visible result (never a fixed sleep standing in for time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def waiter() -> Callable[..., Any]:
    return wait_for


@pytest.fixture
def issuer_for() -> Iterator[Callable[[LiveServer], Issuer]]:
    made: list[Issuer] = []

    def make(server: LiveServer) -> Issuer:
        issuer = Issuer(server)
        made.append(issuer)
        return issuer

    yield make
    for issuer in made:
        issuer.close()


def keys_of(server: LiveServer) -> list[dict[str, Any]]:
    with server.client(server.admin_key) as admin:
        response = admin.get("/v1/keys")
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["keys"]
        return found


@pytest.fixture
def admin_keys() -> Callable[[LiveServer], list[dict[str, Any]]]:
    return keys_of


def jwks_of(server: LiveServer) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(server.base_url + "/.well-known/jwks.json").json()
    return document


@pytest.fixture
def published() -> Callable[[LiveServer], dict[str, Any]]:
    return jwks_of


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh SoftHSM2 token for the session (SoftHSM reads its config once per process)."""
    if not SOFTHSM_LIB.exists() or shutil.which("softhsm2-util") is None:
        pytest.skip(f"libsofthsm2 is absent ({SOFTHSM_LIB}): install Debian's softhsm2")
    pytest.importorskip("pkcs11", reason="python-pkcs11 (server extra) is not installed")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nlog.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label, pin = "attest-test", secrets.token_hex(4)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            secrets.token_hex(4),
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield {"module": str(SOFTHSM_LIB), "label": label, "pin": pin, "conf": str(conf)}
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
