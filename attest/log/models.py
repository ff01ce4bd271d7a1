"""What the log's layers pass each other: tree state, checkpoints, the log key, receipts."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["CheckpointRecord", "LogKey", "Receipt", "Sequenced", "SignedCheckpoint"]


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


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A stored checkpoint as an auditor reviews it: its signature checked against the log
    key, and whether the log proves it consistent with the next older checkpoint."""

    size: int
    root: bytes
    signed_at: datetime
    note: str
    #: The note's Ed25519 signature verifies with the log key and states this size and root.
    signature_verified: bool
    #: An RFC 9162 consistency proof from the next older checkpoint verifies; None when
    #: there is no older checkpoint.
    consistent_with_older: bool | None
    #: The tree size of the older checkpoint compared with, if any.
    older_size: int | None

    @property
    def root_base64(self) -> str:
        """The root as the checkpoint text spells it (C2SP tlog-checkpoint)."""
        return base64.b64encode(self.root).decode()
