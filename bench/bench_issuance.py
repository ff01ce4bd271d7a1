"""Token issuance over HTTP: ``POST /v1/tokens`` against a real ``attest serve``.

Run: python bench/bench_issuance.py [--subjects 200] [--rounds 30] [--block 50] [--threads 4]

Starts ``attest serve`` as a separate process on a fresh database (see bench/_server.py),
onboards SUBJECTS people with approved IAL2 evidence, then measures, interleaved in blocks
of BLOCK requests for ROUNDS rounds (the machine may be noisy, so each case runs right
beside its baseline):

  baseline   GET /v1/subjects/{id}: authentication plus one read, the floor of any call
  issue      POST /v1/tokens for model:fable-5: authentication, evidence and policy
             evaluation, signing, and the attestation and audit event committed together
  denied     POST /v1/tokens for a subject without evidence: the 403 and its audit event
  healthz    GET /healthz: the HTTP stack alone
  status     GET /v1/status-lists/{id} (public): the Status List Token, from ready bytes

first from one client (latency), then from THREADS clients at once (throughput). Every
issued token is checked with attest.verify, so a fast wrong answer cannot pass.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from _server import attest_server

from attest.verify import Verifier

AUDIENCE = "model:fable-5"
EVIDENCE = {
    "type": "manual_review",
    "document_type": "us_passport",
    "attributes": {"citizenship": ["US"], "us_person_status": "us_citizen"},
    "assurance": "IAL2",
}


def _client(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _api_key(admin: httpx.Client, name: str, scopes: list[str]) -> str:
    reply = admin.post("/v1/clients", json={"name": name, "tenant": "bench", "scopes": scopes})
    reply.raise_for_status()
    key: str = reply.json()["api_key"]
    return key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    with attest_server() as server:
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
            approval = reviewer.post(f"/v1/evidence/{evidence.json()['id']}/approvals", json={})
            approval.raise_for_status()
            eligible.append(subject["id"])
        for n in range(args.subjects):
            subject = operator.post("/v1/subjects", json={"external_ref": f"none-{n}"}).json()
            ineligible.append(subject["id"])
        verifier = Verifier(
            issuer=server.base,
            audience=AUDIENCE,
            keys=httpx.get(server.base + "/.well-known/jwks.json").json(),
            cache_size=0,
        )

        first = operator.post("/v1/tokens", json={"subject_id": eligible[0], "audience": AUDIENCE})
        status_uri = verifier.verify(first.json()["token"])["status"]["status_list"]["uri"]
        status_path = status_uri.removeprefix(server.base)

        def health(client: httpx.Client, _: int) -> None:
            assert client.get("/healthz").status_code == 200

        def status_list(client: httpx.Client, _: int) -> None:
            reply = client.get(status_path)
            assert reply.status_code == 200, reply.text

        def read(client: httpx.Client, i: int) -> None:
            reply = client.get(f"/v1/subjects/{eligible[i % len(eligible)]}")
            assert reply.status_code == 200, reply.text

        def issue(client: httpx.Client, i: int) -> None:
            body = {"subject_id": eligible[i % len(eligible)], "audience": AUDIENCE}
            reply = client.post("/v1/tokens", json=body)
            assert reply.status_code == 201, reply.text
            verifier.verify(reply.json()["token"])

        def deny(client: httpx.Client, i: int) -> None:
            body = {"subject_id": ineligible[i % len(ineligible)], "audience": AUDIENCE}
            reply = client.post("/v1/tokens", json=body)
            assert reply.status_code == 403, reply.text

        cases: dict[str, Callable[[httpx.Client, int], None]] = {
            "GET /v1/subjects/{id} (baseline)": read,
            "POST /v1/tokens, issued": issue,
            "POST /v1/tokens, denied (403)": deny,
            "GET /healthz": health,
            "GET /v1/status-lists/{id}": status_list,
        }
        for threads in (1, args.threads):
            _measure(server.base, operator_key, cases, threads, args.rounds, args.block)
    return 0


def _measure(
    base_url: str,
    key: str,
    cases: dict[str, Callable[[httpx.Client, int], None]],
    threads: int,
    rounds: int,
    block: int,
) -> None:
    """Run every case in interleaved blocks and print rates and paired ratios."""
    clients = [_client(base_url, key) for _ in range(threads)]
    times: dict[str, list[float]] = {name: [] for name in cases}
    with ThreadPoolExecutor(threads) as pool:
        for r in range(rounds + 1):  # round 0 warms up and is not counted
            for name, call in cases.items():
                start = r * block
                t0 = time.perf_counter()
                indexes = range(start, start + block)
                list(pool.map(call, [clients[i % threads] for i in indexes], indexes))
                if r:
                    times[name].append(time.perf_counter() - t0)
    base = times["GET /v1/subjects/{id} (baseline)"]
    health_times = times["GET /healthz"]
    print(f"\n{threads} client(s) at once, {rounds} rounds of {block} requests")
    print(
        f"{'case':<34} {'req/s (median)':>15} {'ms/req':>8} "
        f"{'x baseline (paired)':>20} {'x /healthz (paired)':>20}"
    )
    for name, ts in times.items():
        rate = block / statistics.median(ts)
        paired = statistics.median(b / t for b, t in zip(base, ts, strict=True))
        vs_health = statistics.median(h / t for h, t in zip(health_times, ts, strict=True))
        print(
            f"{name:<34} {rate:>15,.0f} {1000 / rate * threads:>8.2f} "
            f"{paired:>20.2f} {vs_health:>20.2f}"
        )
    for client in clients:
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
