"""``attest audiences suspend|resume AUDIENCE``: the command-line face of the audience
controls, over the HTTP API with an admin key (the audit trail names who acted).

Imported by ``attest.cli`` with the base install too; httpx is imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["configure_audiences"]


def _key(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        print(f"attest: cannot read the API key file: {exc.strerror}", file=sys.stderr)
        return None


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    import httpx  # noqa: PLC0415 - imported when the command runs

    key = _key(args.api_key_file)
    if key is None:
        return 2
    try:
        with httpx.Client(
            base_url=args.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        print(f"attest: {args.url} did not answer: {type(exc).__name__}", file=sys.stderr)
        return 1
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        print(f"attest: refused ({response.status_code}): {detail}", file=sys.stderr)
        return 1
    print(json.dumps(response.json(), indent=2, sort_keys=True))
    return 0


def _suspend(args: argparse.Namespace) -> int:
    body = {"reason": args.reason} if args.reason else {}
    return _call(args, "POST", f"/v1/audiences/{quote(args.audience, safe=':')}/suspension", body)


def _resume(args: argparse.Namespace) -> int:
    return _call(args, "DELETE", f"/v1/audiences/{quote(args.audience, safe=':')}/suspension")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audience", metavar="AUDIENCE", help="The audience, e.g. model:fable-5.")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="The attest base URL.")
    parser.add_argument(
        "--api-key-file",
        required=True,
        help="A file holding an admin API key with the scope audiences:write; a file keeps "
        "the key out of the process list.",
    )


def configure_audiences(audiences: argparse.ArgumentParser) -> None:
    """Add ``suspend`` and ``resume`` under the ``audiences`` command."""
    commands = audiences.add_subparsers(dest="audiences_command", required=True)
    suspend = commands.add_parser(
        "suspend",
        help="Suspend an audience at once: no new tokens, outstanding tokens SUSPENDED.",
        description=(
            "Suspend AUDIENCE at once: issuance for it is refused (403 audience-suspended) and "
            "its outstanding tokens are SUSPENDED in their status lists, so verifiers refuse "
            "them within one status-list ttl. Prints the audience as it is now."
        ),
    )
    _common(suspend)
    suspend.add_argument("--reason", help="Why (kept out of the audit trail, which notes one).")
    suspend.set_defaults(func=_suspend)
    resume = commands.add_parser(
        "resume",
        help="Lift a suspension: tokens it suspended are VALID again unless revoked meanwhile.",
    )
    _common(resume)
    resume.set_defaults(func=_resume)
