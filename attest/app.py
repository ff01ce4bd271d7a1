"""``create_app(settings)``: wires every domain, the database and the signing key in one place."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig

from attest import __version__
from attest.audit.routes import list_audit_events
from attest.audit.service import AuditService
from attest.bootstrap import bootstrap
from attest.clients import guards
from attest.clients.routes import create_client
from attest.clients.service import ClientService
from attest.clock import Clock, utc_now
from attest.db.embedded import EmbeddedPostgres
from attest.db.migrations import pending
from attest.db.pool import create_pool
from attest.devsecrets import resolve_secret
from attest.evidence.idp import ProviderConfigError, load_providers
from attest.evidence.routes import (
    approve_evidence,
    reject_evidence,
    submit_evidence,
    withdraw_evidence,
)
from attest.http.context import AppContext, app_context
from attest.http.problems import exception_handlers
from attest.keys.keyring import Keyring, open_keystore
from attest.keys.routes import (
    configuration,
    jwks,
    key_history,
    list_keys,
    revoke_key,
    rotate_keys,
)
from attest.keys.service import KeyService
from attest.policy import repository as policies
from attest.policy.routes import (
    evaluate_policy,
    publish_policy,
    read_audience,
    read_policy,
    read_policy_version,
    update_audience,
)
from attest.settings import Settings, SettingsError
from attest.subjects.routes import batch_route, create_subject, read_subject, revoke_subject
from attest.tokens.routes import issue_token, read_attestation

__all__ = ["create_app"]

log = logging.getLogger("attest")


@get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(
    request: Request[Any, Any, Any], key_service: NamedDependency[KeyService]
) -> Response[dict[str, Any]]:
    """Readiness: database reachable, migrations applied, an active key loaded."""
    ctx = app_context(request)
    loaded = key_service.keyring.current is not None
    checks = {"database": False, "migrations": False, "signing_key": loaded}
    try:
        async with ctx.pool.acquire(timeout=2) as conn:
            checks["database"] = await conn.fetchval("SELECT true") is True
            checks["migrations"] = not await pending(conn)
    except Exception:
        log.warning("readiness check failed", exc_info=True)
    ready = all(checks.values()) and ctx.ready
    return Response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@get("/metrics", media_type="text/plain; version=0.0.4")
async def metrics(request: Request[Any, Any, Any]) -> bytes:
    return app_context(request).metrics.render()


async def _key_lifecycle(key_service: KeyService, interval_ms: int, clock: Clock) -> None:
    """Scheduled key transitions (one instance at a time, by advisory lock) and pick-up of
    transitions made elsewhere, every ``key_check_interval_ms``."""
    while True:
        await asyncio.sleep(interval_ms / 1000)
        try:
            await key_service.tick(clock())
        except Exception:
            # Logged and retried on the next tick: a transient database error must not
            # stop scheduled rotation for the life of the process.
            log.exception("key lifecycle check failed")


Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def _recording_refusals(lifespan: Lifespan) -> Lifespan:
    """Keep a start-up refusal's message on ``app.state`` for `attest serve` (see cli.py),
    which prints it as one line naming the setting instead of a traceback."""

    @asynccontextmanager
    async def recorded(app: Litestar) -> AsyncIterator[None]:
        try:
            async with lifespan(app):
                yield
        except SettingsError as exc:
            app.state.startup_refusal = str(exc)
            raise

    return recorded


#: The services handed to route handlers by name (Litestar dependency injection). Each is
#: built once at start-up and kept on the application state under the same name.
SERVICE_NAMES = ("client_service", "audit_service", "key_service", "audience_directory")


def _from_state(name: str) -> Provide:
    def provide(state: State) -> Any:
        return state[name]

    return Provide(provide, use_cache=True, sync_to_thread=False)


class _PolicyAudiences:
    """Discovery's AudienceDirectory, on the policy repository's rows. Temporary: the
    policy domain's service takes its place once policy is migrated."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def list_audiences(self) -> list[dict[str, Any]]:
        return [
            {
                "audience": a["audience"],
                "policy": a["policy_name"],
                "token_lifetime": a["token_lifetime"],
                "binding_required": a["binding_required"],
            }
            for a in await policies.list_audiences(self._pool)
        ]


def _services(app: Litestar, pool: Any, *, keyring: Keyring, settings: Settings) -> None:
    """Build every service on the pool and put them where handlers and guards find them."""
    app.state[guards.STATE_KEY] = ClientService(pool)
    app.state["audit_service"] = AuditService(pool)
    app.state["key_service"] = KeyService(pool, keyring, settings)
    app.state["audience_directory"] = _PolicyAudiences(pool)


def create_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    announce: Callable[[str], None] | None = None,
) -> Litestar:
    """Build the application. Start-up (lifespan) connects, migrates and loads the key."""
    ctx = AppContext(settings=settings, clock=clock)
    try:
        ctx.extras["idp_providers"] = load_providers(settings.idp_providers)
    except ProviderConfigError as exc:
        raise SettingsError(f"ATTEST_IDP_PROVIDERS: {exc}") from None
    say = announce or (lambda text: print(text, file=sys.stderr, flush=True))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        embedded: EmbeddedPostgres | None = None
        dsn = settings.database_url
        if dsn is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            dsn = await asyncio.to_thread(embedded.start)
        try:
            ctx.pairwise_key = resolve_secret(
                settings, settings.pairwise_secret, "pairwise_secret"
            ).encode()
            keystore = open_keystore(
                settings,
                lambda: resolve_secret(
                    settings, settings.keystore_passphrase, "keystore_passphrase"
                ),
            )
            ctx.pool = await create_pool(dsn, settings.db_pool_size)
            # The instance's one cache of the active signer: KeyService follows rotations
            # with it; tokens sign with it (through ctx.current_signer until migrated).
            keyring = ctx.keyring = Keyring(keystore)
            _services(app, ctx.pool, keyring=keyring, settings=settings)
            key_task: asyncio.Task[None] | None = None
            try:
                async with ctx.pool.acquire() as conn:
                    result = await bootstrap(conn, settings, keystore, ctx.now())
                keyring.current = result.signer
                key_task = asyncio.create_task(
                    _key_lifecycle(app.state["key_service"], settings.key_check_interval_ms, clock),
                    name="attest-keys",
                )
                if result.generated_admin_key:
                    say(
                        "\n  attest: bootstrap admin API key (shown once, store it now):\n"
                        f"    {result.generated_admin_key}\n"
                    )
                ctx.ready = True
                log.info(
                    "attest %s ready; issuer %s, signing key %s",
                    __version__,
                    settings.issuer,
                    result.signer.kid,
                )
                yield
            finally:
                ctx.ready = False
                if key_task is not None:
                    key_task.cancel()
                    await asyncio.gather(key_task, return_exceptions=True)
                await ctx.pool.close()
                keystore.close()
        finally:
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    def now() -> datetime:
        """The request's one reading of the clock: every rule of the request uses it."""
        return clock()

    dependencies = {name: _from_state(name) for name in SERVICE_NAMES}
    dependencies["now"] = Provide(now, sync_to_thread=False)

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            metrics,
            jwks,
            configuration,
            create_client,
            create_subject,
            batch_route(settings),
            read_subject,
            revoke_subject,
            submit_evidence,
            approve_evidence,
            reject_evidence,
            withdraw_evidence,
            issue_token,
            read_policy,
            read_policy_version,
            publish_policy,
            evaluate_policy,
            read_audience,
            update_audience,
            list_audit_events,
            read_attestation,
            list_keys,
            key_history,
            rotate_keys,
            revoke_key,
        ],
        dependencies=dependencies,
        lifespan=[_recording_refusals(lifespan)],
        exception_handlers=exception_handlers,
        request_max_body_size=settings.max_body_size,
        openapi_config=OpenAPIConfig(title="attest", version=__version__, path="/schema"),
        debug=False,
    )
    app.state.ctx = ctx
    return app
