"""A holder: get a token bound to a fresh key from attest, then call the gateway with DPoP.

    .venv/bin/python examples/model_gateway/client.py --api-key "$OPERATOR" --subject "$SID"

Prints the gateway's answer to a proof-carrying request, then what happens when the same
proof is replayed and when the token is sent without a proof. Standard library and
``cryptography`` only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Holder:
    """A P-256 holder key: its public JWK and DPoP proofs (RFC 9449 4.2) signed with it."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        numbers = self.private.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }

    def proof(self, token: str, method: str, url: str, now: float | None = None) -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims = {
            "jti": str(uuid.uuid4()),
            "htm": method,
            "htu": url.split("?", 1)[0].split("#", 1)[0],
            "iat": int(time.time() if now is None else now),
            "ath": b64url(hashlib.sha256(token.encode("ascii")).digest()),
        }
        signing_input = (
            f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        )
        der = self.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def call(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, str]:
    """POST JSON; (status, JSON body, WWW-Authenticate)."""
    request = urllib.request.Request(  # noqa: S310 - URLs come from the command line
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), exc.headers.get("WWW-Authenticate", "")


def main() -> None:
    parser = argparse.ArgumentParser(description="Call the model gateway with a bound token.")
    parser.add_argument("--attest", default="http://127.0.0.1:8080", help="The attest URL.")
    parser.add_argument("--api-key", required=True, help="An API key with tokens:issue.")
    parser.add_argument("--subject", required=True, help="The subject id to get a token for.")
    parser.add_argument("--audience", default="model:fable-5", help="The token audience.")
    parser.add_argument("--gateway", default="http://127.0.0.1:8090", help="The gateway URL.")
    args = parser.parse_args()

    holder = Holder()
    status, issued, _ = call(
        f"{args.attest}/v1/tokens",
        {"subject_id": args.subject, "audience": args.audience, "holder_jwk": holder.jwk},
        {"Authorization": f"Bearer {args.api_key}"},
    )
    if status != 201:
        raise SystemExit(f"token refused ({status}): {issued}")
    token = issued["token"]
    url = f"{args.gateway}/v1/models/fable-5/generate"
    proof = holder.proof(token, "POST", url)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    print("with proof:   ", *call(url, {"prompt": "hello"}, headers)[:2])
    print("replayed:     ", *call(url, {"prompt": "hello"}, headers)[::2])
    print(
        "no proof:     ", *call(url, {"prompt": "hello"}, {"Authorization": f"Bearer {token}"})[::2]
    )


if __name__ == "__main__":
    main()
