"""Token signing throughput per keystore against a raw cryptography sign, in one process.

Run: python bench/bench_signing.py   (the PKCS#11 rows need Debian's softhsm2 installed)

Measures, best of several rounds, signing a realistic eligibility-token claim set:
  raw ES256 / raw Ed25519   cryptography's sign of the same signing input (no JOSE encoding)
  file ES256 / file EdDSA   attest's file keystore signer (key decrypted once, PyJWT encode)
  pkcs11 ES256 / EdDSA      attest's PKCS#11 signer on a fresh SoftHSM2 token (sign in the token)
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from attest.keys.keystore import FileKeystore, Signer
from attest.keys.pkcs11 import Pkcs11Keystore  # loads no module until a keystore is opened

SOFTHSM_LIB = Path("/usr/lib/softhsm/libsofthsm2.so")
ROUNDS = 5
N = 1000


def claims() -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": "https://attest.example",
        "sub": secrets.token_urlsafe(32),
        "aud": "model:fable-5",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "eligibility": {
            "policy": "us-nationals-only",
            "policy_version": 1,
            "policy_digest": secrets.token_hex(32),
            "assurance": "IAL2",
        },
    }


def best_rate(work: Callable[[], object], n: int = N) -> float:
    best = 0.0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(n):
            work()
        best = max(best, n / (time.perf_counter() - start))
    return best


def signer_case(signer: Signer) -> Callable[[], object]:
    payload = claims()
    return lambda: signer.sign_jwt(payload, "elig+jwt")


def softhsm_signers(root: Path) -> list[tuple[str, Signer]]:
    if not SOFTHSM_LIB.exists() or shutil.which("softhsm2-util") is None:
        print(f"(PKCS#11 rows skipped: {SOFTHSM_LIB} is absent; install Debian's softhsm2)")
        return []
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = secrets.token_hex(4)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--pin",
            pin,
            "--so-pin",
            secrets.token_hex(4),
        ],
        check=True,
        capture_output=True,
    )
    store = Pkcs11Keystore(str(SOFTHSM_LIB), "bench", pin)
    return [
        ("pkcs11 ES256 (SoftHSM2)", store.generate("ES256")),
        ("pkcs11 EdDSA (SoftHSM2)", store.generate("EdDSA")),
    ]


def main() -> None:
    data = b"x" * 420  # about the size of a token's signing input
    p256 = ec.generate_private_key(ec.SECP256R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory(prefix="attest-bench-") as tmp:
        files = FileKeystore(Path(tmp) / "keys", secrets.token_urlsafe(24))
        rows: list[tuple[str, float, str]] = []
        raw_es = best_rate(lambda: p256.sign(data, ec.ECDSA(hashes.SHA256())))
        raw_ed = best_rate(lambda: ed.sign(data))
        rows.append(("raw cryptography ES256 sign", raw_es, "ES256"))
        rows.append(("raw cryptography Ed25519 sign", raw_ed, "EdDSA"))
        rows.append(("file ES256", best_rate(signer_case(files.generate("ES256"))), "ES256"))
        rows.append(("file EdDSA", best_rate(signer_case(files.generate("EdDSA"))), "EdDSA"))
        for name, signer in softhsm_signers(Path(tmp)):
            rows.append((name, best_rate(signer_case(signer), n=N // 2), signer.alg))
    base = {"ES256": raw_es, "EdDSA": raw_ed}
    print(f"{'case':<34} {'tokens/s':>10} {'x raw sign':>11}")
    for name, rate, alg in rows:
        print(f"{name:<34} {rate:>10,.0f} {rate / base[alg]:>11.2f}")


if __name__ == "__main__":
    main()
