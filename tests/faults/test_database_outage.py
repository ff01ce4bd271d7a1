"""PostgreSQL stopped hard for 10 s under 32 concurrent token requests, then restarted.

Against a real ``attest serve`` process and a cluster of the test's own: every answer in the
outage is a 503 problem with Retry-After, each within a bounded time (no 500, no hang: the
clients' timeouts would record one), ``/readyz`` says 503 and names the database, issuance
resumes within 5 s of the database's return without restarting attest, and afterwards every
token answered 201 has its attestation, its one ``token.issued`` audit event and its leaf in
the transparency log (the sequencer, a background task, survived and caught up).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from attest_testing.faultpg import FaultCluster
from attest_testing.faults import Answer, Load, Serve, eligible_subjects, wait_until

PROBLEM = "application/problem+json"
OUTAGE = 10.0  # seconds the database is down
RESUME_WITHIN = 5.0  # seconds after its return by which issuance must have resumed
POOL_TIMEOUT_MS = 2000
# Longest any answer may take: the pool wait plus a margin for a loaded 2-core machine.
ANSWER_BOUND = POOL_TIMEOUT_MS / 1000 + 3.0


UNAVAILABLE = "urn:attest:problem:unavailable"
#: The COMMIT was sent and its answer lost: the problem names the jti to look up.
OUTCOME_UNKNOWN = "urn:attest:problem:outcome-unknown"


def _is_retryable_problem(answer: Answer) -> bool:
    body = answer.body
    return (
        answer.status == 503
        and answer.headers.get("content-type", "").startswith(PROBLEM)
        and answer.headers.get("retry-after", "").isdigit()
        and isinstance(body, dict)
        and body.get("status") == 503
        and (
            body.get("type") == UNAVAILABLE
            or (body.get("type") == OUTCOME_UNKNOWN and isinstance(body.get("jti"), str))
        )
        and "incident" not in body
    )


class ReadinessProbe:
    """Polls /readyz (as a load balancer does) and keeps every answer."""

    def __init__(self, server: Serve) -> None:
        self.server = server
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.server.client(timeout=10) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    reply = http.get("/readyz")
                    answer = Answer(
                        started,
                        time.monotonic(),
                        reply.status_code,
                        dict(reply.headers),
                        reply.json(),
                    )
                except (httpx.HTTPError, ValueError) as exc:
                    answer = Answer(started, time.monotonic(), 0, {}, None, repr(exc))
                self.answers.append(answer)
                time.sleep(0.25)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


async def _records(url: str, jtis: list[str]) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        attested = await conn.fetch(
            "SELECT jti FROM attestations WHERE jti = ANY($1::text[])", jtis
        )
        issued = await conn.fetch(
            "SELECT data->>'jti' AS jti, log_index FROM audit_events"
            " WHERE type = 'token.issued' AND data->>'jti' = ANY($1::text[])",
            jtis,
        )
        # Over the whole trail: every attestation has exactly one token.issued event.
        unmatched = await conn.fetchval(
            "SELECT count(*) FROM attestations a WHERE (SELECT count(*) FROM audit_events e"
            " WHERE e.type = 'token.issued' AND e.data->>'jti' = a.jti) <> 1"
        )
        log = await conn.fetchrow(
            "SELECT count(log_index) AS n, count(DISTINCT log_index) AS distinct_n,"
            " max(log_index) AS top, (SELECT size FROM log_state) AS size,"
            " count(*) FILTER (WHERE log_index IS NULL) AS pending FROM audit_events"
        )
    finally:
        await conn.close()
    return {
        "attested": [r["jti"] for r in attested],
        "issued": [(r["jti"], r["log_index"]) for r in issued],
        "unmatched": unmatched,
        "log": dict(log),
    }


def test_a_hard_database_outage_is_503s_then_recovers_with_every_token_recorded(
    cluster: FaultCluster, short_tmp: Path
) -> None:
    server = Serve(
        cluster.url,
        short_tmp,
        db_pool_timeout_ms=str(POOL_TIMEOUT_MS),
        key_check_interval_ms="500",
        log_checkpoint_interval="0.5",
    )
    try:
        server.wait_ready()
        operator_key, subjects = eligible_subjects(server, 8)
        load = Load(server, operator_key, subjects, threads=32, timeout=ANSWER_BOUND + 5)
        probe = ReadinessProbe(server)
        load.start()
        probe.start()
        wait_until(lambda: len(load.issued_after(0)) >= 100, timeout=30, what="warm-up tokens")

        crash_begin = time.monotonic()
        cluster.crash()
        down = time.monotonic()
        time.sleep(OUTAGE)
        restart_begin = time.monotonic()
        cluster.start()
        up = time.monotonic()
        resumed = wait_until(
            lambda: load.issued_after(up), timeout=30, what="issuance after the restart"
        )
        time.sleep(2)  # some steady issuance after recovery
        load.stop()
        probe.stop()

        answers = load.snapshot()
        statuses = sorted({a.status for a in answers})
        odd = [a for a in answers if a.status not in (201, 503)]
        assert not odd, f"answers other than 201/503 (0: no answer): {odd[:5]} of {statuses}"
        bad_503 = [a for a in answers if a.status == 503 and not _is_retryable_problem(a)]
        assert not bad_503, bad_503[:3]
        slow = [a for a in answers if a.took > ANSWER_BOUND]
        assert not slow, f"{len(slow)} answers took over {ANSWER_BOUND} s: {slow[:3]}"

        # Wholly inside the outage: nothing can be issued, everything is a 503 problem.
        inside = [a for a in answers if a.started >= down + 0.5 and a.ended <= restart_begin]
        assert len(inside) >= 100, len(inside)
        assert all(a.status == 503 for a in inside)

        # Resumed within RESUME_WITHIN s of the database's return, attest not restarted.
        first = min(resumed, key=lambda a: a.ended)
        assert first.ended - up <= RESUME_WITHIN, first.ended - up
        assert server.proc.poll() is None

        # /readyz: 503 naming the database while it was down, bounded; ready again after.
        during = [p for p in probe.answers if p.started >= down + 0.5 and p.ended <= restart_begin]
        assert len(during) >= 5, probe.answers
        for answer in during:
            assert answer.status == 503, answer
            assert answer.body["checks"]["database"] is False, answer.body
            assert "database" in answer.body["failed"], answer.body
            assert answer.headers.get("retry-after", "").isdigit(), answer.headers
            assert answer.took <= 3.5, answer
        wait_until(
            lambda: httpx.get(server.url + "/readyz", timeout=5).status_code == 200,
            timeout=RESUME_WITHIN,
            what="/readyz 200 after the restart",
        )

        # Every 201 is durably recorded, once, and reached the log (the sequencer resumed).
        jtis = [a.body["jti"] for a in answers if a.status == 201]
        assert len(jtis) == len(set(jtis))
        before = [a for a in answers if a.status == 201 and a.ended <= crash_begin]
        after = [a for a in answers if a.status == 201 and a.started >= up]
        assert before
        assert after

        def recorded() -> dict[str, Any] | None:
            found = asyncio.run(_records(cluster.url, jtis))
            return found if all(index is not None for _, index in found["issued"]) else None

        found = wait_until(recorded, timeout=20, what="the log sequencer to catch up", every=0.5)
        assert sorted(found["attested"]) == sorted(jtis)
        issued = [jti for jti, _ in found["issued"]]
        assert sorted(issued) == sorted(jtis), "a 201 without its audit event, or one twice"
        assert found["unmatched"] == 0
        log = found["log"]
        # No gap and no position twice: positions 0..size-1, each once.
        assert log["n"] == log["distinct_n"] == log["top"] + 1 == log["size"], log

        # An outcome-unknown answer is honest: looking its jti up tells, and agrees with the
        # database (recorded once, with its event, or not at all).
        unknown = [
            a.body["jti"]
            for a in answers
            if isinstance(a.body, dict) and a.body.get("type") == OUTCOME_UNKNOWN
        ]
        landed = set(asyncio.run(_records(cluster.url, unknown))["attested"]) if unknown else set()
        with server.client(server.admin_key) as admin:
            for jti in unknown:
                looked_up = admin.get(f"/v1/audit/attestations/{jti}").status_code
                assert looked_up == (200 if jti in landed else 404), (jti, looked_up)

        # A receipt (attestation + inclusion proof) for tokens on either side of the outage.
        with server.client(server.admin_key) as admin:
            for answer in (before[-1], after[0]):
                receipt = admin.get(f"/v1/audit/attestations/{answer.body['jti']}/receipt")
                assert receipt.status_code == 200, receipt.text
        output = server.output()
        assert "Task exception was never retrieved" not in output
        assert "Traceback" not in output or "unhandled error" not in output, output[-3000:]
    except BaseException:
        print(server.output()[-6000:])
        print(cluster.log()[-3000:])
        raise
    finally:
        server.stop()
