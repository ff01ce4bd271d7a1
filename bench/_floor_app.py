"""The floor of a recorded issuance: the least work any `POST /v1/tokens` must do.

See bench/bench_floor.py, which serves and measures it.

A Litestar application served by granian exactly as `attest serve` serves attest (ASGI,
uvloop, HTTP/1.1, the same number of workers), with two routes:

- ``GET /healthz``: ``{"status": "ok"}``, as attest's;
- ``POST /v1/tokens``: the body decoded (msgspec), the bearer key checked against one
  key hash held in memory (constant time), a token and its attestation signed with ES256
  (the two signatures of every attest token, through attest's own compact JWS code), and
  the token recorded durably before it is answered: its attestation, its status entry and
  an audit event, three rows, group-committed (the requests waiting when a batch starts are
  inserted by one statement, in its own implicit transaction: one round trip and one WAL
  flush per batch), then 201 ``{"token", "expires_at", "jti"}``.

Everything else attest does for a token is left out: no decision (no subject, evidence,
policy or audience read), no rate limit or failed-authentication counter, no API-key
lookup in the database, no status-slot permutation, no transparency-log sequencing, no
access log, no metrics, no tables' secondary indexes, foreign keys or triggers. So this is
a lower bound of the cost of a token on this stack; not an implementation of one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import time
import uuid
from typing import Any

import asyncpg
import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Litestar, Request, Response, get, post

from attest.keys.keystore import compact_jws

TABLES = """
CREATE TABLE IF NOT EXISTS floor_attestations (jti text PRIMARY KEY, claims text NOT NULL,
    signature text NOT NULL);
CREATE TABLE IF NOT EXISTS floor_statuses (jti text PRIMARY KEY, idx integer NOT NULL);
CREATE TABLE IF NOT EXISTS floor_events (id bigserial PRIMARY KEY, data jsonb NOT NULL);
"""
RECORD = """
WITH a AS (
    INSERT INTO floor_attestations (jti, claims, signature)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
), s AS (
    INSERT INTO floor_statuses (jti, idx) SELECT * FROM unnest($1::text[], $4::integer[])
)
INSERT INTO floor_events (data) SELECT d::jsonb FROM unnest($5::text[]) AS d
"""
BATCH_WORKERS = int(os.environ.get("FLOOR_BATCH_WORKERS", "2"))  # as attest's default
MAX_BATCH = 64
_HEADER = "Bearer "


class Ask(msgspec.Struct, forbid_unknown_fields=True):
    subject_id: str
    audience: str


class _Floor:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = secrets.token_urlsafe(32)
        self.key_hash = hashlib.sha256(os.environ["FLOOR_API_KEY"].encode()).digest()
        self.pool: asyncpg.Pool | None = None
        self.queue: asyncio.Queue[tuple[tuple[str, str, str, int, str], asyncio.Future[None]]]
        self.queue = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []

    def sign(self, data: bytes) -> bytes:
        from attest.keys.keystore import _der_to_jose  # noqa: PLC0415 - attest's own

        return _der_to_jose(self.key.sign(data, ec.ECDSA(hashes.SHA256())))

    async def start(self) -> None:
        self.pool = await asyncpg.create_pool(
            os.environ["FLOOR_DATABASE_URL"], min_size=2, max_size=4
        )
        self.tasks = [asyncio.create_task(self.work()) for _ in range(BATCH_WORKERS)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.pool is not None:
            await self.pool.close()

    async def work(self) -> None:
        assert self.pool is not None
        while True:
            jobs = [await self.queue.get()]
            while len(jobs) < MAX_BATCH and not self.queue.empty():
                jobs.append(self.queue.get_nowait())
            try:
                columns = list(zip(*(row for row, _ in jobs), strict=True))
                async with self.pool.acquire() as conn:
                    await conn.execute(RECORD, *(list(c) for c in columns))
            except Exception as exc:
                for _, future in jobs:
                    future.set_exception(exc)
                continue
            for _, future in jobs:
                future.set_result(None)


floor: _Floor


async def _startup() -> None:
    global floor  # noqa: PLW0603 - one per worker process
    floor = _Floor()
    await floor.start()


async def _shutdown() -> None:
    await floor.stop()


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@post("/v1/tokens", status_code=201)
async def issue(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await _issue(request, sign=True, record=True)


@post("/floor/sign-only", status_code=201)
async def sign_only(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The same without recording: the HTTP stack and the two signatures."""
    return await _issue(request, sign=True, record=False)


@post("/floor/record-only", status_code=201)
async def record_only(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The same without signing (random bytes stand in for the signatures)."""
    return await _issue(request, sign=False, record=True)


def _unsigned(claims: dict[str, object], **_: object) -> str:
    return f"{msgspec.json.encode(claims).hex()}.{secrets.token_urlsafe(64)}"


async def _issue(request: Request[Any, Any, Any], *, sign: bool, record: bool) -> Response[bytes]:
    header = request.headers.get("authorization", "")
    presented = hashlib.sha256(header.removeprefix(_HEADER).encode()).digest()
    if not header.startswith(_HEADER) or not hmac.compare_digest(presented, floor.key_hash):
        return Response(b'{"status":401}', status_code=401, media_type="application/problem+json")
    ask = msgspec.json.decode(await request.body(), type=Ask)
    now = int(time.time())
    jti = secrets.token_urlsafe(16)
    idx = secrets.randbelow(131072)
    claims: dict[str, object] = {
        "iss": "http://127.0.0.1",
        "sub": hashlib.sha256(ask.subject_id.encode()).hexdigest(),
        "aud": ask.audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": jti,
        "eligibility": {
            "policy": "us-nationals-only",
            "policy_version": 1,
            "policy_digest": "0" * 64,
            "assurance": "IAL2",
        },
        "status": {"status_list": {"idx": idx, "uri": "http://127.0.0.1/v1/status-lists/1"}},
    }
    jws = compact_jws if sign else _unsigned
    token = jws(claims, alg="ES256", kid=floor.kid, typ="elig+jwt", sign=floor.sign)
    row = {
        **claims,
        "subject_id": ask.subject_id,
        "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
    }
    signature = jws(row, alg="ES256", kid=floor.kid, typ="attestation+jwt", sign=floor.sign)
    event = msgspec.json.encode(
        {
            "event_id": str(uuid.uuid4()),
            "type": "token.issued",
            "data": {"jti": jti, "audience": ask.audience},
        }
    ).decode()
    if record:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        job = (jti, msgspec.json.encode(row).decode(), signature, idx, event)
        floor.queue.put_nowait((job, future))
        await future
    body = msgspec.json.encode({"token": token, "expires_at": now + 600, "jti": jti})
    return Response(body, status_code=201, media_type="application/json")


def app() -> Litestar:
    return Litestar(
        [healthz, issue, sign_only, record_only],
        on_startup=[_startup],
        on_shutdown=[_shutdown],
        openapi_config=None,
    )
