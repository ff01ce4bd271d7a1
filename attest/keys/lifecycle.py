"""Key lifecycle: scheduled and on-demand rotation, retirement, compromise (DESIGN.md "Keys").

``plan`` is pure: ``(keys, last token expiries, now, policy) -> what is due``. The async
functions apply it under the key advisory lock, each state change with its audit event in
the same transaction. The database (0003_keys.sql) refuses any transition not listed here.

    pending --(activate_after reached)--> active --(next key activates)--> retiring
    retiring --(retire_after reached and every token it signed expired + leeway)--> retired
    any state but compromised --(revoke --compromised)--> compromised
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from attest.audit import service as audit
from attest.db import Conn
from attest.errors import Conflict, NotFound, UnprocessableInput
from attest.keys import repository
from attest.keys.keystore import Algorithm, Keystore, KeystoreError, Signer
from attest.keys.models import Plan, Revocation, Rotation, SigningKey
from attest.settings import Settings, SettingsError
from attest.settings import longest_token_lifetime as settings_rule
from attest.status import service as status

__all__ = [
    "KeyPolicy",
    "Plan",
    "Revocation",
    "Rotation",
    "check_audience_lifetimes",
    "check_token_lifetime",
    "ensure_signing_key",
    "longest_token_lifetime",
    "plan",
    "revoke_compromised",
    "rotate",
    "tick",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """The key settings that rotation obeys (all durations in seconds)."""

    algorithm: Algorithm
    rotation_interval: int
    prepublish: int
    retiring_window: int
    leeway: int

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyPolicy:
        alg: Algorithm = "EdDSA" if settings.key_algorithm == "EdDSA" else "ES256"
        return cls(
            algorithm=alg,
            rotation_interval=settings.key_rotation_interval,
            prepublish=settings.key_prepublish,
            retiring_window=settings.key_retiring_window,
            leeway=settings.key_leeway,
        )


def longest_token_lifetime(policy: KeyPolicy) -> int:
    """The longest token lifetime (seconds) these keys can honour (settings.py states the
    rule: retiring window - leeway)."""
    return settings_rule(policy.retiring_window, policy.leeway)


def check_token_lifetime(lifetime: int, policy: KeyPolicy) -> None:
    """Refuse (422, field ``$.token_lifetime``) a lifetime that would outlive its key."""
    longest = longest_token_lifetime(policy)
    if lifetime > longest:
        raise UnprocessableInput(
            f"A token lifetime of {lifetime} s would outlive the key that signed it: "
            f"at most {longest} s with ATTEST_KEY_RETIRING_WINDOW "
            f"{policy.retiring_window} s and ATTEST_KEY_LEEWAY {policy.leeway} s.",
            errors=[{"field": "$.token_lifetime", "message": f"at most {longest}"}],
        )


def plan(
    keys: Sequence[Mapping[str, Any]],
    last_expiry: Mapping[str, datetime | None],
    now: datetime,
    policy: KeyPolicy,
) -> Plan:
    """What is due at ``now``. Pure: no I/O, no clock."""
    pending = [k for k in keys if k["state"] == "pending"]
    active = sorted(
        (k for k in keys if k["state"] == "active"), key=lambda k: k["activated_at"], reverse=True
    )
    # A pending key signs only once it has been published for the pre-publication period.
    ready = [k for k in pending if k["activate_after"] <= now]
    activate = min(ready, key=lambda k: k["activate_after"])["kid"] if ready else None
    retire = []
    for key in keys:
        if key["state"] != "retiring" or key["retire_after"] > now:
            continue
        # Every token it signed must have expired, plus the verifiers' leeway, before it goes.
        expiry = last_expiry.get(key["kid"])
        if expiry is None or expiry + timedelta(seconds=policy.leeway) <= now:
            retire.append(key["kid"])
    create = False
    if not pending and active:
        current = active[0]
        if current["alg"] != policy.algorithm:
            create = True  # the algorithm of new keys changed: rotate to it
        elif policy.rotation_interval:
            due = current["activated_at"] + timedelta(seconds=policy.rotation_interval)
            # Publish early, so the next key has been out a full pre-publication at `due`.
            create = due - timedelta(seconds=policy.prepublish) <= now
    return Plan(activate=activate, retire=tuple(retire), create_pending=create)


def _iso(value: datetime) -> str:
    return value.isoformat()


async def _event(
    conn: Conn, kind: str, now: datetime, actor: uuid.UUID | None, data: dict[str, Any]
) -> None:
    await audit.record(conn, kind, occurred_at=now, actor=actor, tenant=None, data=data)


async def _activate(
    conn: Conn,
    kid: str,
    now: datetime,
    policy: KeyPolicy,
    actor: uuid.UUID | None,
    via: str,
    *,
    prepublication_skipped: bool = False,
) -> None:
    until = now + timedelta(seconds=policy.retiring_window)
    for key in await repository.keys_in_state(conn, "active"):
        await repository.set_state(conn, key.kid, "retiring", now, until)
        await _event(
            conn,
            "key.retiring",
            now,
            actor,
            {"kid": key.kid, "alg": key.alg, "retire_after": _iso(until), "via": via},
        )
    await repository.set_state(conn, kid, "active", now)
    await _event(
        conn,
        "key.activated",
        now,
        actor,
        {"kid": kid, "via": via, "prepublication_skipped": prepublication_skipped},
    )


async def _create_pending(
    conn: Conn,
    keystore: Keystore,
    policy: KeyPolicy,
    now: datetime,
    actor: uuid.UUID | None,
    via: str,
) -> SigningKey:
    # Made in the keystore first: a failed transaction leaves an unused private key
    # behind (never named by the database, never published), not a record without a key.
    signer = keystore.generate(policy.algorithm)
    activate_after = now + timedelta(seconds=policy.prepublish)
    await repository.insert_pending_key(
        conn,
        signer.kid,
        signer.alg,
        signer.public_jwk(),
        keystore.ref(signer),
        now,
        activate_after,
    )
    await _event(
        conn,
        "key.published",
        now,
        actor,
        {
            "kid": signer.kid,
            "alg": signer.alg,
            "state": "pending",
            "activate_after": _iso(activate_after),
            "via": via,
        },
    )
    key = await repository.get_key(conn, signer.kid)
    assert key is not None  # noqa: S101 - inserted above in this transaction
    return key


async def tick(conn: Conn, keystore: Keystore, policy: KeyPolicy, now: datetime) -> Plan:
    """Apply whatever is due; with several instances, whichever holds the lock does it."""
    async with conn.transaction():
        if not await repository.try_lock_keys(conn):
            return Plan(None, (), False)
        keys = await repository.list_keys(conn)
        expiries = {
            k.kid: await repository.last_expiry(conn, k.kid) for k in keys if k.state == "retiring"
        }
        due = plan([dataclasses.asdict(k) for k in keys], expiries, now, policy)
        if due.activate is not None:
            await _activate(conn, due.activate, now, policy, None, "schedule")
        for kid in due.retire:
            await repository.set_state(conn, kid, "retired", now)
            await _event(conn, "key.retired", now, None, {"kid": kid, "via": "schedule"})
        if due.create_pending:
            await _create_pending(conn, keystore, policy, now, None, "schedule")
    if not due.empty:
        log.info("key transitions: %s", due)
    return due


async def rotate(
    conn: Conn,
    keystore: Keystore,
    policy: KeyPolicy,
    now: datetime,
    actor: uuid.UUID | None,
    via: str,
) -> Rotation:
    """Publish the next key as pending now (or return the one already pending)."""
    async with conn.transaction():
        await repository.lock_keys(conn)
        pending = await repository.keys_in_state(conn, "pending")
        if pending:
            key, created = pending[0], False
        else:
            key, created = await _create_pending(conn, keystore, policy, now, actor, via), True
    assert key.activate_after is not None  # noqa: S101 - a pending key has one (0003_keys.sql)
    return Rotation(key.kid, key.alg, key.activate_after, created)


async def revoke_compromised(
    conn: Conn,
    keystore: Keystore,
    policy: KeyPolicy,
    now: datetime,
    kid: str,
    actor: uuid.UUID | None,
    via: str,
) -> Revocation:
    """Take a compromised key out of JWKS at once; if it was signing, promote a key now."""
    async with conn.transaction():
        await repository.lock_keys(conn)
        key = await repository.get_key(conn, kid)
        if key is None:
            raise NotFound(f"There is no signing key {kid}.")
        if key.state == "compromised":
            raise Conflict(f"The key {kid} is already marked compromised.")
        await repository.set_state(conn, kid, "compromised", now)
        # Every outstanding token it signed becomes INVALID in its status list, with the event.
        tokens = await status.mark(conn, "kid", kid, now)
        await _event(
            conn,
            "key.compromised",
            now,
            actor,
            {"kid": kid, "previous_state": key.state, "via": via, "tokens_revoked": tokens},
        )
        replacement: str | None = None
        replacement_alg: str | None = None
        if key.state == "active":
            # No pre-publication: a compromised key must stop signing now. Verifiers that
            # have not seen the replacement refetch on its unknown kid.
            pending = await repository.keys_in_state(conn, "pending")
            if pending:
                replacement, replacement_alg = pending[0].kid, pending[0].alg
            else:
                fresh = await _create_pending(conn, keystore, policy, now, actor, via)
                replacement, replacement_alg = fresh.kid, fresh.alg
            await _activate(conn, replacement, now, policy, actor, via, prepublication_skipped=True)
    return Revocation(
        kid=kid,
        previous_state=key.state,
        compromised_at=now,
        replacement=replacement,
        replacement_alg=replacement_alg,
        prepublication_skipped=replacement is not None,
    )


async def check_audience_lifetimes(conn: Conn, settings: Settings) -> None:
    """Start-up: refuse a retiring window shorter than an audience's token lifetime + leeway."""
    longest = await repository.max_audience_lifetime(conn)
    if longest is not None and longest > longest_token_lifetime(KeyPolicy.from_settings(settings)):
        raise SettingsError(
            f"ATTEST_KEY_RETIRING_WINDOW ({settings.key_retiring_window} s) is shorter than the "
            f"longest audience token lifetime ({longest} s) plus ATTEST_KEY_LEEWAY "
            f"({settings.key_leeway} s): a retired key would still have live tokens"
        )


async def ensure_signing_key(
    conn: Conn, keystore: Keystore, policy: KeyPolicy, now: datetime
) -> Signer:
    """Start-up: the active key's signer, or on a first start a first key, active at once
    (nothing was published before it, so there is nothing to pre-publish it against).
    Call inside the bootstrap transaction, under its lock."""
    current = await repository.current_signing_key(conn)
    if current is not None:
        return keystore.load(current.kid, current.alg, current.keystore_ref)
    if await repository.list_keys(conn):
        raise KeystoreError("signing keys exist but none is active: see 'attest keys list'")
    signer = keystore.generate(policy.algorithm)
    await repository.insert_active_key(
        conn, signer.kid, signer.alg, signer.public_jwk(), keystore.ref(signer), now
    )
    await _event(
        conn, "key.activated", now, None, {"kid": signer.kid, "alg": signer.alg, "first_key": True}
    )
    return signer
