"""Public reads served from ready bytes: JWKS and a status list beside ``/healthz``, with wrk.

Run: python bench/bench_reads.py [--connections 32] [--seconds 3] [--rounds 3] [--threads 2]

Starts ``attest serve`` on a fresh database (see bench/_server.py), issues one token so a
status list exists, then runs wrk (Debian ``wrk``) against, in turn and ROUNDS times over:

  healthz   GET /healthz: the HTTP stack alone (the baseline)
  jwks      GET /.well-known/jwks.json: the published key set
  status    GET /v1/status-lists/{id}: the Status List Token

Each case runs SECONDS seconds per round at CONNECTIONS connections; the ratio of a round is
its req/s over the healthz run right before it (the machine may be shared and noisy), and
the median ratio over the rounds is printed with the median req/s and p50/p99 latency.
The answers are checked first (status 200, the media type, a JWKS that holds the key the
token names, a Status List Token whose list covers the token's index), so a fast wrong
answer cannot pass, and wrk's non-2xx count must be zero.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import statistics
import subprocess
import sys
import zlib

import httpx
from _server import attest_server

from attest.verify import StaticJWKS, Verifier

AUDIENCE = "model:fable-5"
EVIDENCE = {
    "type": "manual_review",
    "document_type": "us_passport",
    "attributes": {"citizenship": ["US"], "us_person_status": "us_citizen"},
    "assurance": "IAL2",
}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, connections: int, seconds: int, threads: int) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) of one wrk run; refuses a run with errors or non-2xx answers."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors against {url}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return rate, p50, p99


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    with attest_server() as server:
        admin = httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {server.admin_key}"}
        )

        def client(name: str, scopes: list[str]) -> httpx.Client:
            made = admin.post(
                "/v1/clients", json={"name": name, "tenant": "bench", "scopes": scopes}
            )
            made.raise_for_status()
            key = made.json()["api_key"]
            return httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"})

        operator = client("operator", ["subjects:write", "evidence:write", "tokens:issue"])
        reviewer = client("reviewer", ["evidence:review"])
        subject = operator.post("/v1/subjects", json={"external_ref": "reads-1"}).json()
        evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=EVIDENCE).json()
        reviewer.post(f"/v1/evidence/{evidence['id']}/approvals", json={}).raise_for_status()
        issued = operator.post(
            "/v1/tokens", json={"subject_id": subject["id"], "audience": AUDIENCE}
        )
        issued.raise_for_status()
        token = issued.json()["token"]

        # The answers are right before they are fast.
        jwks = httpx.get(server.base + "/.well-known/jwks.json")
        assert jwks.status_code == 200
        assert jwks.headers["content-type"].startswith("application/jwk-set+json")
        verifier = Verifier(issuer=server.base, audience=AUDIENCE, keys=StaticJWKS(jwks.json()))
        ref = verifier.verify(token)["status"]["status_list"]
        listed = httpx.get(ref["uri"])
        assert listed.status_code == 200
        assert listed.headers["content-type"].startswith("application/statuslist+jwt")
        assert "etag" in listed.headers
        assert "max-age" in listed.headers["cache-control"]
        claims = json.loads(_b64(listed.text.split(".")[1]))
        assert claims["sub"] == ref["uri"]
        assert len(zlib.decompress(_b64(claims["status_list"]["lst"]))) * 4 > ref["idx"]

        urls = {
            "GET /healthz (baseline)": server.base + "/healthz",
            "GET /.well-known/jwks.json": server.base + "/.well-known/jwks.json",
            "GET /v1/status-lists/{id}": ref["uri"],
        }
        for url in urls.values():  # warm-up
            wrk(url, args.connections, 1, args.threads)
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in urls}
        ratios: dict[str, list[float]] = {name: [] for name in urls}
        for _ in range(args.rounds):
            base = 0.0
            for name, url in urls.items():
                run = wrk(url, args.connections, args.seconds, args.threads)
                runs[name].append(run)
                base = base or run[0]
                ratios[name].append(run[0] / base)
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {args.rounds} rounds, "
        f"{sys.platform}"
    )
    print(f"{'case':<30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'x /healthz':>11}")
    for name, rs in runs.items():
        print(
            f"{name:<30} {statistics.median(r[0] for r in rs):>9,.0f} "
            f"{statistics.median(r[1] for r in rs):>8.2f} "
            f"{statistics.median(r[2] for r in rs):>8.2f} {statistics.median(ratios[name]):>11.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
