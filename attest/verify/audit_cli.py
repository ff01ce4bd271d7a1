"""``attest audit``: check attestation receipts and the transparency log (base install only).

``attest audit verify-receipt FILE --log-key VKEY`` needs no network; ``attest audit verify
--url URL --log-key VKEY [--state FILE] [--jti JTI]`` follows a live log. Both print a JSON
summary and exit 0, or print ``invalid: <code>: <what>`` and exit 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ._auditor import check_receipt, follow_log
from ._tlog import LogError, parse_vkey

__all__ = ["attach_jti", "configure", "run"]

#: A jti as attest issues it: base64url of 16 random bytes (22 characters). One in 64 begins
#: with "-", which argparse takes for an option ("--jti: expected one argument").
_JTI = re.compile(r"[A-Za-z0-9_-]{20,}")


def attach_jti(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--jti VALUE`` written ``--jti=VALUE`` when VALUE looks like a jti,
    so that a jti beginning with "-" is read as the option's value (to be called before
    parsing)."""
    out: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--jti":
            value = next(rest, None)
            if value is not None and _JTI.fullmatch(value):
                out.append(f"--jti={value}")
                continue
            out.append(arg)
            if value is not None:
                out.append(value)
            continue
        out.append(arg)
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``audit`` subcommands to ``parser``."""
    commands = parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    receipt = commands.add_parser(
        "verify-receipt",
        help="Check an attestation receipt offline against the log's verifier key.",
        description=(
            "Check an attestation receipt with no network: the checkpoint signature by the "
            "log key, the inclusion proof, that the leaf is the token.issued event of this "
            "attestation, the attestation's signature by its signing key, and the policy "
            "digest over the document."
        ),
    )
    receipt.add_argument("file", metavar="FILE", help="The receipt (JSON), or '-' for stdin.")
    receipt.add_argument(
        "--log-key",
        required=True,
        metavar="VKEY",
        help="The log's C2SP verifier key, <origin>+<key id>+<base64>, obtained out of band.",
    )
    verify = commands.add_parser(
        "verify",
        help="Check the live log: checkpoint signature, consistency, one attestation.",
        description=(
            "Fetch the latest checkpoint, check its signature and its consistency with the "
            "checkpoint kept in the state file (a log that shrank or forked fails), and with "
            "--jti the receipt of that attestation. The state file is updated only when "
            "every check passed."
        ),
    )
    verify.add_argument("--url", required=True, help="The attest service's base URL.")
    verify.add_argument(
        "--log-key", required=True, metavar="VKEY", help="The log's C2SP verifier key."
    )
    verify.add_argument(
        "--state", metavar="FILE", help="Where the last verified checkpoint is kept."
    )
    verify.add_argument("--jti", help="Also check the receipt of this attestation.")
    verify.add_argument(
        "--api-key-file",
        metavar="FILE",
        help="A file holding an audit:read API key, needed with --jti (never on the command line).",
    )


def _fail(exc: LogError) -> int:
    print(f"invalid: {exc.code}: {exc}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    try:
        if args.audit_command == "verify-receipt":
            raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
            try:
                receipt = json.loads(raw)
            except ValueError:
                raise LogError("malformed_receipt", "the receipt is not JSON") from None
            checkpoint = check_receipt(receipt, parse_vkey(args.log_key))
            summary = {
                "valid": True,
                "jti": receipt["attestation"]["jti"],
                "index": receipt["log"]["index"],
                "tree_size": checkpoint.size,
            }
        else:
            api_key = None
            if args.api_key_file:
                api_key = Path(args.api_key_file).read_text("utf-8").strip()
            summary = {
                "valid": True,
                **follow_log(
                    args.url,
                    args.log_key,
                    state=Path(args.state) if args.state else None,
                    jti=args.jti,
                    api_key=api_key,
                ),
            }
    except LogError as exc:
        return _fail(exc)
    except OSError as exc:
        print(f"invalid: unreadable: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0
