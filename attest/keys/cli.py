"""``attest keys list | rotate | revoke KID --compromised | history``.

Imported by ``attest.cli`` with the base install too, so server modules are imported only
when a command runs.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

__all__ = ["attach_kid", "configure"]

#: A kid as attest makes them: the RFC 7638 thumbprint, 43 base64url characters.
_KID = re.compile(r"[A-Za-z0-9_-]{43}")


def attach_kid(argv: Sequence[str]) -> list[str]:
    """``argv`` with the kid of ``keys revoke`` put after ``--`` when it begins with "-"
    (one kid in 64 does), so that it is read as the kid, not as an unknown option (to be
    called before parsing)."""
    args = list(argv)
    for at in range(len(args) - 1):
        if args[at : at + 2] == ["keys", "revoke"] and "--" not in args:
            rest = args[at + 2 :]
            kids = [a for a in rest if a.startswith("-") and _KID.fullmatch(a)]
            if kids:
                return [*args[: at + 2], *(a for a in rest if a not in kids), "--", *kids]
    return args


Runner = Callable[[Any, Callable[[Any], Any]], Any]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value is not None else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: a header, a rule, one line per row, columns padded to fit."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _tools(settings: Any) -> tuple[Any, Any]:
    from attest.devsecrets import resolve_secret  # noqa: PLC0415
    from attest.keys.keyring import open_keystore  # noqa: PLC0415
    from attest.keys.lifecycle import KeyPolicy  # noqa: PLC0415

    keystore = open_keystore(
        settings,
        lambda: resolve_secret(settings, settings.keystore_passphrase, "keystore_passphrase"),
    )
    return KeyPolicy.from_settings(settings), keystore


def _list(settings: Any, run: Runner) -> int:
    from attest.keys import repository  # noqa: PLC0415

    rows = run(settings, repository.list_keys)
    print(
        table(
            ["KID", "ALG", "STATE", "CREATED", "SIGNS FROM", "SIGNED UNTIL", "LEAVES JWKS"],
            [
                [
                    k.kid,
                    k.alg,
                    k.state,
                    _when(k.created_at),
                    _when(k.activated_at or k.activate_after),
                    _when(k.compromised_at or k.retiring_at),
                    _when(k.compromised_at or k.retired_at or k.retire_after),
                ]
                for k in rows
            ],
        )
    )
    return 0


HISTORY_SQL = """
SELECT occurred_at, type, data FROM audit_events WHERE type LIKE 'key.%' ORDER BY id
"""


def _history(settings: Any, run: Runner) -> int:
    async def work(conn: Any) -> Any:
        return await conn.fetch(HISTORY_SQL)

    rows = run(settings, work)
    print(
        table(
            ["WHEN", "EVENT", "KID", "DETAIL"],
            [
                [
                    _when(r["occurred_at"]),
                    r["type"].removeprefix("key."),
                    r["data"].get("kid", "-"),
                    ", ".join(f"{k}={v}" for k, v in sorted(r["data"].items()) if k not in {"kid"}),
                ]
                for r in rows
            ],
        )
    )
    return 0


def _rotate(settings: Any, run: Runner) -> int:
    from attest.clock import utc_now  # noqa: PLC0415
    from attest.keys.lifecycle import rotate  # noqa: PLC0415

    policy, keystore = _tools(settings)

    async def work(conn: Any) -> Any:
        return await rotate(conn, keystore, policy, utc_now(), None, "cli")

    try:
        done = run(settings, work)
    finally:
        keystore.close()
    verb = "published" if done.created else "already pending"
    print(f"{verb}: {done.kid} ({done.alg}), signs from {_when(done.activate_after)}")
    return 0


def _revoke(settings: Any, run: Runner, kid: str) -> int:
    from attest.clock import utc_now  # noqa: PLC0415
    from attest.errors import AttestError  # noqa: PLC0415
    from attest.keys.lifecycle import revoke_compromised  # noqa: PLC0415

    policy, keystore = _tools(settings)

    async def work(conn: Any) -> Any:
        return await revoke_compromised(conn, keystore, policy, utc_now(), kid, None, "cli")

    try:
        done = run(settings, work)
    except AttestError as exc:
        print(f"attest: {exc}", file=sys.stderr)
        return 1
    finally:
        keystore.close()
    print(f"compromised: {done.kid} (was {done.previous_state}); removed from JWKS now")
    if done.replacement:
        print(
            f"active now: {done.replacement} ({done.replacement_alg}); pre-publication was "
            "skipped, verifiers fetch it on its unknown kid"
        )
    return 0


def configure(parser: argparse.ArgumentParser, settings: Callable[[], Any], run: Runner) -> None:
    """Add the ``keys`` subcommands; ``run(settings, work)`` runs ``work(conn)`` on the DB."""
    commands = parser.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="Show every signing key with its state and times.")
    listing.set_defaults(func=lambda _args: _list(settings(), run))
    history = commands.add_parser(
        "history", help="Show every key state change, oldest first, from the audit trail."
    )
    history.set_defaults(func=lambda _args: _history(settings(), run))
    rotate = commands.add_parser(
        "rotate",
        help="Publish the next signing key now; it signs after the pre-publication period.",
    )
    rotate.set_defaults(func=lambda _args: _rotate(settings(), run))
    revoke = commands.add_parser(
        "revoke",
        help="Mark a key compromised: it leaves the JWKS at once and a new key signs now.",
    )
    revoke.add_argument("kid", metavar="KID", help="The kid of the key to revoke.")
    revoke.add_argument(
        "--compromised",
        action="store_true",
        required=True,
        help="Required: say that the key is compromised (the only reason to revoke one).",
    )
    revoke.set_defaults(func=lambda args: _revoke(settings(), run, args.kid))
