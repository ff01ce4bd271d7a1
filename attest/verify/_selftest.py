"""Run the built-in conformance vectors (``attest verify --selftest``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import InvalidToken
from ._sources import StaticJWKS
from ._status import LocalStatusList
from ._verifier import Verifier

__all__ = ["VECTORS_PATH", "VectorResult", "load_vectors", "run_vectors"]

#: The vectors shipped with attest.verify (made by tests/vectors/generate_conformance.py).
VECTORS_PATH = Path(__file__).with_name("vectors") / "conformance.json"


@dataclass(frozen=True, slots=True)
class VectorResult:
    """One vector's outcome: ``got`` is ``valid``, a reason code, or ``error: <type>``."""

    name: str
    rule: str
    expect: str
    got: str

    @property
    def passed(self) -> bool:
        """True when the verifier did what the vector expects."""
        return self.got == self.expect


def load_vectors(path: Path | None = None) -> dict[str, Any]:
    """The vectors document (``OSError``/``ValueError`` when missing or unreadable)."""
    document: dict[str, Any] = json.loads((path or VECTORS_PATH).read_text(encoding="utf-8"))
    return document


def run_vectors(document: dict[str, Any]) -> list[VectorResult]:
    """Verify every vector with a fresh verifier at the document's fixed time."""
    now = float(document["now"])
    jwks = StaticJWKS(document["jwks"])
    results = []
    for vector in document["vectors"]:
        options = vector.get("options", {})
        status = None
        if "status_lists" in options:
            status = LocalStatusList(
                {uri: (v["bits"], v["lst"]) for uri, v in options["status_lists"].items()}
            )
        verifier = Verifier(
            issuer=document["issuer"],
            audience=document["audience"],
            keys=jwks,
            leeway=document["leeway"],
            cache_size=0,
            now=lambda: now,
            policies=options.get("policies"),
            min_assurance=options.get("min_assurance"),
            status=status,
        )
        got, claims = "valid", None
        for _ in range(vector.get("repeat", 1)):
            got, claims = _outcome(verifier, vector)
        if got == "valid" and claims != vector.get("claims", claims):
            got = "error: claims differ"
        results.append(VectorResult(vector["name"], vector.get("rule", ""), vector["expect"], got))
    return results


def _outcome(verifier: Verifier, vector: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    try:
        claims = verifier.verify(
            vector["token"],
            dpop=vector.get("dpop"),
            method=vector.get("method"),
            url=vector.get("url"),
        )
    except InvalidToken as exc:
        return exc.code, None
    # anything but InvalidToken escaping is exactly what a vector must report
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}", None
    return "valid", claims
