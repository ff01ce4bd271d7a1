"""Builders for document_mrz evidence: TD3 MRZ text with correct check digits.

Written independently of attest.evidence.mrz, so the service's checks are tested against a
second implementation of ICAO 9303 rather than against themselves.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = ["digit", "mrz_evidence", "td3", "unique_number"]


def digit(data: str) -> str:
    """ICAO 9303 Part 3, 4.9 check digit, written independently of attest.evidence.mrz."""
    table = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")} | {"<": 0}
    return str(sum(table[c] * (7, 3, 1)[i % 3] for i, c in enumerate(data)) % 10)


def td3(
    *,
    number: str = "C01X00T47",
    nationality: str = "D<<",
    state: str = "D<<",
    birth: str = "640812",
    expiry: date | None = None,
    name: str = "MUSTERMANN<<ERIKA",
) -> str:
    """A TD3 MRZ with correct check digits (defaults: a German passport valid 5 years)."""
    expires = expiry or (datetime.now(UTC) + timedelta(days=5 * 365)).date()
    exp = expires.strftime("%y%m%d")
    optional = "<" * 14
    line2 = (
        number.ljust(9, "<") + digit(number.ljust(9, "<")) + nationality + birth + digit(birth)
        + "F" + exp + digit(exp) + optional + "<"
    )  # fmt: skip
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    return ("P<" + state + name).ljust(44, "<") + "\n" + line2 + digit(composite)


def mrz_evidence(text: str, assurance: str = "IAL1") -> dict[str, Any]:
    return {"type": "document_mrz", "mrz": text, "assurance": assurance}


def unique_number() -> str:
    return "C" + uuid.uuid4().hex[:8].upper()
