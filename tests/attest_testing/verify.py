"""Helpers for verifier tests: real keys, a fixed clock and a minter for attack tokens."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

NOW = 1_700_000_000
ISSUER = "https://attest.example"
AUDIENCE = "model:fable-5"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256), base64url."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("crv", "kty", "x")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass
class SigningKey:
    """A private key with its public JWK (kid = RFC 7638 thumbprint)."""

    alg: str
    private: ec.EllipticCurvePrivateKey | Ed25519PrivateKey
    jwk: dict[str, Any] = field(default_factory=dict)

    @property
    def kid(self) -> str:
        return str(self.jwk["kid"])

    def sign(self, signing_input: bytes) -> bytes:
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            der = self.private.sign(signing_input, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.private.sign(signing_input)


def new_es256() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    jwk = {**jwk, "kid": thumbprint(jwk), "use": "sig", "alg": "ES256"}
    return SigningKey("ES256", private, jwk)


def new_ed25519() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes_raw()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    jwk = {**jwk, "kid": thumbprint(jwk), "use": "sig", "alg": "EdDSA"}
    return SigningKey("EdDSA", private, jwk)


def good_claims(now: int = NOW, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "pairwise-subject-1",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "jti-0001",
        "eligibility": {
            "policy": "us-nationals-only",
            "policy_version": 3,
            "policy_digest": "a" * 64,
            "assurance": "IAL2",
        },
    }
    claims.update(overrides)
    return claims


class Minter:
    """Builds tokens from arbitrary header/payload (dicts or raw bytes) and signatures."""

    def __init__(self, es: SigningKey, ed: SigningKey) -> None:
        self.es, self.ed = es, ed

    def header(self, key: SigningKey, **overrides: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": key.alg, "typ": "elig+jwt", "kid": key.kid}
        header.update(overrides)
        return {k: v for k, v in header.items() if v is not _DROP}

    def __call__(
        self,
        claims: dict[str, Any] | bytes | None = None,
        *,
        key: SigningKey | None = None,
        header: dict[str, Any] | bytes | None = None,
        signature: bytes | Callable[[bytes], bytes] | None = None,
        **header_overrides: Any,
    ) -> str:
        key = key or self.es
        if header is None:
            header = self.header(key, **header_overrides)
        if claims is None:
            claims = good_claims()
        raw_header = header if isinstance(header, bytes) else json.dumps(header).encode()
        raw_payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
        signing_input = f"{b64url(raw_header)}.{b64url(raw_payload)}"
        if signature is None:
            sig = key.sign(signing_input.encode())
        elif callable(signature):
            sig = signature(signing_input.encode())
        else:
            sig = signature
        return f"{signing_input}.{b64url(sig)}"


_DROP = object()


DROP = _DROP


class Clock:
    """An injectable clock for ``Verifier(now=...)``."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class JWKSServer:
    """A real HTTP server on 127.0.0.1 serving a mutable JWKS and counting requests."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {"keys": []}
        self.cache_control: str | None = "max-age=300"
        self.mode = "ok"  # ok | error (503) | 500 | garbage | truncated | notjwks
        self.closed = False
        self.hits = 0
        self.etags = False
        self.not_modified = 0
        self.gate = threading.Event()
        self.gate.set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                server.gate.wait(5)
                if server.mode in ("error", "500"):
                    self.send_response(503 if server.mode == "error" else 500)
                    self.end_headers()
                    return
                body = {
                    "garbage": b"<html>oops",
                    "truncated": json.dumps(server.doc).encode()[:-7],
                    "notjwks": b'{"keys": {"not": "a list"}}',
                }.get(server.mode) or json.dumps(server.doc).encode()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if server.etags and self.headers.get("If-None-Match") == etag:
                    server.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    if server.cache_control is not None:
                        self.send_header("Cache-Control", server.cache_control)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if server.etags:
                    self.send_header("ETag", etag)
                if server.cache_control is not None:
                    self.send_header("Cache-Control", server.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        """Stop serving: later fetches get a refused connection. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def public_jwk(key: SigningKey) -> dict[str, Any]:
    """The public members of a key's JWK (what a DPoP ``jwk`` header carries)."""
    members = ("kty", "crv", "x", "y") if key.alg == "ES256" else ("kty", "crv", "x")
    return {m: key.jwk[m] for m in members}


def ath(token: str) -> str:
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


_proof_counter = iter(range(1, 1 << 62))


def make_proof(
    holder: SigningKey,
    token: str,
    *,
    method: str = "POST",
    url: str = "https://gateway.example/v1/models/fable-5:generate",
    iat: int = NOW,
    signer: SigningKey | None = None,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | bytes | None = None,
    **claim_overrides: Any,
) -> str:
    """A DPoP proof (RFC 9449 4.2) for ``token`` signed by ``signer`` (default: holder)."""
    signer = signer or holder
    head: dict[str, Any] = {"typ": "dpop+jwt", "alg": signer.alg, "jwk": public_jwk(holder)}
    head.update(header or {})
    head = {k: v for k, v in head.items() if v is not _DROP}
    if claims is None:
        body: dict[str, Any] = {
            "jti": f"proof-{next(_proof_counter)}",
            "htm": method,
            "htu": url,
            "iat": iat,
            "ath": ath(token),
        }
        body.update(claim_overrides)
        claims = {k: v for k, v in body.items() if v is not _DROP}
    raw_payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(raw_payload)}"
    return f"{signing_input}.{b64url(signer.sign(signing_input.encode()))}"
