"""``create_app(settings)``: wires every domain, the database and the signing key in one place.

Start-up (the lifespan) opens the database (embedded when no URL is configured), applies
migrations and seeds (bootstrap), opens the keystore, then builds every service once and
puts it on the application state; route handlers receive them by name through Litestar's
dependency injection, with ``now``, the request's single reading of the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig

from attest import __version__
from attest.audit.routes import list_audit_events
from attest.audit.service import AuditService
from attest.bootstrap import BootstrapResult, bootstrap
from attest.clients.routes import (
    create_client,
    list_clients,
    read_client,
    revoke_client,
    rotate_client_key,
)
from attest.clients.service import ClientService, Limits, PostgresCounters, RedisCounters
from attest.clock import Clock, utc_now
from attest.console import web as console_web
from attest.console.router import console_router, template_config
from attest.console.service import SessionService
from attest.db import Conn, roles
from attest.db.changes import ChangeFeed
from attest.db.embedded import EmbeddedPostgres
from attest.db.migrations import pending
from attest.db.notify import Listener
from attest.db.pool import create_pool, init_connection
from attest.devsecrets import resolve_secret
from attest.evidence.idp import ProviderConfigError, load_providers
from attest.evidence.routes import (
    approve_evidence,
    reject_evidence,
    submit_evidence,
    withdraw_evidence,
)
from attest.evidence.service import EvidenceService, Providers
from attest.http import auth, redaction, requestlog
from attest.http.openapi import complete_openapi
from attest.http.problems import exception_handlers
from attest.http.requests import StrictRequest
from attest.keys.keyring import Keyring, open_keystore
from attest.keys.keystore import Keystore
from attest.keys.routes import (
    configuration,
    jwks,
    key_history,
    list_keys,
    revoke_key,
    rotate_keys,
)
from attest.keys.service import KeyService
from attest.log.routes import (
    consistency_proof,
    entry_bundle,
    hash_tile,
    inclusion_proof,
    log_checkpoint,
    receipt,
)
from attest.log.service import LogService
from attest.metrics import Metrics
from attest.policy.routes import (
    evaluate_policy,
    policy_impact,
    publish_policy,
    read_audience,
    read_policy,
    read_policy_version,
    resume_audience,
    suspend_audience,
    update_audience,
)
from attest.policy.service import PolicyService
from attest.settings import Settings, SettingsError
from attest.status.routes import read_status_list
from attest.status.service import StatusListService
from attest.subjects.routes import batch_route, create_subject, read_subject, revoke_subject
from attest.subjects.service import SubjectService
from attest.tokens.listing import TokenListing
from attest.tokens.routes import issue_token, read_attestation, revoke_token
from attest.tokens.service import TokenService

__all__ = ["create_app"]

log = logging.getLogger("attest")


@dataclass(slots=True)
class Runtime:
    """What the operational endpoints need: the pool, the metrics, whether start-up ended."""

    metrics: Metrics
    pool: asyncpg.Pool | None = None
    ready: bool = False


@get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


#: Longest /readyz waits for the database (seconds): a probe must answer even when the
#: database does not.
READINESS_TIMEOUT = 2.0


@get("/readyz")
async def readyz(
    runtime: NamedDependency[Runtime], key_service: NamedDependency[KeyService]
) -> Response[dict[str, Any]]:
    """Readiness: database reachable, migrations applied, the active key loaded and signing.

    Each check is reported by name (and the failed ones listed), so a 503 says which one
    failed; each is bounded by ``READINESS_TIMEOUT``, so the probe answers even when the
    database does not. The key check asks the keyring for the key the database names active
    (loading it, so an instance whose keystore came back recovers here too) and signs a probe
    with it: a PKCS#11 token that was removed fails it, since the key lives there; a file
    keystore's key is held in memory and keeps signing while its directory is unreadable."""
    checks = {"database": False, "migrations": False, "signing_key": False}
    signer = None
    try:
        assert runtime.pool is not None  # noqa: S101 - services exist only once it is open
        async with asyncio.timeout(READINESS_TIMEOUT):
            async with runtime.pool.acquire(timeout=READINESS_TIMEOUT) as conn:
                checks["database"] = await conn.fetchval("SELECT true") is True
                checks["migrations"] = not await pending(conn)
                signer = await key_service.keyring.active(conn)
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", named in the log
        log.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
    if not checks["database"]:
        # The database cannot say which key is active: check the key loaded, so the answer
        # names the database alone when only the database failed.
        signer = key_service.keyring.current
    if signer is not None:
        try:
            async with asyncio.timeout(READINESS_TIMEOUT):
                await asyncio.to_thread(signer.sign, b"attest readiness probe")
            checks["signing_key"] = True
        except Exception as exc:  # noqa: BLE001 - as above
            log.warning("readiness: the signing key cannot sign: %s: %s", type(exc).__name__, exc)
    ready = all(checks.values()) and runtime.ready
    failed = [name for name, ok in checks.items() if not ok]
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
    if failed:
        body["failed"] = failed
    return Response(
        body,
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "1"},
    )


@get("/metrics", media_type="text/plain; version=0.0.4")
async def metrics(runtime: NamedDependency[Runtime]) -> bytes:
    return runtime.metrics.render()


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


async def _reevaluations(tokens: TokenService, interval_ms: int, clock: Clock) -> None:
    """Re-evaluate outstanding tokens after policy and audience changes: every instance
    looks, one takes each job (SKIP LOCKED), batch after batch until none is pending."""
    while True:
        await asyncio.sleep(interval_ms / 1000)
        try:
            while await tokens.reevaluate_next(clock()) is not None:
                pass
        except Exception:
            # Logged and retried on the next round: the job's cursor survives in the database.
            log.exception("token re-evaluation failed")


async def _database_roles(settings: Settings, dsn: str, *, embedded: bool) -> tuple[str, str]:
    """(the service's URL, the owner's URL): the owner runs the migrations and owns the
    tables, the service may not rewrite the audit trail (attest/db/roles.py)."""
    if embedded:
        owner = await asyncpg.connect(dsn)
        try:
            await roles.ensure_role(owner, roles.EMBEDDED_SERVICE_ROLE)
        finally:
            await owner.close()
        return roles.with_user(dsn, roles.EMBEDDED_SERVICE_ROLE), dsn
    if settings.migration_database_url:
        return dsn, settings.migration_database_url
    log.warning(
        "ATTEST_MIGRATION_DATABASE_URL is not set: the service connects as the role that owns "
        "the audit tables, so the database role itself could rewrite history; set it to the "
        "owner's URL and ATTEST_DATABASE_URL to a role that owns nothing"
    )
    return dsn, dsn


async def _bootstrap(
    settings: Settings, dsn: str, keystore: Keystore, clock: Clock, *, embedded: bool
) -> tuple[str, BootstrapResult]:
    """Migrations and seeds as the owner, then the service role's grants; the service URL."""
    dsn, owner_dsn = await _database_roles(settings, dsn, embedded=embedded)
    owner = await _connector(owner_dsn)()
    try:
        result = await bootstrap(owner, settings, keystore, clock())
        await _grant_service(owner, dsn)
    finally:
        await owner.close()
    return dsn, result


async def _grant_service(owner: Conn, dsn: str) -> None:
    """When the service role is not the owner, grant it exactly what it needs."""
    service = await asyncpg.connect(dsn)
    try:
        role: str = await service.fetchval("SELECT current_user")
    finally:
        await service.close()
    if role != await owner.fetchval("SELECT current_user"):
        await roles.grant_service(owner, role)


def _connector(dsn: str, name: str | None = None) -> Callable[[], Any]:
    """Dedicated connections (the log sequencer's: it holds its advisory lock on one).

    ``name`` becomes the connection's ``application_name`` with this process's id, so
    ``pg_stat_activity`` (joined with ``pg_locks``) tells which instance leads the log."""
    settings = {"application_name": f"{name} pid {os.getpid()}"} if name else None

    async def connect() -> asyncpg.Connection[asyncpg.Record]:
        conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
            dsn, command_timeout=30, server_settings=settings
        )
        await init_connection(conn)
        return conn

    return connect


async def _start_log(
    app: Litestar,
    pool: asyncpg.Pool,
    settings: Settings,
    keystore: Keystore,
    dsn: str,
    clock: Clock,
) -> asyncio.Task[None]:
    """Load (or create) the log key, publish the log service, start the sequencer task."""
    log_service = LogService(
        pool,
        settings,
        keystore=keystore,
        connect=_connector(dsn, "attest-log-sequencer"),
        key_service=app.state["key_service"],
        token_service=app.state["token_service"],
    )
    await log_service.open(clock())
    app.state["log_service"] = app.state["log_directory"] = log_service
    return asyncio.create_task(log_service.run(clock), name="attest-log")


def _listen(app: Litestar, dsn: str) -> asyncio.Task[None]:
    """Change notifications for what is served from memory (attest.db.changes)."""
    feed: ChangeFeed = app.state["change_feed"]
    return asyncio.create_task(
        feed.run(_connector(dsn, "attest-changes"), retry=1.0), name="attest-changes"
    )


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


#: What route handlers receive by name (Litestar dependency injection). Each is built once
#: at start-up and kept on the application state under the same name.
SERVICE_NAMES = (
    "runtime",
    auth.STATE_KEY,  # the clients service; also what the guards authenticate with
    "audit_service",
    "key_service",
    "subject_service",
    "evidence_service",
    "policy_service",
    "audience_directory",
    "token_service",
    "status_list_service",
    "log_service",
    "log_directory",  # the log service, as discovery and key history see it
    console_web.STATE_KEY,  # the console's sessions; also what its guards resume with
    "token_listing",  # a subject's tokens and their status (the console's subject page)
)


def _from_state(name: str) -> Provide:
    def provide(state: State) -> Any:
        return state[name]

    return Provide(provide, use_cache=True, sync_to_thread=False)


async def _close_services(app: Litestar, listener: Listener | None) -> None:
    """Stop the issuance batches and the cache listener; close the rate-limit counters."""
    if "token_service" in app.state:
        await app.state["token_service"].close()
    if listener is not None:
        await listener.close()
    if auth.STATE_KEY in app.state:
        await app.state[auth.STATE_KEY].close()


def _cache_metrics(metrics: Metrics, listener: Listener) -> None:
    """/metrics reads the listener's state and the caches' counts when it is scraped."""
    metrics.cache_listener_connected.set_function(lambda: float(listener.connected))
    cache = listener.cache("apikey")
    metrics.cache_lookups.labels("apikey", "hit").set_function(lambda: float(cache.hits))
    metrics.cache_lookups.labels("apikey", "miss").set_function(lambda: float(cache.misses))


def _listener(settings: Settings, dsn: str, tasks: list[asyncio.Task[None]]) -> Listener:
    """The instance's cache-invalidation listener (attest/db/notify.py), its task started."""
    listener = Listener(
        _connector(dsn),
        max_staleness_ms=settings.cache_max_staleness_ms,
        retry_ms=settings.cache_listener_retry_ms,
    )
    tasks.append(asyncio.create_task(listener.run(), name="attest-cache-listener"))
    return listener


def _services(
    app: Litestar,
    pool: asyncpg.Pool,
    settings: Settings,
    *,
    keyring: Keyring,
    pairwise_key: bytes,
    providers: Providers,
    metrics: Metrics,
    clock: Clock,
    listener: Listener | None = None,
) -> KeyService:
    """Build every service once and put them where handlers (and guards) find them."""
    # The access log never writes a query string: one may carry a credential.
    redaction.install()
    app.state["clock"] = clock  # read by the busiest public reads instead of injecting `now`
    feed = app.state["change_feed"] = ChangeFeed()
    keys = KeyService(pool, keyring, settings, feed=feed)
    policies = PolicyService(pool, settings)
    # Rate-limit counters shared by every instance: Redis when configured, else PostgreSQL.
    counters = RedisCounters(settings.redis_url) if settings.redis_url else PostgresCounters(pool)
    app.state[auth.STATE_KEY] = ClientService(
        pool,
        clock=clock,
        limits=Limits.of(settings),
        counters=counters,
        metrics=metrics,
        listener=listener,
    )
    if listener is not None:
        _cache_metrics(metrics, listener)
    app.state["audit_service"] = AuditService(pool)
    app.state["key_service"] = keys
    app.state["subject_service"] = SubjectService(pool)
    evidence = EvidenceService(pool, settings, pairwise_key=pairwise_key, providers=providers)
    app.state["evidence_service"] = evidence
    app.state["policy_service"] = policies
    app.state["audience_directory"] = policies
    app.state["token_service"] = TokenService(
        pool,
        settings,
        keyring=keyring,
        pairwise_key=pairwise_key,
        metrics=metrics,
        evidence=evidence,
    )
    app.state["status_list_service"] = StatusListService(
        pool,
        issuer=settings.issuer,
        ttl=settings.status_list_ttl,
        signer=keyring,
        feed=feed,
        recheck=settings.published_recheck_ms / 1000,
    )
    app.state["token_listing"] = TokenListing(pool)
    app.state[console_web.STATE_KEY] = SessionService(
        pool, app.state[auth.STATE_KEY], ttl=settings.console_session_ttl, clock=clock
    )
    return keys


def _background(
    app: Litestar, settings: Settings, key_service: KeyService, clock: Clock
) -> list[asyncio.Task[None]]:
    """The instance's background work: scheduled key transitions and re-evaluations."""
    return [
        asyncio.create_task(
            _key_lifecycle(key_service, settings.key_check_interval_ms, clock),
            name="attest-keys",
        ),
        asyncio.create_task(
            _reevaluations(
                app.state["token_service"], settings.status_reevaluation_interval_ms, clock
            ),
            name="attest-reevaluations",
        ),
    ]


def _route_handlers(settings: Settings) -> list[Any]:
    """Every route of the API, in one list (the batch route takes its own body limit)."""
    return [
        healthz,
        readyz,
        metrics,
        jwks,
        configuration,
        create_client,
        list_clients,
        read_client,
        revoke_client,
        rotate_client_key,
        create_subject,
        batch_route(settings),
        read_subject,
        revoke_subject,
        submit_evidence,
        approve_evidence,
        reject_evidence,
        withdraw_evidence,
        issue_token,
        revoke_token,
        read_status_list,
        read_policy,
        read_policy_version,
        publish_policy,
        evaluate_policy,
        policy_impact,
        read_audience,
        update_audience,
        suspend_audience,
        resume_audience,
        list_audit_events,
        read_attestation,
        list_keys,
        key_history,
        rotate_keys,
        revoke_key,
        log_checkpoint,
        entry_bundle,
        hash_tile,
        inclusion_proof,
        consistency_proof,
        receipt,
        console_router(settings),
    ]


def _open_secrets(settings: Settings) -> tuple[bytes, Keystore]:
    """The pairwise key and the open keystore (secrets generated once in embedded mode)."""
    pairwise_key = resolve_secret(settings, settings.pairwise_secret, "pairwise_secret").encode()
    keystore = open_keystore(
        settings,
        lambda: resolve_secret(settings, settings.keystore_passphrase, "keystore_passphrase"),
    )
    return pairwise_key, keystore


async def prepare(settings: Settings, dsn: str, *, clock: Clock = utc_now) -> str | None:
    """Everything start-up does once for all instances, before `attest serve` starts its
    workers: dev secrets generated, migrations, seeds, admin key, signing key. Returns the
    admin API key when this call generated it (to print once). The workers' own start-up
    repeats the same idempotent steps and finds them done."""
    _, keystore = _open_secrets(settings)
    try:
        _, result = await _bootstrap(settings, dsn, keystore, clock, embedded=settings.embedded)
    finally:
        keystore.close()
    return result.generated_admin_key


def create_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    announce: Callable[[str], None] | None = None,
    embedded_dsn: str | None = None,
) -> Litestar:
    """Build the application. Start-up (lifespan) connects, migrates and loads the key.

    ``embedded_dsn``: the URL of an embedded PostgreSQL that another process (the `attest
    serve` parent) started and owns; used instead of starting one when no URL is set."""
    try:
        providers = load_providers(settings.idp_providers)
    except ProviderConfigError as exc:
        raise SettingsError(f"ATTEST_IDP_PROVIDERS: {exc}") from None
    say = announce or (lambda text: print(text, file=sys.stderr, flush=True))
    runtime = Runtime(metrics=Metrics())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        embedded: EmbeddedPostgres | None = None
        dsn = settings.database_url or embedded_dsn
        if dsn is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            dsn = await asyncio.to_thread(embedded.start)
        try:
            pairwise_key, keystore = _open_secrets(settings)
            dsn, result = await _bootstrap(
                settings, dsn, keystore, clock, embedded=settings.embedded
            )
            pool = runtime.pool = await create_pool(
                dsn,
                settings.db_pool_size,
                statement_timeout_ms=settings.db_statement_timeout_ms,
                acquire_timeout_ms=settings.db_pool_timeout_ms,
            )
            runtime.metrics.watch_pool(pool)
            tasks: list[asyncio.Task[None]] = []
            listener: Listener | None = None
            try:
                keyring = Keyring(keystore)
                keyring.current = result.signer
                # Cache invalidations from every instance (attest/db/notify.py).
                listener = _listener(settings, dsn, tasks)
                key_service = _services(
                    app,
                    pool,
                    settings,
                    keyring=keyring,
                    pairwise_key=pairwise_key,
                    providers=providers,
                    metrics=runtime.metrics,
                    clock=clock,
                    listener=listener,
                )
                tasks += [
                    *_background(app, settings, key_service, clock),
                    await _start_log(app, pool, settings, keystore, dsn, clock),
                    _listen(app, dsn),
                ]
                if result.generated_admin_key:
                    say(
                        "\n  attest: bootstrap admin API key (shown once, store it now):\n"
                        f"    {result.generated_admin_key}\n"
                    )
                runtime.ready = True
                log.info(
                    "attest %s ready; issuer %s, signing key %s",
                    __version__,
                    settings.issuer,
                    result.signer.kid,
                )
                yield
            finally:
                runtime.ready = False
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await _close_services(app, listener)
                await pool.close()
                keystore.close()
                runtime.metrics.close()
        finally:
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    def now() -> datetime:
        """The request's one reading of the clock: every rule of the request uses it."""
        return clock()

    dependencies = {name: _from_state(name) for name in SERVICE_NAMES}
    dependencies["now"] = Provide(now, sync_to_thread=False)

    app = Litestar(
        route_handlers=_route_handlers(settings),
        dependencies=dependencies,
        lifespan=[_recording_refusals(lifespan)],
        exception_handlers=exception_handlers,
        request_class=StrictRequest,
        request_max_body_size=settings.max_body_size,
        openapi_config=OpenAPIConfig(title="attest", version=__version__, path="/schema"),
        template_config=template_config(),
        debug=False,
    )
    app.state["runtime"] = runtime
    return complete_openapi(_with_request_log(app, runtime.metrics))


def _with_request_log(app: Litestar, metrics: Metrics) -> Litestar:
    """Request ids, access lines and latency histograms (attest/http/requestlog.py), outside
    routing, so every answer (unknown paths and problems too) carries its request id."""
    app.asgi_handler = requestlog.RequestLog(app.asgi_handler, observe=metrics.observe_request)
    return app
