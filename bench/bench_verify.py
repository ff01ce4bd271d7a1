"""Verifier throughput against a bare cryptography ES256 verify (run: python bench/bench_verify.py).

All cases run in one process on the same tokens:
  baseline        cryptography ES256 verify of the token's signing input (DER signature ready)
  uncached        attest.verify, cache_size=0, a distinct token per call
  cached          attest.verify, the same token repeated (cache hit)
  async remote    verify_async, cache_size=0, RemoteJWKS against a local HTTP server, warm
  async cached    verify_async, RemoteJWKS, the same token repeated
  file            verify, JWKSFile (a JWKS file on disk, looked at once per check_interval),
                  uncached and cached
  pyjwt           jwt.decode with full claim checks (exp, nbf, iat, iss, aud, required claims)

The machine may be shared and noisy, so the cases are interleaved in small blocks (BLOCK
calls each, ROUNDS rounds). Two figures per case: "best" is the fastest block's rate, and
"paired" is the median over rounds of (baseline block time / case block time), where the
two blocks ran back to back; noise that slows a whole round cancels out in the pair.
Then a flood of FLOOD tokens with random unknown kids goes through verify_async and the
number of JWKS fetches it caused is printed.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from attest.verify import InvalidToken, JWKSFile, RemoteJWKS, Verifier

ISSUER = "https://attest.example"
AUDIENCE = "model:fable-5"
N_TOKENS = 2000
BLOCK = 100
ROUNDS = 120
FLOOD = 10_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(private: ec.EllipticCurvePrivateKey, signing_input: str) -> str:
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def make_tokens(private: ec.EllipticCurvePrivateKey, kid: str, now: int) -> list[str]:
    header = b64url(json.dumps({"alg": "ES256", "typ": "elig+jwt", "kid": kid}).encode())
    tokens = []
    for i in range(N_TOKENS):
        claims = {
            "iss": ISSUER,
            "sub": f"pairwise-{i:08d}",
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": f"jti-{i:08d}",
            "eligibility": {
                "policy": "us-nationals-only",
                "policy_version": 3,
                "policy_digest": "0" * 64,
                "assurance": "IAL2",
            },
        }
        tokens.append(sign(private, f"{header}.{b64url(json.dumps(claims).encode())}"))
    return tokens


class JWKSServer:
    """A local HTTP server publishing the JWKS and counting requests."""

    def __init__(self, jwks: dict[str, object]) -> None:
        body = json.dumps(jwks).encode()
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=300")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


Block = Callable[[int], None]  # runs BLOCK calls starting at token index i


def measure(cases: dict[str, Block]) -> dict[str, tuple[float, float]]:
    """{case: (best ops/s, median paired ratio to the first case)}."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(ROUNDS):
        start = (r * BLOCK) % N_TOKENS
        for name, block in cases.items():
            t0 = time.perf_counter()
            block(start)
            times[name].append(time.perf_counter() - t0)
    base = next(iter(times.values()))
    return {
        name: (
            BLOCK / min(ts),
            statistics.median(b / t for b, t in zip(base, ts, strict=True)),
        )
        for name, ts in times.items()
    }


def main() -> None:  # noqa: PLR0915 - one linear script, read top to bottom
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    numbers = public.public_numbers()
    kid = "bench-key"
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "use": "sig",
        "alg": "ES256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    now = int(time.time())
    tokens = make_tokens(private, kid, now)

    # baseline: the same signing inputs and signatures, DER-encoded ahead of time
    prepared = []
    for token in tokens:
        head, payload, sig = token.split(".")
        raw = base64.urlsafe_b64decode(sig + "==")
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        prepared.append((der, f"{head}.{payload}".encode()))
    algorithm = ec.ECDSA(hashes.SHA256())

    server = JWKSServer({"keys": [jwk]})
    uncached = Verifier(issuer=ISSUER, audience=AUDIENCE, keys={"keys": [jwk]}, cache_size=0)
    cached = Verifier(issuer=ISSUER, audience=AUDIENCE, keys={"keys": [jwk]})
    remote = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=RemoteJWKS(server.url), cache_size=0)
    remote_cached = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=RemoteJWKS(server.url))
    fd, jwks_path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump({"keys": [jwk]}, fh)
    file_uncached = Verifier(
        issuer=ISSUER, audience=AUDIENCE, keys=JWKSFile(jwks_path), cache_size=0
    )
    file_cached = Verifier(issuer=ISSUER, audience=AUDIENCE, keys=JWKSFile(jwks_path))
    pyjwt_key = jwt.PyJWK(jwk).key
    loop = asyncio.new_event_loop()

    def baseline(i: int) -> None:
        for der, data in prepared[i : i + BLOCK]:
            public.verify(der, data, algorithm)

    def attest_uncached(i: int) -> None:
        verify = uncached.verify
        for token in tokens[i : i + BLOCK]:
            verify(token)

    def attest_cached(i: int) -> None:
        verify, token = cached.verify, tokens[0]
        for _ in range(BLOCK):
            verify(token)

    def file_uncached_block(i: int) -> None:
        verify = file_uncached.verify
        for token in tokens[i : i + BLOCK]:
            verify(token)

    def file_cached_block(i: int) -> None:
        verify, token = file_cached.verify, tokens[0]
        for _ in range(BLOCK):
            verify(token)

    async def remote_block(i: int) -> None:
        verify = remote.verify_async
        for token in tokens[i : i + BLOCK]:
            await verify(token)

    async def remote_cached_block() -> None:
        verify, token = remote_cached.verify_async, tokens[0]
        for _ in range(BLOCK):
            await verify(token)

    def pyjwt_decode(i: int) -> None:
        for token in tokens[i : i + BLOCK]:
            jwt.decode(
                token,
                pyjwt_key,
                algorithms=["ES256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=5,
                options={"require": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"]},
            )

    # sanity and warm-up: everything accepts every token (the remote sets are fetched here)
    for i in range(0, N_TOKENS, BLOCK):
        baseline(i)
        attest_uncached(i)
        file_uncached_block(i)
        loop.run_until_complete(remote_block(i))
        pyjwt_decode(i)
    loop.run_until_complete(remote_cached_block())
    assert server.hits == 2, server.hits

    results = measure(
        {
            "cryptography ES256 verify (baseline)": baseline,
            "attest.verify uncached (cache_size=0)": attest_uncached,
            "attest.verify cached (same token)": attest_cached,
            "verify_async + RemoteJWKS, uncached": lambda i: loop.run_until_complete(
                remote_block(i)
            ),
            "verify_async + RemoteJWKS, cached": lambda i: loop.run_until_complete(
                remote_cached_block()
            ),
            "verify + JWKSFile, uncached": file_uncached_block,
            "verify + JWKSFile, cached": file_cached_block,
            "PyJWT jwt.decode, full claim checks": pyjwt_decode,
        }
    )
    print(f"{'case':<40} {'best ops/s':>11} {'x base (best)':>14} {'x base (paired)':>16}")
    base = results["cryptography ES256 verify (baseline)"][0]
    for name, (ops, paired) in results.items():
        print(f"{name:<40} {ops:>11,.0f} {ops / base:>14.2f} {paired:>16.2f}")

    # A flood of random unknown kids through verify_async: how many fetches does it cause?
    before = server.hits
    header_for = {
        k: b64url(json.dumps({"alg": "ES256", "typ": "elig+jwt", "kid": k}).encode())
        for k in (secrets.token_urlsafe(12) for _ in range(FLOOD))
    }
    body, sig = tokens[0].split(".")[1:]
    flood = [f"{h}.{body}.{sig}" for h in header_for.values()]

    async def run_flood() -> int:
        async def one(token: str) -> int:
            try:
                await remote.verify_async(token)
            except InvalidToken:
                return 1
            return 0

        refused = 0
        for start in range(0, FLOOD, 1000):
            refused += sum(await asyncio.gather(*(one(t) for t in flood[start : start + 1000])))
        return refused

    t0 = time.perf_counter()
    refused = loop.run_until_complete(run_flood())
    elapsed = time.perf_counter() - t0
    print(
        f"\nflood: {FLOOD:,} tokens with random unknown kids via verify_async: {refused:,} "
        f"refused (unknown_key) in {elapsed:.2f} s, {server.hits - before} JWKS fetch(es)"
    )
    uncached_paired = results["attest.verify uncached (cache_size=0)"][1]
    cached_paired = results["attest.verify cached (same token)"][1]
    remote_paired = results["verify_async + RemoteJWKS, uncached"][1]
    remote_cached_paired = results["verify_async + RemoteJWKS, cached"][1]
    print(f"uncached / baseline = {uncached_paired:.3f} paired (target >= 0.85)")
    print(f"cached / baseline = {cached_paired:.1f} paired (target >= 20)")
    print(f"verify_async + RemoteJWKS: uncached {remote_paired:.3f}, cached "
          f"{remote_cached_paired:.1f} paired (same targets)")  # fmt: skip
    file_paired = results["verify + JWKSFile, uncached"][1]
    file_cached_paired = results["verify + JWKSFile, cached"][1]
    print(f"verify + JWKSFile: uncached {file_paired:.3f}, cached "
          f"{file_cached_paired:.1f} paired (same targets)")  # fmt: skip
    print(
        f"JWKSFile / StaticJWKS: uncached {file_paired / uncached_paired:.3f}, "
        f"cached {file_cached_paired / cached_paired:.2f}"
    )
    loop.close()
    server.close()
    os.unlink(jwks_path)


if __name__ == "__main__":
    main()
