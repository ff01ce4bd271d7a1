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
from ._remote import RemoteJWKS
from ._selftest import load_vectors, run_vectors
from ._sources import JWKSFile, KeySource
from ._statuslists import StatusLists
from ._verifier import Verifier

__all__ = ["configure", "main", "run", "selftest"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the verify arguments to ``parser``."""
    parser.description = (
        "Verify an eligibility token offline. On success the validated claims are printed as "
        "JSON and the exit status is 0; otherwise the line 'invalid: <code>' is printed and "
        "the exit status is 1. With --selftest, run the built-in conformance vectors instead."
    )
    parser.add_argument(
        "token",
        metavar="TOKEN",
        nargs="?",
        help="The token to verify, or '-' to read it from standard input.",
    )
    parser.add_argument(
        "--issuer",
        metavar="URL",
        help="The issuer the token must name in 'iss', compared as an exact string.",
    )
    parser.add_argument(
        "--audience",
        metavar="AUD",
        help="The audience the token must name in 'aud', for example model:fable-5.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--jwks",
        metavar="FILE",
        help=(
            "Read the issuer's public keys from this JWKS file (air-gapped mode); the file is "
            "read again whenever it changes, so --stream picks up a rotated key set."
        ),
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
    parser.add_argument(
        "--check-status",
        action="store_true",
        help=(
            "Also check the token's entry in its issuer's status list (fetched from the URI "
            "in the token, which must be under --issuer, and checked with the same keys): a "
            "revoked token is 'invalid: revoked', a suspended one 'invalid: suspended', and a "
            "list that cannot be had is 'invalid: status_unavailable'."
        ),
    )
    parser.add_argument(
        "--dpop",
        metavar="PROOF",
        help="The DPoP proof (RFC 9449) that a holder-bound token needs; give --method and --url.",
    )
    parser.add_argument(
        "--method",
        metavar="M",
        help="The HTTP method of the request the DPoP proof was made for, for example POST.",
    )
    parser.add_argument(
        "--url",
        metavar="U",
        help="The absolute URL of the request the DPoP proof was made for.",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help=(
            "Read one token per line from standard input and print one line per token: the "
            "claims as compact JSON, or 'invalid: <code>'. The exit status is 0 only if every "
            "token is valid."
        ),
    )
    parser.add_argument(
        "--selftest",
        action="store_true",
        help=(
            "Run the built-in conformance vectors, print a pass/fail table, and exit 0 only "
            "if every vector passes. No token, issuer or key source is needed."
        ),
    )
    parser.set_defaults(verify_parser=parser)


def _usage_error(args: argparse.Namespace, message: str) -> int:
    parser = getattr(args, "verify_parser", None)
    if isinstance(parser, argparse.ArgumentParser):
        parser.error(message)  # exits with status 2
    print(f"error: {message}", file=sys.stderr)
    return 2


def selftest() -> int:
    """Print the conformance vectors' pass/fail table; 0 only if all pass."""
    try:
        results = run_vectors(load_vectors())
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: conformance vectors unavailable: {exc}", file=sys.stderr)
        return 2
    width = max(len(r.name) for r in results)
    print(f"{'vector':<{width}}  {'expected':<22} {'got':<22} result")
    for r in results:
        print(f"{r.name:<{width}}  {r.expect:<22} {r.got:<22} {'pass' if r.passed else 'FAIL'}")
    failed = sum(not r.passed for r in results)
    print(f"\n{len(results) - failed} passed, {failed} failed")
    return 0 if failed == 0 and results else 1


def run(args: argparse.Namespace) -> int:
    """Verify ``args.token``; print claims (exit 0) or ``invalid: <code>`` (exit 1)."""
    if args.selftest:
        return selftest()
    missing = [
        flag
        for flag, value in (
            ("--issuer", args.issuer),
            ("--audience", args.audience),
            ("--jwks or --jwks-url", args.jwks or args.jwks_url),
        )
        if not value
    ]
    if args.token is None and not args.stream:
        missing.insert(0, "TOKEN")
    if missing:
        return _usage_error(args, "required: " + ", ".join(missing))
    if args.dpop is not None and (not args.method or not args.url):
        return _usage_error(args, "--dpop needs --method and --url")
    if args.dpop is not None and args.stream:
        return _usage_error(args, "--dpop verifies one token; it cannot be used with --stream")
    keys: KeySource
    try:
        keys = JWKSFile(args.jwks) if args.jwks else RemoteJWKS(args.jwks_url)
        verifier = Verifier(
            issuer=args.issuer,
            audience=args.audience,
            keys=keys,
            leeway=args.leeway,
            cache_size=0,
            status=StatusLists() if args.check_status else None,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.stream:
        return _stream(verifier)
    token = sys.stdin.read() if args.token == "-" else args.token  # noqa: S105 - stdin marker
    try:
        claims = verifier.verify(token.strip(), dpop=args.dpop, method=args.method, url=args.url)
    except InvalidToken as exc:
        print(f"invalid: {exc.code}")
        print(f"token refused: {exc.message}", file=sys.stderr)
        return 1
    except ValueError as exc:  # --url is not an absolute http(s) URL
        return _usage_error(args, str(exc))
    print(json.dumps(claims, indent=2, sort_keys=True))
    return 0


def _stream(verifier: Verifier) -> int:
    status = 0
    for line in sys.stdin:
        token = line.strip()
        if not token:
            continue
        try:
            claims = verifier.verify(token)
        except InvalidToken as exc:
            print(f"invalid: {exc.code}", flush=True)
            status = 1
        else:
            print(json.dumps(claims, sort_keys=True, separators=(",", ":")), flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m attest.verify.cli``."""
    parser = argparse.ArgumentParser(prog="attest verify")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
