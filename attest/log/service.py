"""Log use cases: the sequencer (one leader, advisory lock), checkpoints, tiles, proofs,
receipts. The Merkle arithmetic is pure (:mod:`attest.log.merkle`); SQL is in the
repository; this module decides what to read, in which transaction, and what to sign.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from attest.clients.models import Client
from attest.clock import Clock
from attest.db import Conn
from attest.errors import Forbidden, InvalidInput, NotFound, ServiceUnavailable
from attest.keys.keystore import Keystore, Signer
from attest.keys.service import KeyService
from attest.log import merkle, repository
from attest.log.leaves import leaf_bytes
from attest.log.models import CheckpointRecord, LogKey, Receipt, Sequenced, SignedCheckpoint
from attest.settings import Settings
from attest.tokens.service import TokenService
from attest.tokens.views import attestation_record
from attest.verify._tlog import (
    LogError,
    VerifierKey,
    format_checkpoint,
    format_tlog_proof,
    key_id,
    leaf_hash,
    open_checkpoint,
    parse_vkey,
    signature_line,
    verify_consistency,
)

__all__ = ["LogService"]

log = logging.getLogger(__name__)

#: Most events one sequencer transaction appends.
BATCH_SIZE = 2000
#: How often an instance polls for new events, or for the leader's lock (seconds).
SEQUENCER_TICK = 0.1
#: Entry bundles hold leaf bytes behind a uint16 length (C2SP tlog-tiles).
MAX_LEAF = 0xFFFF
EMPTY_ROOT = hashlib.sha256(b"").digest()


def _raw_public(signer: Signer) -> bytes:
    """The 32-byte Ed25519 public key of a signer (RFC 8037: the JWK's ``x``)."""
    x = signer.public_jwk()["x"]
    return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))


@dataclass(frozen=True, slots=True)
class TileAnswer:
    body: bytes
    full: bool


class LogService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        *,
        keystore: Keystore,
        connect: Callable[[], Awaitable[asyncpg.Connection[asyncpg.Record]]],
        key_service: KeyService,
        token_service: TokenService,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._keystore = keystore
        self._connect = connect
        self._keys = key_service
        self._tokens = token_service
        self.origin = settings.log_origin
        self._key: LogKey | None = None
        self._signer: Signer | None = None
        self._last_signed = 0.0

    # -- the log key ----------------------------------------------------------------------

    async def open(self, now: datetime) -> LogKey:
        """Load the log key of this origin from the keystore, creating it on first start
        (under a lock, so instances starting together agree on one key)."""
        async with self._pool.acquire() as conn, conn.transaction():
            key = await repository.get_log_key(conn, self.origin, lock=True)
            if key is None:
                signer = self._keystore.generate("EdDSA")
                public = _raw_public(signer)
                await repository.insert_log_key(
                    conn,
                    {
                        "origin": self.origin,
                        "key_id": key_id(self.origin, public).hex(),
                        "public_key": public,
                        "kid": signer.kid,
                        "keystore_ref": self._keystore.ref(signer),
                    },
                    now,
                )
                key = await repository.get_log_key(conn, self.origin)
                assert key is not None  # noqa: S101 - inserted just now
                log.info("created the log key %s for origin %s", key.key_id, self.origin)
            else:
                signer = self._keystore.load(key.kid, "EdDSA", key.keystore_ref)
        if _raw_public(signer) != key.public_key:
            raise ServiceUnavailable("the keystore's log key does not match the database")
        self._key, self._signer = key, signer
        return key

    @property
    def key(self) -> LogKey:
        if self._key is None:
            raise ServiceUnavailable("the log key is not loaded")
        return self._key

    def published(self) -> dict[str, Any]:
        """The log part of discovery: origin, vkey and the endpoints."""
        issuer = self._settings.issuer
        return {
            "origin": self.origin,
            "vkey": self.key.vkey,
            "checkpoint_uri": f"{issuer}/v1/log/checkpoint",
            "tiles_uri": f"{issuer}/v1/log/tile/",
        }

    async def key_history(self) -> list[dict[str, Any]]:
        """Every log key ever used (one per origin), so old checkpoints stay verifiable."""
        async with self._pool.acquire() as conn:
            keys = await repository.list_log_keys(conn)
        return [
            {
                "origin": key.origin,
                "vkey": key.vkey,
                "key_id": key.key_id,
                "alg": "Ed25519",
                "created_at": key.created_at.isoformat(),
                "current": key.origin == self.origin,
            }
            for key in keys
        ]

    # -- the sequencer --------------------------------------------------------------------

    async def run(self, clock: Clock) -> None:
        """Background task: try to lead (advisory lock on a dedicated connection); the
        leader sequences and signs on that same connection, so if it dies, its open batch
        rolls back and its lock is freed together, and another instance takes over."""
        while True:
            conn: asyncpg.Connection[asyncpg.Record] | None = None
            try:
                conn = await self._connect()
                while True:
                    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", repository.LOG_LOCK):
                        log.info("this instance now sequences the log")
                        while True:
                            await self.step(conn, clock())
                            await asyncio.sleep(SEQUENCER_TICK)
                    await asyncio.sleep(SEQUENCER_TICK)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A lost connection or database restart: retry; the lock went with it.
                log.exception("log sequencer failed; retrying")
                await asyncio.sleep(SEQUENCER_TICK * 10)
            finally:
                if conn is not None:
                    conn.terminate()

    async def step(self, conn: Conn, now: datetime) -> Sequenced:
        """Sequence every committed event waiting, in batches, then sign a checkpoint when
        the tree grew and the interval has passed. Called by the leader only."""
        done = Sequenced(0, 0)
        while True:
            batch = await self.sequence_batch(conn)
            done = Sequenced(done.appended + batch.appended, batch.size)
            if batch.appended < BATCH_SIZE:
                break
        loop = asyncio.get_running_loop().time()
        due = loop - self._last_signed >= self._settings.log_checkpoint_interval
        if due and await self.sign_checkpoint(conn, now):
            self._last_signed = loop
        return done

    async def sequence_batch(self, conn: Conn, limit: int = BATCH_SIZE) -> Sequenced:
        """One transaction: lock the size, append the oldest unsequenced events as leaves
        size, size+1, ..., write the tiles that changed, set the new size."""
        async with conn.transaction():
            size = await repository.lock_size(conn)
            events = await repository.unsequenced(conn, limit)
            if not events:
                return Sequenced(0, size)
            edges = await repository.read_tiles(
                conn, {(lv, ix) for lv, ix, _ in merkle.edge_tiles(size)}
            )
            changed = merkle.append(size, edges, [leaf_bytes(e) for e in events])
            await repository.write_tiles(conn, changed)
            updated = await repository.assign_indexes(conn, [e.id for e in events], size)
            if updated != len(events):
                raise RuntimeError("an event was sequenced twice: refusing the batch")
            await repository.set_size(conn, size + len(events))
        return Sequenced(len(events), size + len(events))

    async def sign_checkpoint(self, conn: Conn, now: datetime) -> SignedCheckpoint | None:
        """Sign the current tree if it is larger than the latest checkpoint."""
        key, signer = self.key, self._signer
        assert signer is not None  # noqa: S101 - loaded with the key
        async with conn.transaction():
            size = await repository.lock_size(conn)
            latest = await repository.latest_checkpoint(conn, self.key.key_id)
            if latest is not None and latest.size >= size:
                return None
            # RFC 9162 section 2.1.1: the empty tree's hash is SHA-256 of the empty string.
            root = (await self._hashes(conn, merkle.root_plan(size)))[0] if size else EMPTY_ROOT
            text = format_checkpoint(self.origin, size, root)
            note = (
                text
                + "\n"
                + signature_line(self.origin, key.public_key, signer.sign(text.encode()))
            )
            checkpoint = SignedCheckpoint(size, root, note, now)
            await repository.insert_checkpoint(conn, checkpoint, key.key_id)
        return checkpoint

    async def _hashes(self, conn: Conn, plan: merkle.Plan) -> list[bytes]:
        tiles = await repository.read_tiles(conn, merkle.tiles_for(plan))
        try:
            return merkle.resolve(plan, tiles)
        except KeyError:
            raise ServiceUnavailable("the log's tiles are incomplete") from None

    # -- reads ----------------------------------------------------------------------------

    async def checkpoint(self) -> SignedCheckpoint:
        async with self._pool.acquire() as conn:
            latest = await repository.latest_checkpoint(conn, self.key.key_id)
        if latest is None:
            raise NotFound("The log has no checkpoint yet.")
        return latest

    async def _published_size(self, conn: Conn) -> int:
        latest = await repository.latest_checkpoint(conn, self.key.key_id)
        return 0 if latest is None else latest.size

    async def tile(self, level: int, index: int, width: int | None) -> TileAnswer:
        """A hash tile as of the latest checkpoint (C2SP tlog-tiles); 404 beyond it."""
        if level > 8:
            raise NotFound("No such tile level.")
        async with self._pool.acquire() as conn:
            size = await self._published_size(conn)
            available = size // merkle.TILE_WIDTH**level - index * merkle.TILE_WIDTH
            wanted = width or merkle.TILE_WIDTH
            if available < wanted:
                raise NotFound("No such tile in the published tree.")
            tiles = await repository.read_tiles(conn, {(level, index)})
        body = tiles.get((level, index), b"")[: wanted * 32]
        if len(body) != wanted * 32:
            raise ServiceUnavailable("the log's tiles are incomplete")
        return TileAnswer(body, width is None)

    async def entries(self, client: Client, index: int, width: int | None) -> TileAnswer:
        """An entry bundle (uint16-length-prefixed leaf bytes), for admin auditors only:
        leaves of every tenant are in it."""
        if not client.is_admin:
            raise Forbidden("Entry bundles hold every tenant's events: an admin client only.")
        wanted = width or merkle.TILE_WIDTH
        start = index * merkle.TILE_WIDTH
        async with self._pool.acquire() as conn:
            size = await self._published_size(conn)
            if size - start < wanted:
                raise NotFound("No such entry bundle in the published tree.")
            events = await repository.entries(conn, start, start + wanted)
        if len(events) != wanted:
            raise ServiceUnavailable("the log's entries are incomplete")
        out = bytearray()
        for event in events:
            leaf = leaf_bytes(event)
            if len(leaf) > MAX_LEAF:
                raise ServiceUnavailable("A leaf is larger than an entry bundle can hold.")
            out += len(leaf).to_bytes(2, "big") + leaf
        return TileAnswer(bytes(out), width is None)

    async def inclusion(self, index: int, tree_size: int) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            size = await self._published_size(conn)
            if not 0 < tree_size <= size:
                raise NotFound(f"tree_size must be between 1 and the checkpoint's {size}.")
            if not 0 <= index < tree_size:
                raise InvalidInput("index must be below tree_size.")
            proof = await self._hashes(conn, merkle.inclusion_plan(index, tree_size))
            (leaf,) = await self._hashes(conn, [[(0, index)]])
        return {
            "index": index,
            "tree_size": tree_size,
            "leaf_hash": base64.b64encode(leaf).decode(),
            "proof": [base64.b64encode(h).decode() for h in proof],
        }

    async def consistency(self, first: int, second: int) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            size = await self._published_size(conn)
            if not 0 <= second <= size:
                raise NotFound(f"second must be at most the checkpoint's tree size {size}.")
            if not 0 <= first <= second:
                raise InvalidInput("first must be between 0 and second.")
            proof = await self._hashes(conn, merkle.consistency_plan(first, second))
        return {
            "first": first,
            "second": second,
            "proof": [base64.b64encode(h).decode() for h in proof],
        }

    async def receipt(self, client: Client, jti: str) -> Receipt:
        """The offline receipt of one attestation: its record, the policy document, the
        signing key with its window, and the log leaf of its ``token.issued`` event with a
        tlog-proof against the latest checkpoint (404 until that event is checkpointed)."""
        found = await self._tokens.attestation(client, jti)
        async with self._pool.acquire() as conn:
            event = await repository.event_for_jti(conn, jti)
            latest = await repository.latest_checkpoint(conn, self.key.key_id)
            if event is None or event[1] is None or latest is None or event[1] >= latest.size:
                raise NotFound(
                    "The attestation's log entry is not in a checkpoint yet; retry shortly."
                )
            index = event[1]
            proof = await self._hashes(conn, merkle.inclusion_plan(index, latest.size))
            (stored,) = await self._hashes(conn, [[(0, index)]])
        leaf = leaf_bytes(event[0])
        if leaf_hash(leaf) != stored:
            # The audit row no longer hashes to the leaf the log holds: it was rewritten.
            log.error("audit event %s does not match its log leaf %d", event[0].event_id, index)
        key = next((k for k in await self._keys.history() if k.kid == found.record.kid), None)
        if key is None:
            raise ServiceUnavailable("The attestation's signing key is not in the key history.")
        not_after = key.retiring_at or key.compromised_at
        return Receipt(
            {
                "format": "attest-receipt/v1",
                "attestation": attestation_record(found),
                "policy_document": found.policy_document,
                "signing_key": {
                    "jwk": {**found.public_jwk, "kid": key.kid, "alg": key.alg},
                    "not_before": (key.activated_at or key.created_at).isoformat(),
                    "not_after": not_after.isoformat() if not_after else None,
                },
                "log": {
                    "origin": self.origin,
                    "vkey": self.key.vkey,
                    "index": index,
                    "leaf": base64.b64encode(leaf).decode(),
                    "tlog_proof": format_tlog_proof(index, proof, latest.note),
                },
            }
        )

    # -- auditor reads (the console) --------------------------------------------------

    async def checkpoint_history(
        self, *, limit: int = 50, below: int | None = None
    ) -> list[CheckpointRecord]:
        """The latest ``limit`` checkpoints of this log (below tree size ``below``), newest
        first, each checked as an auditor would: its signature against the log key, and an
        RFC 9162 consistency proof from the next older checkpoint, computed from the tiles
        and verified against both signed roots."""
        limit = max(1, min(limit, 200))
        key = parse_vkey(self.key.vkey)
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            # One more than shown: the oldest shown is compared with the one before it.
            page = await repository.list_checkpoints(
                conn, self.key.key_id, 2**62 if below is None else below, limit + 1
            )
            records = []
            for newer, older in zip(page[:limit], [*page[1:], None], strict=False):
                consistent = None
                if older is not None:
                    plan = merkle.consistency_plan(older.size, newer.size)
                    consistent = _consistent(older, newer, await self._hashes(conn, plan))
                records.append(
                    CheckpointRecord(
                        size=newer.size,
                        root=newer.root,
                        signed_at=newer.signed_at,
                        note=newer.note,
                        signature_verified=_signed(newer, key),
                        consistent_with_older=consistent,
                        older_size=None if older is None else older.size,
                    )
                )
        return records


def _signed(checkpoint: SignedCheckpoint, key: VerifierKey) -> bool:
    """The note verifies with the log key and says what the row says."""
    try:
        opened = open_checkpoint(checkpoint.note, key)
    except LogError:
        return False
    return opened.size == checkpoint.size and opened.root == checkpoint.root


def _consistent(older: SignedCheckpoint, newer: SignedCheckpoint, proof: list[bytes]) -> bool:
    try:
        verify_consistency(older.size, newer.size, older.root, newer.root, proof)
    except LogError:
        return False
    return True
