"""``attest subjects import``: CSV and JSON Lines, idempotent, resumable, per-row errors."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from attest_testing.support import Actors, LiveServer

from attest.subjects.importer import ImportError_, run_import

IAL1_US = {
    "type": "manual_review",
    "document_type": "us_passport",
    "attributes": {"citizenship": ["US"], "us_person_status": "us_citizen"},
    "assurance": "IAL1",
}


async def _counts(database_url: str, tenant: str) -> tuple[int, int, int, int]:
    """Subjects, onboarding events, distinct subjects in them, evidence events: in the DB."""
    conn = await asyncpg.connect(database_url)
    try:
        subjects = await conn.fetchval("SELECT count(*) FROM subjects WHERE tenant = $1", tenant)
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT subject_id) AS d FROM audit_events "
            "WHERE tenant = $1 AND type = 'subject.onboarded'",
            tenant,
        )
        evidence = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE tenant = $1 AND type LIKE 'evidence.%'",
            tenant,
        )
    finally:
        await conn.close()
    assert row is not None
    return subjects, row["n"], row["d"], evidence


def counts(live: LiveServer, tenant: str) -> tuple[int, int, int, int]:
    return asyncio.run(_counts(live.settings.database_url, tenant))


@pytest.fixture
def loader(actors: Actors) -> httpx.Client:
    return actors.client("subjects:write", "evidence:write", name="loader")


def _jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def _report(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_json_lines_with_errors_reported_per_row(
    tmp_path: Path, loader: httpx.Client, live: LiveServer, tenant: str
) -> None:
    source = tmp_path / "people.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"external_ref": "j-1"}),
                json.dumps({"external_ref": "j-2", "evidence": [IAL1_US]}),
                "{not json",
                json.dumps({"external_ref": ""}),
                json.dumps(["not", "an", "object"]),
                json.dumps(
                    {"external_ref": "j-6", "evidence": [dict(IAL1_US, document_type="card")]}
                ),
                json.dumps({"external_ref": "j-7"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    summary = run_import(source, loader, batch_size=3, concurrency=2, progress=None)
    assert (summary.rows, summary.created, summary.existing, summary.invalid) == (7, 3, 0, 4)
    report = _report(tmp_path / "people.jsonl.errors.csv")
    assert report[0] == ["row", "field", "reason"]
    assert [(r[0], r[1]) for r in report[1:]] == [
        ("3", "$"),
        ("4", "$.external_ref"),
        ("5", "$"),
        ("6", "$.evidence[0].document_type"),
    ]
    assert counts(live, tenant) == (3, 3, 3, 1)
    assert not (tmp_path / "people.jsonl.import-state.json").exists()

    # A re-run changes nothing.
    again = run_import(source, loader, batch_size=3, progress=None)
    assert (again.created, again.existing, again.invalid) == (0, 3, 4)
    assert counts(live, tenant) == (3, 3, 3, 1)


def test_csv_with_evidence_columns(
    tmp_path: Path, loader: httpx.Client, live: LiveServer, tenant: str
) -> None:
    source = tmp_path / "people.csv"
    with source.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["external_ref", "evidence_type", "document_type", "citizenship",
             "us_person_status", "assurance"]
        )  # fmt: skip
        writer.writerow(["c-1", "", "", "", "", ""])
        writer.writerow(["c-2", "manual_review", "us_passport", "US", "us_citizen", "IAL1"])
        writer.writerow(["c-3", "manual_review", "foreign_passport", "FR;DE", "none", "IAL1"])
        writer.writerow(["c-4", "manual_review", "us_passport", "us", "us_citizen", "IAL1"])
        writer.writerow(["c-5", "manual_review", "us_passport", "US", "us_citizen", "IAL9"])
    summary = run_import(source, loader, progress=None)
    assert (summary.created, summary.invalid) == (3, 2)
    assert [(r[0], r[1]) for r in _report(tmp_path / "people.csv.errors.csv")[1:]] == [
        ("4", "$.evidence[0].citizenship[0]"),
        ("5", "$.evidence[0].assurance"),
    ]
    assert counts(live, tenant)[:2] == (3, 3)


def test_a_csv_with_unknown_columns_is_refused_before_anything_is_sent(
    tmp_path: Path, loader: httpx.Client, live: LiveServer, tenant: str
) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("external_ref,birth_date\nx,1970-01-01\n", encoding="utf-8")
    with pytest.raises(ImportError_, match="birth_date"):
        run_import(source, loader, progress=None)
    assert counts(live, tenant)[0] == 0


def test_a_refused_key_stops_the_import(
    tmp_path: Path, actors: Actors, live: LiveServer, tenant: str
) -> None:
    reader = actors.client("subjects:read")
    source = _jsonl(tmp_path / "x.jsonl", [{"external_ref": "x"}])
    with pytest.raises(ImportError_, match="403"):
        run_import(source, reader, progress=None)


def test_ten_thousand_rows_interrupted_and_resumed(
    tmp_path: Path, loader: httpx.Client, live: LiveServer, tenant: str
) -> None:
    items = [
        {"external_ref": f"emp-{n:05d}", **({"evidence": [IAL1_US]} if n % 2 else {})}
        for n in range(10_000)
    ]
    source = _jsonl(tmp_path / "org.jsonl", items)

    class Interrupted(Exception):
        pass

    def interrupt(done: int) -> None:
        if done >= 4_000:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_import(
            source, loader, batch_size=500, concurrency=3, progress=None, after_batch=interrupt
        )
    state = json.loads((tmp_path / "org.jsonl.import-state.json").read_text())
    assert state["rows_done"] == 4_000
    # Batches in flight at the interruption may have landed: the resumed run re-sends them.
    landed = counts(live, tenant)[0]
    assert 4_000 <= landed <= 5_500

    resumed = run_import(source, loader, batch_size=500, concurrency=3, progress=None)
    assert resumed.skipped == 4_000
    assert resumed.rows == 6_000
    assert resumed.created + resumed.existing == 6_000
    assert resumed.created == 10_000 - landed
    assert counts(live, tenant) == (10_000, 10_000, 10_000, 5_000)


def test_the_command_killed_mid_run_resumes_to_exactly_every_row(
    tmp_path: Path, actors: Actors, live: LiveServer, tenant: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(actors.key("subjects:write", "evidence:write"), encoding="utf-8")
    source = _jsonl(tmp_path / "org.jsonl", [{"external_ref": f"k-{n}"} for n in range(10_000)])
    state = tmp_path / "org.jsonl.import-state.json"
    command = [
        sys.executable, "-m", "attest.cli", "subjects", "import", str(source),
        "--url", live.base_url, "--api-key-file", str(key_file),
        "--batch-size", "250", "--concurrency", "2", "--no-progress",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if (
                state.exists()
                and json.loads(state.read_text() or "{}").get("rows_done", 0) >= 1_000
            ):
                break
            time.sleep(0.005)
        assert process.poll() is None, "the import finished before it could be interrupted"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert 0 < counts(live, tenant)[0] < 10_000

    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr
    assert "resumed after" in finished.stdout
    assert counts(live, tenant) == (10_000, 10_000, 10_000, 0)
    assert not state.exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(
    tmp_path: Path, loader: httpx.Client, live: LiveServer, tenant: str
) -> None:
    source = _jsonl(tmp_path / "p.jsonl", [{"external_ref": f"p-{n}"} for n in range(30)])
    screen = _Terminal()
    run_import(source, loader, batch_size=10, concurrency=1, progress=screen)
    assert screen.getvalue().endswith("\n")
    assert "30/30" in screen.getvalue()
    assert "created=30" in screen.getvalue()
    quiet = io.StringIO()  # not a terminal: no bar
    run_import(source, loader, batch_size=10, progress=quiet)
    assert quiet.getvalue() == ""
