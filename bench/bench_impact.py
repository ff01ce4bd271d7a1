"""Policy impact preview at population scale: ``POST /v1/policies/{name}/impact``.

Run: python bench/bench_impact.py [--subjects 100000] [--runs 5]

Starts ``attest serve`` on a fresh database (see bench/_server.py), writes SUBJECTS people
straight into it (a mix: US citizens, US nationals, lawful permanent residents, people with
no evidence, some revoked, some with old or expired evidence), then times the preview of a
draft (us-nationals-only -> the us-persons rule with a 2-year evidence age limit) by the
admin client, over every subject. The answer is checked against counts known from how the
population was made, so a fast wrong answer cannot pass. Baseline in the same run: a
``SELECT count(*)`` over the same subjects joined with their evidence, the floor of any
preview that reads every subject.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import asyncpg
import httpx
from _server import attest_server

# (share, us_person_status, citizenship, days since verification, re-verification ahead)
MIX = [
    (50, "us_citizen", "US", 30, 300),
    (10, "us_national", "AS", 30, 300),
    (20, "lawful_permanent_resident", "MX", 30, 300),
    (5, "lawful_permanent_resident", "IN", 900, 300),  # older than the draft's 2 years
    (5, "us_citizen", "US", 400, -1),  # expired: counts for nobody
    (10, None, None, 0, 0),  # no evidence
]
POPULATE = """
INSERT INTO subjects (id, tenant, external_ref, created_at, revoked_at)
SELECT gen_random_uuid(), 'bench', 'p-' || $1::int || '-' || n, now(),
       CASE WHEN n % 50 = 0 THEN now() END
FROM generate_series(1, $2::int) AS n
"""
EVIDENCE = """
INSERT INTO evidence (id, subject_id, tenant, type, document_type, attributes, assurance,
                      status, reasons, submitted_by, created_at, verified_at, reverify_at)
SELECT gen_random_uuid(), s.id, 'bench', 'manual_review', 'us_passport',
       jsonb_build_object('us_person_status', $2::text, 'citizenship', jsonb_build_array($3::text)),
       'IAL2', 'verified', '[]'::jsonb, $4::uuid, now(),
       now() - make_interval(days => $5::int), now() + make_interval(days => $6::int)
FROM subjects s WHERE s.external_ref LIKE 'p-' || $1::int || '-%'
"""
COUNT = """
SELECT count(*) FROM subjects s LEFT JOIN evidence e ON e.subject_id = s.id
    AND e.status = 'verified'
"""


async def populate(url: str, total: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        actor = await conn.fetchval("SELECT id FROM api_clients WHERE is_admin LIMIT 1")
        for group, (share, status, country, age, ahead) in enumerate(MIX):
            count = total * share // 100
            await conn.execute(POPULATE, group, count)
            if status is not None:
                await conn.execute(EVIDENCE, group, status, country, actor, age, ahead)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def baseline(url: str) -> float:
    conn = await asyncpg.connect(url)
    try:
        t0 = time.perf_counter()
        await conn.fetchval(COUNT)
        return time.perf_counter() - t0
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with attest_server() as server:
        asyncio.run(populate(server.database_url, args.subjects))
        admin = httpx.Client(
            base_url=server.base,
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=300,
        )
        current = admin.get("/v1/policies/us-nationals-only").json()["document"]
        persons = admin.get("/v1/policies/us-persons").json()["document"]
        draft = {
            **{k: v for k, v in current.items() if k not in ("name", "version")},
            "rule": persons["rule"],
            "max_evidence_age_days": 730,
        }
        times, floors = [], []
        for _ in range(args.runs):
            floors.append(asyncio.run(baseline(server.database_url)))
            t0 = time.perf_counter()
            reply = admin.post("/v1/policies/us-nationals-only/impact", json=draft)
            times.append(time.perf_counter() - t0)
            assert reply.status_code == 200, reply.text
        row = reply.json()["audiences"][0]
        total = sum(args.subjects * share // 100 for share, *_ in MIX)
        assert row["subjects"] == total, row
        # Known from the mix: every 50th subject of each group is revoked.
        kept = 0.98
        assert row["eligible_now"] == round(total * 0.60 * kept), row
        assert row["gain"] == round(total * 0.20 * kept), row
        assert row["lose"] == 0, row
        print(f"{total:,} subjects, {args.runs} runs, admin view")
        print(f"  answer: {row}")
        print(f"  impact preview    median {statistics.median(times):.2f} s, "
              f"best {min(times):.2f} s")  # fmt: skip
        ratio = statistics.median(times) / statistics.median(floors)
        print(f"  count(*) baseline median {statistics.median(floors):.2f} s "
              f"(preview = {ratio:.1f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
