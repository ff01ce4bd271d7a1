"""Token status lists: an entry for every token, the revocations that reach issued tokens,
and the Status List Token verifiers fetch (draft-ietf-oauth-status-list).

The module functions take the caller's connection: an entry is allocated in the
transaction that records its token, and a revocation marks entries in the transaction of
the change (and audit event) that caused it. :class:`StatusListService` serves the signed
lists from bytes kept ready, rebuilt only when an entry of that list changed.

A ready list is served without touching the database while the instance's change feed
(:mod:`attest.db.changes`) is live and neither a status change nor a key change was notified
since it was last checked, and for at most ``recheck`` seconds (default 1 s) since that
check: a revocation reaches the served list when its NOTIFY arrives (at its commit), and at
the latest ``recheck`` seconds later if a notification is ever lost.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

from attest.db import Conn
from attest.db.changes import KEYS_CHANNEL, STATUS_CHANNEL, ChangeFeed, SingleFlight
from attest.errors import NotFound
from attest.status import repository
from attest.status.models import ListToken, Reevaluation, Status, StatusList, StatusRef
from attest.status.permutation import permute

__all__ = [
    "LIST_TYPE",
    "ActiveSigner",
    "SlotReserve",
    "StatusListService",
    "allocate",
    "allocate_many",
    "attach",
    "list_uri",
    "mark",
    "schedule_reevaluation",
]

#: The ``typ`` of a Status List Token (draft-ietf-oauth-status-list 5.1).
LIST_TYPE = "statuslist+jwt"
BITS = 2


class _Signer(Protocol):
    @property
    def kid(self) -> str: ...

    def sign_jwt(self, claims: dict[str, object], typ: str) -> str: ...


class ActiveSigner(Protocol):
    """What signs the lists: the instance's keyring (attest.keys.keyring.Keyring)."""

    async def active(self, conn: Conn) -> _Signer: ...


def list_uri(issuer: str, list_id: int) -> str:
    return f"{issuer}/v1/status-lists/{list_id}"


async def allocate(conn: Conn, *, list_size: int, now: datetime) -> StatusRef:
    """A fresh entry for a token about to be recorded on ``conn`` (:func:`allocate_many`
    of one). Record it with :func:`attach` once the token is."""
    return (await allocate_many(conn, 1, list_size=list_size, now=now))[0]


async def allocate_many(
    conn: Conn, count: int, *, list_size: int, now: datetime
) -> list[StatusRef]:
    """``count`` fresh entries for tokens about to be recorded on ``conn``, in one round
    trip: the next slots of the internal counter, each through its list's keyed
    permutation (a full list is followed by a new one of ``list_size`` entries)."""
    return [
        await _place(conn, slot, listed, list_size, now)
        for slot, listed in await repository.next_slots(conn, count)
    ]


async def _place(
    conn: Conn, slot: int, listed: StatusList | None, list_size: int, now: datetime
) -> StatusRef:
    """The entry of ``slot``: its index in the list that holds it (created when none does)."""
    found = listed
    while found is None or not found.holds(slot):
        last = await repository.last_list(conn)
        next_id = 1 if last is None else last.id + 1
        first = 0 if last is None else last.first_slot + last.size
        # Another instance may create the same list at the same time: one insert wins.
        await repository.insert_list(conn, next_id, first, list_size, secrets.token_bytes(32), now)
        found = await repository.list_for_slot(conn, slot)
    return StatusRef(found.id, permute(found.perm_key, found.size, slot - found.first_slot))


class SlotReserve:
    """Slots of the counter taken ahead, ``block`` at a time, for one process's issuance:
    while the reserve lasts, a batch's entries cost no round trip. A slot is handed out
    once; those still reserved when the process stops are never used (a gap in the lists,
    as a rolled-back issuance leaves one: nothing refers to an entry without a token)."""

    def __init__(self, block: int = 64) -> None:
        self._block = block
        self._slots: deque[tuple[int, StatusList | None]] = deque()

    async def allocate(
        self, conn: Conn, count: int, *, list_size: int, now: datetime
    ) -> list[StatusRef]:
        """``count`` fresh entries (as :func:`allocate_many`) for tokens recorded on ``conn``."""
        while len(self._slots) < count:
            # Another batch of this process may take from the reserve while this one waits.
            self._slots.extend(await repository.next_slots(conn, max(self._block, count)))
        taken = [self._slots.popleft() for _ in range(count)]
        return [await _place(conn, slot, listed, list_size, now) for slot, listed in taken]


async def attach(conn: Conn, ref: StatusRef, jti: str) -> None:
    """Record the entry ``ref`` (VALID) as the token ``jti``'s."""
    await repository.insert_entry(conn, ref.list_id, ref.idx, jti)


async def mark(
    conn: Conn,
    by: str,
    value: str | uuid.UUID | list[str],
    now: datetime,
    status: Status = Status.INVALID,
) -> int:
    """Set the entries of the outstanding tokens named ``by`` ("jti", "subject",
    "evidence", "kid", "audience", "jtis") to ``status``; the number changed. INVALID is
    final: a SUSPENDED entry can become VALID again, an INVALID one never."""
    return await repository.set_status(conn, by, value, int(status), now)


async def schedule_reevaluation(
    conn: Conn,
    audiences: list[str],
    cause: str,
    now: datetime,
    not_before: datetime | None = None,
) -> None:
    """Ask for the outstanding tokens of ``audiences`` to be re-evaluated, from
    ``not_before`` on (a scheduled policy version: its switch), in the caller's transaction:
    the job exists exactly when the change that needs it commits."""
    for audience in audiences:
        await repository.add_reevaluation(conn, audience, cause, now, not_before)


async def claim_reevaluation(conn: Conn, now: datetime) -> Reevaluation | None:
    return await repository.claim_reevaluation(conn, now)


async def outstanding_of_audience(
    conn: Conn, audience: str, after_jti: str, now: datetime, limit: int
) -> list[tuple[str, uuid.UUID]]:
    return await repository.outstanding_of_audience(conn, audience, after_jti, now, limit)


async def finish_batch(
    conn: Conn, job: int, after_jti: str, checked: int, revoked: int, done: bool, now: datetime
) -> None:
    await repository.finish_batch(conn, job, after_jti, checked, revoked, done, now)


def encode_list(size: int, entries: list[tuple[int, int]]) -> str:
    """The ``lst`` member: base64url of the zlib-compressed array of 2-bit entries, entry
    ``idx`` at bits ``2*(idx % 4)`` of byte ``idx // 4`` (draft 4.1, least significant
    bits first)."""
    array = bytearray(size * BITS // 8)
    for idx, status in entries:
        array[idx // 4] |= status << (2 * (idx % 4))
    compressed = zlib.compress(bytes(array), 9)
    return _b64url(compressed)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class _Ready:
    version: int
    kid: str
    signed_at: int
    token: ListToken
    #: When (monotonic) and at which change-feed epochs it was last checked current.
    checked: float
    status_epoch: int
    keys_epoch: int


class StatusListService:
    """Serves Status List Tokens, signed by the active token key."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        issuer: str,
        ttl: int,
        signer: ActiveSigner,
        feed: ChangeFeed | None = None,
        recheck: float = 1.0,
    ) -> None:
        self._pool = pool
        self._issuer = issuer
        self._ttl = ttl
        self._signer = signer
        self._feed = feed
        self._recheck = recheck
        self._ready: dict[int, _Ready] = {}
        self._flight = SingleFlight()

    def ready_token(self, list_id: int, now: datetime) -> ListToken | None:
        """The current list ``list_id`` if it can be served as kept, without any I/O."""
        ready = self._ready.get(list_id)
        feed = self._feed
        if (
            ready is None
            or feed is None
            or not feed.trusts(STATUS_CHANNEL, ready.status_epoch)
            or not feed.trusts(KEYS_CHANNEL, ready.keys_epoch)
            or time.monotonic() >= ready.checked + self._recheck
            or now.timestamp() >= ready.signed_at + self._ttl / 2
        ):
            return None
        return ready.token

    async def list_token(
        self, list_id: int, now: datetime, at: datetime | None = None
    ) -> ListToken:
        """The list as it is (or, with ``at``, as it was then), signed.

        The current list is kept ready: it is rebuilt and re-signed only when one of its
        entries changed, the signing key changed, or half its ttl has passed (so a served
        token always has more than a ttl before it expires); see the module for when the
        database is asked.
        """
        if at is not None:
            return await self._check(list_id, now, at)
        if (token := self.ready_token(list_id, now)) is not None:
            return token
        # Requests that find the list due together share one check (attest.db.changes).
        epochs = self._feed.epochs() if self._feed is not None else None
        return await self._flight.run(list_id, epochs, lambda: self._check(list_id, now, None))

    async def _check(self, list_id: int, now: datetime, at: datetime | None) -> ListToken:
        issued = int(now.timestamp())
        feed = self._feed
        # The epochs before the reads: a change notified during them leaves this untrusted.
        status_epoch = feed.epoch(STATUS_CHANNEL) if feed is not None else 0
        keys_epoch = feed.epoch(KEYS_CHANNEL) if feed is not None else 0
        checked = time.monotonic()
        async with self._pool.acquire() as conn:
            found = await repository.get_list(conn, list_id)
            if found is None:
                raise NotFound(f"There is no status list {list_id}.")
            signer = await self._signer.active(conn)
            if at is not None:
                entries = await repository.entries_at(conn, list_id, min(at, now))
                return self._sign(signer, list_id, found.size, entries, issued)
            version = await repository.changes_version(conn, list_id)
            ready = self._ready.get(list_id)
            if (
                ready is not None
                and ready.version == version
                and ready.kid == signer.kid
                and issued < ready.signed_at + self._ttl / 2
            ):
                self._ready[list_id] = dataclasses.replace(
                    ready, checked=checked, status_epoch=status_epoch, keys_epoch=keys_epoch
                )
                return ready.token
            entries = await repository.entries(conn, list_id)
        token = self._sign(signer, list_id, found.size, entries, issued)
        self._ready[list_id] = _Ready(
            version, signer.kid, issued, token, checked, status_epoch, keys_epoch
        )
        return token

    def _sign(
        self, signer: _Signer, list_id: int, size: int, entries: list[tuple[int, int]], iat: int
    ) -> ListToken:
        claims: dict[str, object] = {
            "sub": list_uri(self._issuer, list_id),
            "iat": iat,
            "exp": iat + 2 * self._ttl,
            "ttl": self._ttl,
            "status_list": {"bits": BITS, "lst": encode_list(size, entries)},
        }
        body = signer.sign_jwt(claims, LIST_TYPE).encode("ascii")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"Cache-Control": f"public, max-age={self._ttl}", "ETag": etag}
        return ListToken(body, etag, self._ttl, headers)
