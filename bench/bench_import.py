"""Bulk onboarding throughput: subjects per second through ``attest subjects import``.

Run: python bench/bench_import.py [--rows 100000] [--evidence-every 0]

Starts ``attest serve`` as a separate process on a fresh database (on the server named by
ATTEST_TEST_DATABASE_URL, else an embedded PostgreSQL in a temporary directory), writes a
JSON Lines file of ROWS subjects (every Nth row with an IAL1 manual review when
--evidence-every N is given), imports it over HTTP with the batch endpoint and prints
subjects per second. Then it imports the same file again to time an idempotent re-run.
"""

from __future__ import annotations

import argparse
import json

import httpx
from _server import attest_server

from attest.subjects.importer import run_import

EVIDENCE = {
    "type": "manual_review",
    "document_type": "us_passport",
    "attributes": {"citizenship": ["US"], "us_person_status": "us_citizen"},
    "assurance": "IAL1",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--evidence-every", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    with attest_server(batch_max_items=str(max(args.batch_size, 1))) as server:
        work, base, admin_key = server.work, server.base, server.admin_key
        source = work / "subjects.jsonl"
        with source.open("w", encoding="utf-8") as fh:
            for n in range(args.rows):
                item: dict[str, object] = {"external_ref": f"bench-{n:07d}"}
                if args.evidence_every and n % args.evidence_every == 0:
                    item["evidence"] = [EVIDENCE]
                fh.write(json.dumps(item) + "\n")
        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
            first = run_import(
                source, client, batch_size=args.batch_size, concurrency=args.concurrency
            )
            again = run_import(
                source, client, batch_size=args.batch_size, concurrency=args.concurrency
            )
        every = {0: "", 1: ", evidence on every row"}
        evidence = every.get(args.evidence_every, f", evidence on 1 row in {args.evidence_every}")
        print(
            f"import: {first.created} subjects{evidence} in {first.seconds:.2f} s = "
            f"{first.created / first.seconds:,.0f} subjects/s "
            f"(batch {args.batch_size}, {args.concurrency} in flight)"
        )
        print(
            f"re-run: {again.existing} existing, {again.created} created in "
            f"{again.seconds:.2f} s = {again.existing / again.seconds:,.0f} rows/s"
        )
        ok = first.created == args.rows and again.created == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
