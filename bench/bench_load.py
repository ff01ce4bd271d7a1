"""Load on one `attest serve` deployment with wrk: the table of issue 11 (run: make bench-load).

Run: python bench/bench_load.py [--duration 5] [--connections 8,32,128] [--threads 2]
                                [--workers N] [--subjects 50] [--profile] [--profile-only]

Starts ``attest serve`` as ``make run`` does (its ATTEST_WORKERS workers, default log level;
the per-client rate limit raised, as one client sends every request of the run) on a fresh
database: on the PostgreSQL named by ATTEST_TEST_DATABASE_URL, else on an
embedded one (bench/_server.py). Seeds an operator client, SUBJECTS subjects with approved
IAL2 evidence (eligible for model:fable-5) and SUBJECTS without evidence (denied), then runs
wrk (Debian ``wrk``; Lua scripts send POSTs with the Authorization header and JSON bodies,
rotating over the subjects) for DURATION seconds per cell, at each connection count:

  GET /healthz                      the HTTP stack alone: the baseline of each column
  POST /v1/tokens issued            201: token, status slot, log leaf, attestation, audit
  POST /v1/tokens denied            403 problem with reasons, and its audit event
  GET /.well-known/jwks.json        the published keys
  GET /v1/status-lists/{id}         the Status List Token of the issued tokens

and prints a markdown table: req/s, the ratio to /healthz at the same connection count (in
the same run, so machine noise mostly cancels), p50 and p99 latency, unexpected answers
(anything but the row's expected status: 200, 201 or 403) and socket errors (connect, read,
write, timeout). wrk and the server share the machine's cores, as they do in the issue.

``--profile``: afterwards, the same application runs in this process against the same
database and pyinstrument profiles PROFILE_N issuances one after another through the whole
ASGI stack; the summary shows where one issuance's wall-clock time goes (time waiting for
PostgreSQL included). ``--profile-only`` skips wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from _server import Server, attest_server

AUDIENCE = "model:fable-5"
EVIDENCE = {
    "type": "manual_review",
    "document_type": "us_passport",
    "attributes": {"citizenship": ["US"], "us_person_status": "us_citizen"},
    "assurance": "IAL2",
}

# Per-thread counters of expected and unexpected answers; done() prints one JSON line.
_LUA_COMMON = """
local counted = {}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  expected = 0
  unexpected = 0
end
function response(status, headers, body)
  if status == EXPECTED then expected = expected + 1 else unexpected = unexpected + 1 end
end
function done(summary, latency, requests)
  local exp, unexp = 0, 0
  for _, t in ipairs(threads) do
    exp = exp + t:get("expected")
    unexp = unexp + t:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "expected": %d, "unexpected": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, exp, unexp,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

_LUA_POST = """
local bodies = {BODIES}
local i = 0
function request()
  i = i + 1
  return wrk.format("POST", "/v1/tokens", {
    ["Authorization"] = "Bearer KEY",
    ["Content-Type"] = "application/json",
  }, bodies[(i % #bodies) + 1])
end
"""


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    expected: int
    bodies: list[str] | None = None  # POST bodies (rotated), else a GET


def _script(case: Case, key: str, work: Path) -> Path:
    lua = _LUA_COMMON.replace("EXPECTED", str(case.expected))
    if case.bodies is not None:
        quoted = ", ".join(json.dumps(b) for b in case.bodies)
        lua += _LUA_POST.replace("{BODIES}", "{" + quoted + "}").replace("KEY", key)
    path = work / (case.name.replace(" ", "_").replace("/", "_") + ".lua")
    path.write_text(lua, encoding="utf-8")
    return path


def _wrk(
    base: str, case: Case, script: Path, connections: int, threads: int, duration: float
) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base + case.path,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def _seed(server: Server, subjects: int) -> tuple[str, list[str], list[str]]:
    admin = httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=60
    )

    def key(name: str, scopes: list[str]) -> str:
        reply = admin.post("/v1/clients", json={"name": name, "tenant": "bench", "scopes": scopes})
        reply.raise_for_status()
        value: str = reply.json()["api_key"]
        return value

    operator_key = key(
        "operator", ["subjects:write", "subjects:read", "evidence:write", "tokens:issue"]
    )
    auth = {"Authorization": f"Bearer {key('reviewer', ['evidence:review'])}"}
    operator = httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {operator_key}"}, timeout=60
    )
    eligible, ineligible = [], []
    for n in range(subjects):
        subject = operator.post("/v1/subjects", json={"external_ref": f"load-{n}"}).json()
        evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=EVIDENCE).json()
        approved = httpx.post(
            f"{server.base}/v1/evidence/{evidence['id']}/approvals", json={}, headers=auth
        )
        approved.raise_for_status()
        eligible.append(subject["id"])
        other = operator.post("/v1/subjects", json={"external_ref": f"none-{n}"}).json()
        ineligible.append(other["id"])
    return operator_key, eligible, ineligible


def _cases(server: Server, key: str, eligible: list[str], ineligible: list[str]) -> list[Case]:
    first = httpx.post(
        server.base + "/v1/tokens",
        json={"subject_id": eligible[0], "audience": AUDIENCE},
        headers={"Authorization": f"Bearer {key}"},
    )
    first.raise_for_status()
    claims = jwt.decode(first.json()["token"], options={"verify_signature": False})
    status_path = claims["status"]["status_list"]["uri"].removeprefix(server.base)

    def bodies(ids: list[str]) -> list[str]:
        return [json.dumps({"subject_id": i, "audience": AUDIENCE}) for i in ids]

    return [
        Case("GET /healthz", "/healthz", 200),
        Case("POST /v1/tokens issued", "/v1/tokens", 201, bodies(eligible)),
        Case("POST /v1/tokens denied", "/v1/tokens", 403, bodies(ineligible)),
        Case("GET /.well-known/jwks.json", "/.well-known/jwks.json", 200),
        Case("GET /v1/status-lists/{id}", status_path, 200),
    ]


def _table(results: dict[tuple[str, int], dict[str, Any]], cases: list[Case], conns: list[int]):
    print(
        "\n| endpoint | conns | req/s | x /healthz | p50 ms | p99 ms | unexpected | errors |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for case in cases:
        for c in conns:
            r = results[(case.name, c)]
            base = results[("GET /healthz", c)]["rate"]
            errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
            print(
                f"| {case.name} | {c} | {r['rate']:,.0f} | {r['rate'] / base:.2f} | "
                f"{r['p50_us'] / 1000:.1f} | {r['p99_us'] / 1000:.1f} | {r['unexpected']} | "
                f"{errors} |"
            )


def _profile(server: Server, secrets_env: dict[str, str], eligible: list[str], key: str, n: int):
    """pyinstrument over N issuances through the in-process app on the same database."""
    from pyinstrument import Profiler  # noqa: PLC0415

    from attest.app import create_app  # noqa: PLC0415
    from attest.settings import load_settings  # noqa: PLC0415

    settings = load_settings(
        environ={
            "ATTEST_DATABASE_URL": server.database_url,
            "ATTEST_KEYSTORE": str(server.work / "keys"),
            "ATTEST_DATA_DIR": str(server.work / "data-profile"),
            "ATTEST_LOG_LEVEL": "WARNING",
            "ATTEST_ISSUER": server.base,
            **secrets_env,
        }
    )

    async def run() -> Profiler:
        app = create_app(settings, announce=lambda _: None)
        logging.getLogger().setLevel(logging.WARNING)  # Litestar's config logs at INFO
        logging.getLogger("attest.access").setLevel(logging.WARNING)
        headers = {"Authorization": f"Bearer {key}"}
        # The app's lifespan, driven by hand in this event loop (no test-client thread), so
        # the profiler sees the request's own frames.
        inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        lifespan = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
        )
        await inbox.put({"type": "lifespan.startup"})
        started = await outbox.get()
        assert started["type"] == "lifespan.startup.complete", started
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url=server.base) as client:
                for i in range(20):  # warm-up: caches, prepared statements
                    body = {"subject_id": eligible[i % len(eligible)], "audience": AUDIENCE}
                    reply = await client.post("/v1/tokens", json=body, headers=headers)
                    assert reply.status_code == 201, reply.text
                profiler = Profiler(interval=0.0005, async_mode="enabled")
                profiler.start()
                for i in range(n):
                    body = {"subject_id": eligible[i % len(eligible)], "audience": AUDIENCE}
                    reply = await client.post("/v1/tokens", json=body, headers=headers)
                    assert reply.status_code == 201, reply.text
                profiler.stop()
        finally:
            await inbox.put({"type": "lifespan.shutdown"})
            await outbox.get()
            await lifespan
        return profiler

    profiler = asyncio.run(run())
    session = profiler.last_session
    assert session is not None
    per_call = session.duration / n * 1000
    print(f"\n## Profile: {n} issuances one after another, {per_call:.2f} ms wall-clock each\n")
    text = profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False)
    print(textwrap.indent(text, "    "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    parser.add_argument("--connections", default="8,32,128")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=0, help="ATTEST_WORKERS (0: default)")
    parser.add_argument("--subjects", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per endpoint")
    parser.add_argument("--profile", action="store_true", help="also profile issuance")
    parser.add_argument("--profile-only", action="store_true")
    parser.add_argument("--profile-n", type=int, default=300)
    parser.add_argument(
        "--only", default="", help="comma-separated words; run the rows whose name has one"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.profile_only:
        print("bench_load: wrk is missing (apt-get install -y wrk)", file=sys.stderr)
        return 2
    conns = [int(c) for c in args.connections.split(",") if c.strip()]
    secrets_env = {
        "ATTEST_KEYSTORE_PASSPHRASE": secrets.token_hex(16),
        "ATTEST_PAIRWISE_SECRET": secrets.token_hex(32),
    }
    settings = {k.removeprefix("ATTEST_").lower(): v for k, v in secrets_env.items()}
    settings["log_level"] = os.environ.get("ATTEST_LOG_LEVEL", "INFO")  # as `make run`
    # One client sends every request of the run: at the default limit (20,000 a minute) the
    # later cells would measure 429 answers. The limit is still counted on every request.
    settings["client_rate_limit"] = "100000000"
    if args.workers:
        settings["workers"] = str(args.workers)
    with attest_server(**settings) as server:
        key, eligible, ineligible = _seed(server, args.subjects)
        cases = _cases(server, key, eligible, ineligible)
        if args.only:
            words = [w.strip() for w in args.only.split(",") if w.strip()]
            cases = [c for c in cases if c.path == "/healthz" or any(w in c.name for w in words)]
        work = Path(tempfile.mkdtemp(prefix="attest-wrk-"))
        try:
            scripts = {case.name: _script(case, key, work) for case in cases}
            if not args.profile_only:
                workers = args.workers or os.cpu_count()
                print(
                    f"attest serve, {workers} workers; wrk {args.threads} threads, "
                    f"{args.duration:g} s per cell; {os.cpu_count()} cores shared by both"
                )
                for case in cases:
                    _wrk(server.base, case, scripts[case.name], 32, args.threads, args.warmup)
                results = {}
                for c in conns:
                    for case in cases:
                        script = scripts[case.name]
                        got = _wrk(server.base, case, script, c, args.threads, args.duration)
                        results[(case.name, c)] = got
                _table(results, cases, conns)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if args.profile or args.profile_only:
            _profile(server, secrets_env, eligible, key, args.profile_n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
