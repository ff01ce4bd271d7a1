"""``attest verify``: check an eligibility token offline (works with the base install alone).

The main ``attest`` CLI calls :func:`configure` on its ``verify`` subparser and :func:`run`;
``python -m attest.verify.cli`` runs the same code through :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._errors import InvalidToken
from ._keys import JWKSFile, KeySource, RemoteJWKS
from ._verifier import Verifier

__all__ = ["configure", "main", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the verify arguments to ``parser``."""
    parser.description = (
        "Verify an eligibility token offline. On success the validated claims are printed as "
        "JSON and the exit status is 0; otherwise the line 'invalid: <code>' is printed and "
        "the exit status is 1."
    )
    parser.add_argument(
        "token",
        metavar="TOKEN",
        help="The token to verify, or '-' to read it from standard input.",
    )
    parser.add_argument(
        "--issuer",
        metavar="URL",
        required=True,
        help="The issuer the token must name in 'iss', compared as an exact string.",
    )
    parser.add_argument(
        "--audience",
        metavar="AUD",
        required=True,
        help="The audience the token must name in 'aud', for example model:fable-5.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--jwks",
        metavar="FILE",
        help="Read the issuer's public keys from this JWKS file (air-gapped mode).",
    )
    source.add_argument(
        "--jwks-url",
        metavar="URL",
        help="Fetch the issuer's public keys from this JWKS URL.",
    )
    parser.add_argument(
        "--leeway",
        metavar="N",
        type=int,
        default=5,
        help="Allow this many seconds of clock skew for exp, nbf and iat (default 5).",
    )


def run(args: argparse.Namespace) -> int:
    """Verify ``args.token``; print claims (exit 0) or ``invalid: <code>`` (exit 1)."""
    token = sys.stdin.read() if args.token == "-" else args.token  # noqa: S105 - stdin marker
    token = token.strip()
    keys: KeySource
    try:
        keys = JWKSFile(args.jwks) if args.jwks else RemoteJWKS(args.jwks_url)
        verifier = Verifier(
            issuer=args.issuer,
            audience=args.audience,
            keys=keys,
            leeway=args.leeway,
            cache_size=0,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        claims = verifier.verify(token)
    except InvalidToken as exc:
        print(f"invalid: {exc.code}")
        print(f"token refused: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(claims, indent=2, sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m attest.verify.cli``."""
    parser = argparse.ArgumentParser(prog="attest verify")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
