"""``POST /v1/tokens`` under wrk, side by side with the same server's ``/healthz``.

Run: python bench/bench_tokens_wrk.py [--connections 32,128] [--duration 10] [--subjects 200]
                                      [--uvicorn-workers 2]

Starts attest on a fresh database (see bench/_server.py), onboards SUBJECTS people with
approved IAL2 evidence and SUBJECTS without, then runs wrk (Debian ``wrk``) for each
connection count against: ``/healthz`` (the HTTP stack alone), issued tokens (201) and
denials (403), each request naming a random subject of its kind. Prints req/s, p50, p99,
errors and the ratio to ``/healthz`` of the same run. Every answer's status is counted by
the Lua script, so a fast wrong answer (a 429, a 500) shows as an error, not as speed.

``--uvicorn-workers N`` serves with ``uvicorn --loop uvloop --http httptools --workers N``
(the app built by ``bench/_factory.py``) instead of ``attest serve``.
The per-client request rate limit is raised for the run (one client issues every token).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path

import httpx
from _server import attest_server

AUDIENCE = "model:fable-5"
EVIDENCE = {
    "type": "manual_review",
    "document_type": "us_passport",
    "attributes": {"citizenship": ["US"], "us_person_status": "us_citizen"},
    "assurance": "IAL2",
}

LUA = """
local subjects = {%(subjects)s}
local expect = %(expect)d
local body_of = {}
for i, s in ipairs(subjects) do
  body_of[i] = '{"audience":"%(audience)s","subject_id":"' .. s .. '"}'
end
local counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; good = 0 end
wrk.method = "%(method)s"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  if wrk.method == "GET" then return wrk.format(nil, "%(path)s") end
  return wrk.format(nil, "%(path)s", nil, body_of[math.random(#subjects)])
end
response = function(status, headers, body)
  if status == expect then good = good + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do g = g + t:get("good"); b = b + t:get("bad") end
  io.write(string.format("RESULT good=%%d bad=%%d p50=%%d p99=%%d\\n", g, b,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _client(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _api_key(admin: httpx.Client, name: str, scopes: list[str]) -> str:
    reply = admin.post("/v1/clients", json={"name": name, "tenant": "bench", "scopes": scopes})
    reply.raise_for_status()
    key: str = reply.json()["api_key"]
    return key


def _wrk(
    base: str, script: Path, connections: int, duration: int, threads: int
) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    result = re.search(r"RESULT good=(\d+) bad=(\d+) p50=(\d+) p99=(\d+)", out)
    assert result is not None, out
    socket_errors = re.search(r"Socket errors: (.*)", out)
    good, bad, p50, p99 = (int(g) for g in result.groups())
    return {
        "rate": rate * good / max(1, good + bad),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "errors": bad,
        "socket_errors": socket_errors[1] if socket_errors else "",  # type: ignore[dict-item]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="32,128")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--uvicorn-workers", type=int, default=0)
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--profile", help="py-spy raw profile of the issued case to here")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    args = parser.parse_args()
    extra = {"client_rate_limit": "100000000"}
    with attest_server(uvicorn_workers=args.uvicorn_workers, **extra) as server:
        admin = _client(server.base, server.admin_key)
        operator_key = _api_key(
            admin, "operator", ["subjects:write", "subjects:read", "evidence:write", "tokens:issue"]
        )
        reviewer = _client(server.base, _api_key(admin, "reviewer", ["evidence:review"]))
        operator = _client(server.base, operator_key)
        eligible, ineligible = [], []
        for n in range(args.subjects):
            subject = operator.post("/v1/subjects", json={"external_ref": f"bench-{n}"}).json()
            evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=EVIDENCE)
            reviewer.post(
                f"/v1/evidence/{evidence.json()['id']}/approvals", json={}
            ).raise_for_status()
            eligible.append(subject["id"])
            subject = operator.post("/v1/subjects", json={"external_ref": f"none-{n}"}).json()
            ineligible.append(subject["id"])
        first = operator.post("/v1/tokens", json={"subject_id": eligible[0], "audience": AUDIENCE})
        assert first.status_code == 201, first.text
        work = Path(tempfile.mkdtemp(prefix="attest-wrk-"))
        cases = {
            "GET /healthz": ("GET", "/healthz", 200, eligible),
            "POST /v1/tokens issued": ("POST", "/v1/tokens", 201, eligible),
            "POST /v1/tokens denied": ("POST", "/v1/tokens", 403, ineligible),
        }
        scripts = {}
        for name, (method, path, expect, subjects) in cases.items():
            script = work / (re.sub(r"\W+", "_", name) + ".lua")
            script.write_text(
                LUA
                % {
                    "subjects": ",".join(f'"{s}"' for s in subjects),
                    "expect": expect,
                    "audience": AUDIENCE,
                    "method": method,
                    "key": operator_key,
                    "path": path,
                }
            )
            scripts[name] = script
        results: dict[str, dict[str, dict[str, float]]] = {}
        for connections in (int(c) for c in args.connections.split(",")):
            _wrk(server.base, scripts["POST /v1/tokens issued"], connections, 2, args.threads)
            row = results.setdefault(str(connections), {})
            for name, script in scripts.items():
                if args.only and args.only not in name and "healthz" not in name:
                    continue
                spy = None
                if args.profile and "issued" in name:
                    spy = subprocess.Popen(
                        [
                            *("py-spy", "record", "-p", str(server.pid)),
                            *("-d", str(args.duration), "-s", "-f", "raw", "-o", args.profile),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                row[name] = _wrk(server.base, script, connections, args.duration, args.threads)
                if spy is not None:
                    spy.wait(timeout=60)
            health = row["GET /healthz"]["rate"]
            print(f"\n{connections} connections, {args.duration} s each")
            print(f"{'case':<26} {'ok req/s':>9} {'x healthz':>9} {'p50 ms':>7} {'p99 ms':>7} err")
            for name, r in row.items():
                print(
                    f"{name:<26} {r['rate']:>9,.0f} {r['rate'] / health:>9.2f} "
                    f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['errors']} {r['socket_errors']}"
                )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
