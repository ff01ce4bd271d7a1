"""What the log's layers pass each other: tree state, checkpoints, the log key, receipts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["LogKey", "Receipt", "Sequenced", "SignedCheckpoint"]


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    size: int
    root: bytes
    note: str
    signed_at: datetime


@dataclass(frozen=True, slots=True)
class LogKey:
    """The log's Ed25519 key as recorded: its keystore kid and ref, and its C2SP vkey."""

    origin: str
    key_id: str
    public_key: bytes
    kid: str
    keystore_ref: str
    created_at: datetime
    vkey: str


@dataclass(frozen=True, slots=True)
class Sequenced:
    """One sequencer batch: how many leaves it appended, and the tree size after it."""

    appended: int
    size: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """Everything an auditor needs to check one attestation offline (DESIGN.md)."""

    body: dict[str, Any]
