"""``attest audiences suspend|resume AUDIENCE`` and ``attest policies impact NAME FILE``:
the command-line face of the audience controls and the impact preview, over the HTTP API
(the audit trail names who acted).

Imported by ``attest.cli`` with the base install too; httpx is imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["configure_audiences", "configure_policies", "impact_table"]


def _key(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        print(f"attest: cannot read the API key file: {exc.strerror}", file=sys.stderr)
        return None


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """The answer's JSON, or an exit status (int) after saying what went wrong."""
    import httpx  # noqa: PLC0415 - imported when the command runs

    key = _key(args.api_key_file)
    if key is None:
        return 2
    try:
        with httpx.Client(
            base_url=args.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
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
    return response.json()


def impact_table(answer: dict[str, Any]) -> str:
    """The impact preview as a plain table, one row per audience."""
    headers = ["AUDIENCE", "SUBJECTS", "ELIGIBLE NOW", "AFTER", "GAIN", "LOSE", "LOSE BY REASON"]
    rows = [
        [
            a["audience"],
            str(a["subjects"]),
            str(a["eligible_now"]),
            str(a["eligible_after"]),
            str(a["gain"]),
            str(a["lose"]),
            ", ".join(f"{code} {n}" for code, n in a["lose_by_reason"].items()) or "-",
        ]
        for a in answer["audiences"]
    ]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    version = answer.get("current_version")
    lines.append(
        f"\npolicy {answer['policy']}, now version {version if version else 'none'}; "
        f"draft sha256 {answer['draft_digest'][:16]}...; nothing was published"
    )
    return "\n".join(lines)


def _impact(args: argparse.Namespace) -> int:
    try:
        draft = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"attest: cannot read the draft {args.file}: {exc}", file=sys.stderr)
        return 2
    answer = _request(args, "POST", f"/v1/policies/{quote(args.name, safe='')}/impact", draft)
    if isinstance(answer, int):
        return answer
    print(json.dumps(answer, indent=2, sort_keys=True) if args.json else impact_table(answer))
    return 0


def configure_policies(policies: argparse.ArgumentParser) -> None:
    """Add ``impact`` under the ``policies`` command."""
    commands = policies.add_subparsers(dest="policies_command", required=True)
    impact = commands.add_parser(
        "impact",
        help="Preview a draft policy: who would gain and lose eligibility, per audience.",
        description=(
            "Send the draft document in FILE to POST /v1/policies/NAME/impact and print, per "
            "audience the policy governs, how many subjects are eligible now and would be "
            "under the draft, how many gain and lose, and the reasons of those who lose. "
            "Nothing is published or recorded."
        ),
    )
    impact.add_argument("name", metavar="NAME", help="The policy, e.g. us-nationals-only.")
    impact.add_argument("file", metavar="FILE", help="The draft policy document (JSON).")
    impact.add_argument("--url", default="http://127.0.0.1:8080", help="The attest base URL.")
    impact.add_argument(
        "--api-key-file",
        required=True,
        help="A file holding an API key with the scope policies:read (an admin key previews "
        "every tenant's subjects, another key its own tenant's).",
    )
    impact.add_argument("--json", action="store_true", help="Print the answer as JSON instead.")
    impact.set_defaults(func=_impact)


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    answer = _request(args, method, path, body)
    if isinstance(answer, int):
        return answer
    print(json.dumps(answer, indent=2, sort_keys=True))
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
