"""Key use cases: the published key set, key history, rotation, compromise, discovery.

The decisions are in :mod:`attest.keys.lifecycle` (a pure plan, then transactional steps
that record their own audit events); this module gives them a pool, the instance's
:class:`~attest.keys.keyring.Keyring` and the settings, and keeps the keyring following
what they change.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import asyncpg

from attest.db.changes import KEYS_CHANNEL, ChangeFeed, SingleFlight
from attest.keys import lifecycle, repository
from attest.keys.keyring import Keyring
from attest.keys.models import JwksDocument, Plan, Revocation, Rotation, SigningKey
from attest.settings import Settings
from attest.verify.contract import ALGORITHMS, HARD_MAX_TOKEN_LIFETIME, TOKEN_TYPE

__all__ = ["AudienceDirectory", "KeyService", "LogDirectory"]


# runtime_checkable: Litestar checks an injected dependency against its declared type.
@runtime_checkable
class AudienceDirectory(Protocol):
    """The registered audiences, as discovery lists them. Audiences belong to the policy
    domain, above keys, so discovery is handed one of these instead of importing it."""

    async def list_audiences(self) -> list[dict[str, Any]]:
        """Each audience as ``{audience, policy, token_lifetime, binding_required}``."""
        ...


@runtime_checkable
class LogDirectory(Protocol):
    """The transparency log's public key, as discovery and key history list it. The log
    domain sits above keys (its receipts compose attestations), so it is handed in."""

    def published(self) -> dict[str, Any]:
        """``{origin, vkey, ...}`` for ``/.well-known/attest-configuration``."""
        ...

    async def key_history(self) -> list[dict[str, Any]]:
        """Every log key, with its C2SP vkey, for ``GET /v1/keys/history``."""
        ...


def _jwks_document(keys: list[SigningKey], max_age: int) -> JwksDocument:
    body = json.dumps({"keys": [k.jwk() for k in keys]}, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": f"public, max-age={max_age}", "ETag": etag}
    return JwksDocument(body, etag, tuple((k.kid, k.state) for k in keys), headers)


class KeyService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        keyring: Keyring,
        settings: Settings,
        *,
        feed: ChangeFeed | None = None,
    ) -> None:
        self._pool = pool
        #: The instance's one cache of the active signer (tokens sign with ``keyring.active``).
        self.keyring = keyring
        self._settings = settings
        self._policy = lifecycle.KeyPolicy.from_settings(settings)
        self._jwks: JwksDocument | None = None
        self._feed = feed
        self._recheck = settings.published_recheck_ms / 1000
        # When (monotonic) and at which key-channel epoch ``_jwks`` was last checked current.
        self._jwks_checked = (-math.inf, -1)
        self._flight = SingleFlight()

    def ready_jwks(self) -> JwksDocument | None:
        """The JWKS as kept, if it is known to be current without asking the database:
        no key change notified since it was checked, at most ``published_recheck_ms`` ago."""
        document, (checked, epoch) = self._jwks, self._jwks_checked
        feed = self._feed
        if (
            document is None
            or feed is None
            or not feed.trusts(KEYS_CHANNEL, epoch)
            or time.monotonic() >= checked + self._recheck
        ):
            return None
        return document

    @property
    def jwks_max_age(self) -> int:
        """How long verifiers may cache the JWKS (seconds)."""
        return self._settings.jwks_max_age

    async def jwks(self) -> JwksDocument:
        """The JWKS (pending, active and retiring keys) as bytes with their ETag.

        Any instance may change the key set; every change notifies every instance
        (:mod:`attest.db.changes`), and without a notification the kept document is served
        for at most ``published_recheck_ms``. Otherwise a call reads the published
        (kid, state) list; the document is rebuilt only when that differs from the one it
        was made from (a kid names immutable key material, 0003_keys.sql).
        """
        ready = self.ready_jwks()
        if ready is not None:
            return ready
        # Requests that find it due together share one check (attest.db.changes).
        epochs = self._feed.epochs() if self._feed is not None else None
        return await self._flight.run(None, epochs, self._check_jwks)

    async def _check_jwks(self) -> JwksDocument:
        # The epoch before the read: a change notified during it leaves the result untrusted.
        epoch = self._feed.epoch(KEYS_CHANNEL) if self._feed is not None else -1
        checked = time.monotonic()
        async with self._pool.acquire() as conn:
            published = await repository.published_states(conn)
            kept = self._jwks
            if kept is not None and kept.published == published:
                self._jwks_checked = (checked, epoch)
                return kept
            keys = await repository.published_keys(conn)
        # Cached under the (kid, state)s it was made from, read with it: if the set changed
        # between the two reads, the next check sees a difference and rebuilds.
        document = _jwks_document(keys, self._settings.jwks_max_age)
        self._jwks, self._jwks_checked = document, (checked, epoch)
        return document

    async def keys(self) -> list[SigningKey]:
        """Every key with its state and lifecycle times, oldest first (admin)."""
        return await repository.list_keys(self._pool)

    async def history(self) -> list[SigningKey]:
        """Every key ever used, so old attestations stay verifiable after retirement."""
        return await repository.list_keys(self._pool)

    async def rotate(self, actor: uuid.UUID | None, now: datetime) -> Rotation:
        """Publish the next key as pending (or return the one already pending)."""
        async with self._pool.acquire() as conn:
            return await lifecycle.rotate(
                conn, self.keyring.keystore, self._policy, now, actor, "api"
            )

    async def revoke_compromised(
        self, kid: str, actor: uuid.UUID | None, now: datetime
    ) -> Revocation:
        """Mark ``kid`` compromised; this instance signs with the replacement at once."""
        async with self._pool.acquire() as conn:
            done = await lifecycle.revoke_compromised(
                conn, self.keyring.keystore, self._policy, now, kid, actor, "api"
            )
            await self.keyring.active(conn)
        return done

    async def tick(self, now: datetime) -> Plan:
        """The scheduled check: apply due transitions (if this instance holds the lock),
        then follow whichever key is active now, wherever it was activated."""
        async with self._pool.acquire() as conn:
            due = await lifecycle.tick(conn, self.keyring.keystore, self._policy, now)
            await self.keyring.active(conn)
        return due

    def discovery(self) -> dict[str, Any]:
        """The key part of ``/.well-known/attest-configuration`` (without audiences)."""
        issuer = self._settings.issuer
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "key_history_uri": f"{issuer}/v1/keys/history",
            "token_endpoint": f"{issuer}/v1/tokens",
            "token_type": TOKEN_TYPE,
            "signing_alg_values_supported": list(ALGORITHMS),
            "max_token_lifetime": HARD_MAX_TOKEN_LIFETIME,
            "jwks_max_age": self._settings.jwks_max_age,
            # Token Status Lists: each token names its list (status.status_list.uri) under here.
            "status_list_endpoint": f"{issuer}/v1/status-lists",
            "status_list_ttl": self._settings.status_list_ttl,
            "token_revocation_endpoint": f"{issuer}/v1/tokens/{{jti}}/revocations",
            "audit_endpoint": f"{issuer}/v1/audit/events",
        }
