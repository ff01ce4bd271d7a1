"""``attest subjects import FILE``: onboard subjects (and evidence) from CSV or JSON Lines
through the batch endpoint, over the HTTP API like any other client.

- Idempotent: the server keys subjects by ``external_ref`` and submits evidence only for
  subjects it creates, so a re-run changes nothing.
- Resumable: after each acknowledged batch, ``FILE.import-state.json`` records how many
  rows are done (with the file's SHA-256); a new run of the same file skips them. A batch
  that was sent but not acknowledged is sent again, which the server answers "existing".
- Row errors go to a CSV report (``row,field,reason``) while the good rows still land.
  Rows are numbered from 1: data lines of a CSV after its header, lines of a JSON Lines file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from tqdm import tqdm

__all__ = ["CSV_COLUMNS", "ImportError_", "ImportSummary", "Row", "read_rows", "run_import"]

#: Columns a CSV file may have; only ``external_ref`` is required. A row with
#: ``evidence_type`` carries one evidence record; ``citizenship`` lists alpha-2 codes
#: separated by ``;``; ``mrz`` holds the MRZ lines in one quoted cell.
CSV_COLUMNS = (
    "external_ref",
    "evidence_type",
    "document_type",
    "citizenship",
    "us_person_status",
    "assurance",
    "mrz",
)
_RETRIES = 5


class ImportError_(Exception):  # noqa: N801 - ImportError is a builtin
    """The import cannot go on (bad file, refused key, server unreachable); the state file
    keeps what is done, so the same command resumes."""


@dataclass(frozen=True, slots=True)
class Row:
    """One input row: the batch item, or the reason it could not be read."""

    number: int
    item: dict[str, Any] | None
    error: tuple[str, str] | None = None  # (field, reason)


def _csv_item(record: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"external_ref": record.get("external_ref", "")}
    kind = (record.get("evidence_type") or "").strip()
    if not kind:
        return item
    evidence: dict[str, Any] = {"type": kind}
    if record.get("assurance"):
        evidence["assurance"] = record["assurance"].strip()
    if record.get("document_type"):
        evidence["document_type"] = record["document_type"].strip()
    if record.get("mrz"):
        evidence["mrz"] = record["mrz"]
    attributes: dict[str, Any] = {}
    if record.get("citizenship"):
        attributes["citizenship"] = [c.strip() for c in record["citizenship"].split(";")]
    if record.get("us_person_status"):
        attributes["us_person_status"] = record["us_person_status"].strip()
    if attributes:
        evidence["attributes"] = attributes
    item["evidence"] = [evidence]
    return item


def read_rows(path: Path) -> Iterator[Row]:
    """Rows of a ``.csv`` file (with a header) or a JSON Lines file (anything else)."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            unknown = sorted(set(reader.fieldnames or []) - set(CSV_COLUMNS))
            if not reader.fieldnames or "external_ref" not in reader.fieldnames or unknown:
                raise ImportError_(
                    f"{path}: the header must name external_ref and only these columns: "
                    f"{', '.join(CSV_COLUMNS)}"
                    + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                )
            for number, record in enumerate(reader, 1):
                if None in record:
                    yield Row(number, None, ("$", "more cells than header columns"))
                else:
                    yield Row(number, _csv_item(record))
        return
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Row(number, None, ("$", f"not JSON: {exc.msg}"))
                continue
            if not isinstance(item, dict):
                yield Row(number, None, ("$", "must be a JSON object"))
            else:
                yield Row(number, item)


def _count_rows(path: Path) -> int:
    """Rows for the progress bar, without parsing them: records of a CSV, lines otherwise."""
    with path.open(newline="", encoding="utf-8") as fh:
        if path.suffix.lower() == ".csv":
            return max(sum(1 for _ in csv.reader(fh)) - 1, 0)
        return sum(1 for _ in fh)


@dataclass
class ImportSummary:
    rows: int = 0
    skipped: int = 0  # done by an earlier, interrupted run
    created: int = 0
    existing: int = 0
    invalid: int = 0
    seconds: float = 0.0
    errors_file: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_state(state_path: Path, state: dict[str, Any]) -> None:
    tmp = state_path.with_name(state_path.name + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, state_path)  # atomic: a crash leaves the old or the new state


class _Progress:
    """tqdm's bar over rows on a terminal; silent otherwise (logs and CI stay clean)."""

    def __init__(self, total: int, stream: TextIO | None, done: int) -> None:
        self.bar = tqdm(
            total=total,
            initial=done,
            file=stream,
            unit="row",
            disable=stream is None or not stream.isatty(),
            dynamic_ncols=True,
        )

    def show(self, done: int, summary: ImportSummary, *, final: bool = False) -> None:
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(
            created=summary.created,
            existing=summary.existing,
            invalid=summary.invalid,
            refresh=final,
        )
        if final:
            self.bar.close()


def _post(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    delay = 0.5
    for attempt in range(_RETRIES):
        try:
            response = client.post("/v1/subjects/batch", json=body)
        except httpx.TransportError as exc:
            if attempt == _RETRIES - 1:
                raise ImportError_(f"cannot reach the server: {exc}") from exc
        else:
            if response.status_code == 200:
                answer: dict[str, Any] = response.json()
                return answer
            if response.status_code < 500 and response.status_code != 429:
                try:
                    detail = response.json().get("detail", response.text)
                except ValueError:
                    detail = response.text
                raise ImportError_(
                    f"the server refused the batch ({response.status_code}): {detail}"
                )
            if attempt == _RETRIES - 1:
                raise ImportError_(
                    f"the server failed ({response.status_code}); run again to resume"
                )
        time.sleep(delay)
        delay *= 2
    raise ImportError_("unreachable")  # pragma: no cover


def _batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Run:
    """One import run: sends batches, settles answers in file order, keeps the state file."""

    def __init__(
        self,
        path: Path,
        client: httpx.Client,
        tenant: str | None,
        report: Any,
        summary: ImportSummary,
        state_path: Path,
        source: str,
    ) -> None:
        self.path, self.client, self.tenant = path, client, tenant
        self.report, self.summary = report, summary
        self.state_path, self.source = state_path, source

    def send(self, batch: list[Row]) -> dict[str, Any] | None:
        items = [row.item for row in batch if row.item is not None]
        if not items:
            return None
        body: dict[str, Any] = {"items": items}
        if self.tenant:
            body["tenant"] = self.tenant
        return _post(self.client, body)

    def settle(self, batch: list[Row], answer: dict[str, Any] | None) -> None:
        summary = self.summary
        sent = [row for row in batch if row.item is not None]
        lines: list[tuple[int, str, str]] = []
        for row in batch:
            if row.error is not None:
                lines.append((row.number, *row.error))
                summary.invalid += 1
        for row, result in zip(sent, (answer or {}).get("items", []), strict=True):
            status = result["status"]
            setattr(summary, status, getattr(summary, status) + 1)
            prefix = f"$.items[{result['index']}]"
            lines.extend(
                (row.number, "$" + error["field"].removeprefix(prefix), error["message"])
                for error in result["errors"]
            )
            rejected = sum(1 for e in result["evidence"] if e["status"] == "rejected")
            summary.counts["evidence_rejected"] = (
                summary.counts.get("evidence_rejected", 0) + rejected
            )
        self.report.writerows(sorted(lines, key=lambda line: line[0]))

    def checkpoint(self, done: int) -> None:
        _write_state(
            self.state_path,
            {"source_sha256": self.source, "rows_done": done, "tenant": self.tenant},
        )


def run_import(
    path: Path,
    client: httpx.Client,
    *,
    tenant: str | None = None,
    batch_size: int = 500,
    concurrency: int = 4,
    errors_path: Path | None = None,
    restart: bool = False,
    progress: TextIO | None = sys.stderr,
    after_batch: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import ``path`` through ``client`` (base URL and API key set). See the module doc.

    ``after_batch(rows_done)`` is called after each acknowledged batch.
    """
    state_path = path.with_name(path.name + ".import-state.json")
    errors_path = errors_path or path.with_name(path.name + ".errors.csv")
    source = _sha256(path)
    done = 0
    if state_path.exists() and not restart:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("source_sha256") == source and state.get("tenant") == tenant:
            done = int(state["rows_done"])
    summary = ImportSummary(skipped=done, errors_file=errors_path)
    bar = _Progress(_count_rows(path), progress, done)
    started = time.monotonic()
    rows = (row for row in read_rows(path) if row.number > done)
    workers = max(1, concurrency)
    with errors_path.open("a" if done else "w", newline="", encoding="utf-8") as report_fh:
        report = csv.writer(report_fh)
        if not done:
            report.writerow(["row", "field", "reason"])
        run = _Run(path, client, tenant, report, summary, state_path, source)
        # Up to ``concurrency`` batches in flight, settled strictly in file order, so the
        # state file always names a prefix of the file that the server has acknowledged.
        pending: list[tuple[list[Row], Future[dict[str, Any] | None]]] = []

        def settle_first() -> None:
            nonlocal done
            first, future = pending.pop(0)
            run.settle(first, future.result())
            report_fh.flush()
            done = first[-1].number
            run.checkpoint(done)
            summary.rows = done - summary.skipped
            bar.show(done, summary)
            if after_batch is not None:
                after_batch(done)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                for batch in _batches(rows, batch_size):
                    pending.append((batch, pool.submit(run.send, batch)))
                    while len(pending) >= workers or (pending and pending[0][1].done()):
                        settle_first()
                while pending:
                    settle_first()
            finally:
                for _, future in pending:
                    future.cancel()
    bar.show(done, summary, final=True)
    state_path.unlink(missing_ok=True)
    summary.seconds = time.monotonic() - started
    return summary
