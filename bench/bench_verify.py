"""Verifier throughput against a bare cryptography ES256 verify (run: python bench/bench_verify.py).

Measures, in one process, best of several rounds:
  baseline   cryptography ES256 verify of the token's signing input (DER signature ready)
  uncached   attest.verify, cache_size=0, a distinct token per call
  cached     attest.verify, the same token repeated (cache hit)
  pyjwt      jwt.decode with full claim checks (exp, nbf, iat, iss, aud, required claims)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from attest.verify import Verifier

ISSUER = "https://attest.example"
AUDIENCE = "model:fable-5"
N_TOKENS = 2000
ROUNDS = 9


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


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
        signing_input = f"{header}.{b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        tokens.append(f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}")
    return tokens


def once(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def best_rates(cases: dict[str, tuple[Callable[[int], object], int]]) -> dict[str, float]:
    """Best ops/s of each case over ROUNDS interleaved rounds (noise hits every case alike)."""
    best = dict.fromkeys(cases, 0.0)
    for _ in range(ROUNDS):
        for name, (fn, n) in cases.items():
            best[name] = max(best[name], once(fn, n))
    return best


def main() -> None:
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

    def baseline(i: int) -> None:
        der, data = prepared[i]
        public.verify(der, data, algorithm)

    uncached = Verifier(issuer=ISSUER, audience=AUDIENCE, keys={"keys": [jwk]}, cache_size=0)
    cached = Verifier(issuer=ISSUER, audience=AUDIENCE, keys={"keys": [jwk]})
    cached.verify(tokens[0])
    pyjwt_key = jwt.PyJWK(jwk).key

    def pyjwt_decode(i: int) -> None:
        jwt.decode(
            tokens[i],
            pyjwt_key,
            algorithms=["ES256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=5,
            options={"require": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti"]},
        )

    # sanity: everything accepts every token
    for i in range(N_TOKENS):
        baseline(i)
        uncached.verify(tokens[i])
        pyjwt_decode(i)

    results = best_rates(
        {
            "cryptography ES256 verify (baseline)": (baseline, N_TOKENS),
            "attest.verify uncached (cache_size=0)": (
                lambda i: uncached.verify(tokens[i]),
                N_TOKENS,
            ),
            "attest.verify cached (same token)": (
                lambda i: cached.verify(tokens[0]),
                N_TOKENS * 10,
            ),
            "PyJWT jwt.decode, full claim checks": (pyjwt_decode, N_TOKENS),
        }
    )
    base = results["cryptography ES256 verify (baseline)"]
    print(f"{'case':<40} {'ops/s':>12} {'x baseline':>11}")
    for name, ops in results.items():
        print(f"{name:<40} {ops:>12,.0f} {ops / base:>11.2f}")
    ratio = results["attest.verify uncached (cache_size=0)"] / base
    print(f"\nuncached / baseline = {ratio:.3f} (target >= 0.85)")


if __name__ == "__main__":
    main()
