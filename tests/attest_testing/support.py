"""Test support: the adjustable clock, a live server in a thread, API client factories."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn


def with_database(url: str, name: str) -> str:
    """The same server URL, naming another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Clock:
    """An adjustable clock injected into the app: tests move time, never sleep.

    It also counts its reads per thread, so a test can wait for a live server's background
    work to have happened (each scheduled key check reads the clock once, in the server's
    thread) instead of sleeping for a time it hopes is long enough.
    """

    offset: timedelta = field(default_factory=timedelta)
    reads: Counter[int] = field(default_factory=Counter, repr=False, compare=False)

    def __call__(self) -> datetime:
        self.reads[threading.get_ident()] += 1  # each thread only ever writes its own key
        return datetime.now(UTC) + self.offset

    def reads_by(self, thread: threading.Thread) -> int:
        """How often code running in ``thread`` (a live server's) has read this clock."""
        return self.reads[thread.ident or 0]

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    base_url: str
    admin_key: str
    settings: Any
    clock: Clock
    server: Any
    thread: threading.Thread

    def client(self, api_key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(settings: Any, clock: Clock) -> LiveServer:
    from attest.app import create_app

    app = create_app(settings, clock=clock, announce=lambda _text: None)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("attest test server did not start")
        time.sleep(0.05)
    return LiveServer(
        base_url=f"http://127.0.0.1:{settings.port}",
        admin_key=settings.bootstrap_admin_key,
        settings=settings,
        clock=clock,
        server=server,
        thread=thread,
    )


def make_settings(database_url: str, root: Path, **overrides: Any) -> Any:
    from attest.clients.service import generate_key
    from attest.settings import load_settings

    port = overrides.pop("port", None) or _free_port()
    values: dict[str, Any] = {
        "database_url": database_url,
        "port": port,
        "issuer": f"http://127.0.0.1:{port}",
        "data_dir": str(root / "data"),
        "keystore": str(root / "keys"),
        "keystore_passphrase": "test-passphrase-" + secrets.token_hex(8),
        "pairwise_secret": secrets.token_hex(32),
        "bootstrap_admin_key": generate_key().api_key,
        # No scheduled rotation on shared servers: tests that move the clock by days must
        # not rotate keys under other tests. Rotation tests start servers of their own.
        "key_rotation_interval": 0,
    }
    values.update(overrides)
    return load_settings(environ={}, **values)


class Actors:
    """Creates API clients in a tenant and hands back HTTP clients bound to their keys."""

    def __init__(self, live: LiveServer, admin: httpx.Client, tenant: str) -> None:
        self.live = live
        self.admin = admin
        self.tenant = tenant
        self._open: list[httpx.Client] = []

    def key(self, *scopes: str, name: str = "test", tenant: str | None = None) -> str:
        response = self.admin.post(
            "/v1/clients",
            json={"name": name, "scopes": list(scopes), "tenant": tenant or self.tenant},
        )
        assert response.status_code == 201, response.text
        key: str = response.json()["api_key"]
        return key

    def client(self, *scopes: str, name: str = "test", tenant: str | None = None) -> httpx.Client:
        http = self.live.client(self.key(*scopes, name=name, tenant=tenant))
        self._open.append(http)
        return http

    def close(self) -> None:
        for http in self._open:
            http.close()


OPERATOR_SCOPES = (
    "subjects:write",
    "subjects:read",
    "evidence:write",
    "tokens:issue",
    "policies:read",
)

US_PASSPORT = {
    "type": "manual_review",
    "document_type": "us_passport",
    "attributes": {"citizenship": ["US"], "us_person_status": "us_citizen"},
    "assurance": "IAL2",
}
