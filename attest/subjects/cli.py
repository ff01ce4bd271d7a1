"""``attest subjects import FILE``: the command-line face of :mod:`attest.subjects.importer`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["configure"]


def _run(args: argparse.Namespace) -> int:
    import httpx  # noqa: PLC0415 - imported when the command runs

    from attest.subjects.importer import ImportError_, run_import  # noqa: PLC0415

    try:
        key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        print(f"attest: cannot read the API key file: {exc.strerror}", file=sys.stderr)
        return 2
    path = Path(args.file)
    if not path.is_file():
        print(f"attest: {path} is not a file", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=args.url, headers=headers, timeout=120) as client:
            summary = run_import(
                path,
                client,
                tenant=args.tenant,
                batch_size=args.batch_size,
                concurrency=args.concurrency,
                errors_path=Path(args.errors) if args.errors else None,
                restart=args.restart,
                progress=None if args.no_progress else sys.stderr,
            )
    except ImportError_ as exc:
        print(f"attest: import stopped: {exc}", file=sys.stderr)
        return 1
    print(
        f"{summary.rows} rows in {summary.seconds:.1f} s"
        + (f" (resumed after {summary.skipped})" if summary.skipped else "")
        + f": {summary.created} created, {summary.existing} existing, "
        f"{summary.invalid} invalid (see {summary.errors_file})"
    )
    return 0 if summary.invalid == 0 else 3


def configure(subjects: argparse.ArgumentParser) -> None:
    """Add ``import`` under the ``subjects`` command."""
    commands = subjects.add_subparsers(dest="subjects_command", required=True)
    run = commands.add_parser(
        "import",
        help="Onboard subjects and their evidence from a CSV or JSON Lines file.",
        description=(
            "Onboard subjects (and evidence) from FILE through POST /v1/subjects/batch. "
            "A re-run changes nothing; an interrupted run resumes where it stopped; rows "
            "that fail are listed with their row number, field and reason in an error report "
            "while the good rows still land. Exit status: 0 all rows good, 3 some rows "
            "invalid, 1 stopped, 2 bad arguments."
        ),
    )
    run.add_argument(
        "file", help="A .csv file with a header row, or a JSON Lines file (one item per line)."
    )
    run.add_argument("--url", default="http://127.0.0.1:8080", help="The attest base URL.")
    run.add_argument(
        "--api-key-file",
        required=True,
        help="A file holding an API key with the scope subjects:write (and evidence:write "
        "for rows with evidence); a file keeps the key out of the process list.",
    )
    run.add_argument("--tenant", help="The tenant to onboard into (admin keys only).")
    run.add_argument("--batch-size", type=int, default=500, help="Rows per request (default 500).")
    run.add_argument("--concurrency", type=int, default=4, help="Requests in flight (default 4).")
    run.add_argument("--errors", help="Where to write the error report (default FILE.errors.csv).")
    run.add_argument(
        "--restart",
        action="store_true",
        help="Ignore the saved progress of an interrupted run and start at the first row.",
    )
    run.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")
    run.set_defaults(func=_run)
