"""The ``attest`` command.

``attest verify`` needs only the base install (pyjwt, cryptography); every other
command imports the server code when it runs, never at start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from attest.http import stopsignals

__all__ = ["main", "worker_app"]

_log = logging.getLogger("attest.serve")


def _settings(args: argparse.Namespace) -> Any:
    from attest.settings import load_settings  # noqa: PLC0415 - server code on demand

    overrides: dict[str, Any] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return load_settings(**overrides)


#: How the `serve` parent hands the embedded database it owns to its workers (not a setting).
_EMBEDDED_DSN_ENV = "_ATTEST_EMBEDDED_DSN"
#: prometheus_client's multiprocess directory (attest.metrics.MULTIPROC_ENV); named here so
#: that it is set before any worker imports prometheus_client.
_METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_ADMIN_BANNER = "\n  attest: bootstrap admin API key (shown once, store it now):\n    {}\n"


def _log_secrets(settings: Any) -> list[str | None]:
    """The configured secret values no log line may show."""
    return [
        settings.keystore_passphrase,
        settings.pairwise_secret,
        settings.pkcs11_pin,
        settings.bootstrap_admin_key,
    ]


def _serve(args: argparse.Namespace) -> int:
    """The production server: one parent and ``ATTEST_WORKERS`` worker processes.

    The parent owns what must exist once: the embedded PostgreSQL (started before the
    workers, stopped after the last one ended), the first-start work (migrations, seeds,
    admin key printed once, signing key) and the metrics directory. Each worker serves
    the API on the shared socket with its own pool and background tasks (those coordinate
    across workers and instances through advisory locks). SIGTERM or SIGINT: new connections
    are refused, requests in flight get ``ATTEST_SHUTDOWN_GRACE`` seconds to finish, then the
    workers stop, the database stops, and the process exits 0.
    """
    settings = _settings(args)
    stopsignals.remember_stops()
    if not settings.embedded:
        # Checked before serving so the message is one line, not a start-up traceback.
        from attest.settings import SettingsError  # noqa: PLC0415

        for name in ("keystore_passphrase", "pairwise_secret"):
            if name == "keystore_passphrase" and settings.keystore == "pkcs11":
                continue  # the PKCS#11 keystore has a PIN instead
            if not getattr(settings, name):
                raise SettingsError(
                    f"ATTEST_{name.upper()} must be set when ATTEST_DATABASE_URL is set"
                )
    # The workers load their settings from the environment: the command line's too.
    if getattr(args, "host", None):
        os.environ["ATTEST_HOST"] = args.host
    if getattr(args, "port", None):
        os.environ["ATTEST_PORT"] = str(args.port)
    metrics_dir = tempfile.mkdtemp(prefix="attest-metrics-")
    os.environ[_METRICS_DIR_ENV] = metrics_dir

    from attest.http.requestlog import configure_logging  # noqa: PLC0415

    configure_logging(settings.log_level, settings.log_format, secrets=_log_secrets(settings))
    embedded = None
    try:
        dsn = settings.database_url
        if dsn is None:
            from attest.db.embedded import EmbeddedPostgres  # noqa: PLC0415

            embedded = EmbeddedPostgres(settings.data_dir)
            dsn = embedded.start()
            os.environ[_EMBEDDED_DSN_ENV] = dsn
        if stopsignals.stopping():
            return 0
        refused = _prepare(settings, dsn)
        if refused is not None:
            return refused
        if stopsignals.stopping():
            return 0
        _run_workers(settings)
    finally:
        os.environ.pop(_EMBEDDED_DSN_ENV, None)
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _prepare(settings: Any, dsn: str) -> int | None:
    """The first-start work, once, in the parent; an exit code when start-up is refused."""
    from attest.app import prepare  # noqa: PLC0415
    from attest.settings import SettingsError  # noqa: PLC0415

    try:
        admin_key = asyncio.run(prepare(settings, dsn))
    except SettingsError as exc:
        print(f"attest: refusing to start: {exc}", file=sys.stderr, flush=True)
        return 2
    if admin_key:
        print(_ADMIN_BANNER.format(admin_key), file=sys.stderr, flush=True)
    return None


def _run_workers(settings: Any) -> None:
    """Serve with granian until SIGTERM/SIGINT (see _serve)."""
    from granian.constants import HTTPModes, Interfaces, Loops  # noqa: PLC0415
    from granian.log import LogLevels  # noqa: PLC0415
    from granian.server import Server  # noqa: PLC0415

    from attest.http.requestlog import configure_logging  # noqa: PLC0415

    server = Server(
        "attest.cli:worker_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        log_access=False,  # attest writes its own access line (attest/http/requestlog.py)
        log_level=LogLevels(settings.log_level.lower()),
        # Granian's own logging config is replaced by attest's in each worker.
        log_dictconfig={"version": 1, "disable_existing_loggers": False},
        workers_kill_timeout=settings.shutdown_grace,
    )
    stopsignals.relay_stops(server)
    server.on_startup(stopsignals.pass_on_stop)
    # Granian configured its own loggers: route them to attest's handler again.
    configure_logging(settings.log_level, settings.log_format, secrets=_log_secrets(settings))
    server.serve()


def worker_app() -> Any:
    """One worker's application (granian calls this in each worker process)."""
    stopsignals.hold_stops()
    from attest.app import create_app  # noqa: PLC0415
    from attest.http.requestlog import configure_logging  # noqa: PLC0415
    from attest.settings import load_settings  # noqa: PLC0415

    settings = load_settings()
    app = create_app(settings, embedded_dsn=os.environ.get(_EMBEDDED_DSN_ENV))
    # After the app: Litestar configures logging of its own when it is built.
    configure_logging(settings.log_level, settings.log_format, secrets=_log_secrets(settings))
    return _one_line_refusals(app)


def _one_line_refusals(app: Any) -> Any:
    """The app, with a start-up refusal (a setting the database shows to be unsafe) reported
    as one line naming the setting instead of the framework's traceback."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def lifespan_send(message: Any) -> None:
            if message["type"] == "lifespan.startup.complete":
                stopsignals.release_stops()
            refusal = getattr(app.state, "startup_refusal", None)
            if message["type"] == "lifespan.startup.failed" and refusal:
                message = {**message, "message": f"attest: refusing to start: {refusal}"}
            if message["type"] == "lifespan.shutdown.complete":
                _log.info("worker %d: application shutdown complete", os.getpid())
            await send(message)

        await app(scope, receive, lifespan_send)

    return asgi


async def _with_database(settings: Any, work: Any, *, owner: bool = False) -> Any:
    import asyncpg  # noqa: PLC0415

    from attest.db.embedded import EmbeddedPostgres  # noqa: PLC0415
    from attest.db.pool import init_connection  # noqa: PLC0415

    embedded = None
    # Migrations (and what applies them) run as the owner role when one is configured.
    dsn = (settings.migration_database_url if owner else None) or settings.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        dsn = await asyncio.to_thread(embedded.start)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await init_connection(conn)
            return await work(conn)
        finally:
            await conn.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def _migrate(args: argparse.Namespace) -> int:
    from attest.db.migrations import apply_migrations  # noqa: PLC0415

    settings = _settings(args)
    applied = asyncio.run(_with_database(settings, apply_migrations, owner=True))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def _clients_create(args: argparse.Namespace) -> int:

    from attest.clients.service import ALL_SCOPES, generate_key, register  # noqa: PLC0415
    from attest.clock import utc_now  # noqa: PLC0415
    from attest.db.migrations import apply_migrations  # noqa: PLC0415

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if not scopes or unknown:
        print(f"attest: unknown scopes {unknown}; known: {', '.join(ALL_SCOPES)}", file=sys.stderr)
        return 2
    settings = _settings(args)
    key = generate_key()

    async def work(conn: Any) -> Any:
        await apply_migrations(conn)
        async with conn.transaction():
            return await register(
                conn,
                key=key,
                name=args.name,
                tenant=args.tenant,
                scopes=scopes,
                is_admin=False,
                created_by=None,
                now=utc_now(),
                via="cli",
            )

    client_id = asyncio.run(_with_database(settings, work, owner=True))
    out = {
        "id": str(client_id),
        "name": args.name,
        "tenant": args.tenant,
        "scopes": scopes,
        "api_key": key.api_key,
    }
    print(json.dumps(out, indent=2))
    return 0


def _client_json(record: Any) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(record.id),
        "name": record.name,
        "tenant": record.tenant,
        "scopes": record.scopes,
        "admin": record.is_admin,
        "key_id": record.key_id,
        "created_at": when(record.created_at),
        "created_by": str(record.created_by) if record.created_by else None,
        "expires_at": when(record.expires_at),
        "revoked_at": when(record.disabled_at),
        "status": "revoked" if record.disabled_at else "active",
    }


def _client_id(value: str) -> Any:
    import uuid  # noqa: PLC0415

    try:
        return uuid.UUID(value)
    except ValueError:
        raise SystemExit(f"attest: not a client id: {value!r}") from None


def _clients_list(args: argparse.Namespace) -> int:
    from attest.clients.service import list_clients  # noqa: PLC0415

    async def work(conn: Any) -> Any:
        return await list_clients(conn, args.tenant)

    records = _keys_run(_settings(args), work)
    print(json.dumps([_client_json(r) for r in records], indent=2))
    return 0


def _clients_revoke(args: argparse.Namespace) -> int:
    from attest.clients.service import revoke  # noqa: PLC0415
    from attest.clock import utc_now  # noqa: PLC0415
    from attest.errors import AttestError  # noqa: PLC0415

    client_id = _client_id(args.client_id)

    async def work(conn: Any) -> Any:
        async with conn.transaction():
            return await revoke(conn, client_id, by=None, now=utc_now(), via="cli")

    try:
        record = _keys_run(_settings(args), work)
    except AttestError as exc:
        print(f"attest: {exc.detail}", file=sys.stderr)
        return 1
    print(json.dumps(_client_json(record), indent=2))
    return 0


def _clients_rotate(args: argparse.Namespace) -> int:
    from attest.clients.service import rotate  # noqa: PLC0415
    from attest.clock import utc_now  # noqa: PLC0415
    from attest.errors import AttestError  # noqa: PLC0415

    client_id = _client_id(args.client_id)

    async def work(conn: Any) -> Any:
        async with conn.transaction():
            return await rotate(
                conn,
                client_id,
                grace_seconds=args.grace_seconds,
                by=None,
                now=utc_now(),
                via="cli",
            )

    try:
        rotated = _keys_run(_settings(args), work)
    except AttestError as exc:
        print(f"attest: {exc.detail}", file=sys.stderr)
        return 1
    out = {
        **_client_json(rotated.client),
        "previous_key_id": rotated.previous_key_id,
        "previous_key_not_after": rotated.previous_not_after.isoformat(),
        "api_key": rotated.key.api_key,
    }
    print(json.dumps(out, indent=2))
    return 0


def _keys_run(settings: Any, work: Any) -> Any:
    from attest.db.migrations import apply_migrations  # noqa: PLC0415

    async def migrated(conn: Any) -> Any:
        await apply_migrations(conn)
        return await work(conn)

    return asyncio.run(_with_database(settings, migrated))


def _verify(args: argparse.Namespace) -> int:
    from attest.verify.cli import run  # noqa: PLC0415

    return run(args)


def _audit(args: argparse.Namespace) -> int:
    from attest.verify.audit_cli import run  # noqa: PLC0415

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attest",
        description="Eligibility attestation authority: serve the API, manage it, verify tokens.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="Serve the HTTP API (applies migrations first).")
    serve.add_argument("--host", help="Address to listen on; overrides ATTEST_HOST.")
    serve.add_argument("--port", type=int, help="Port to listen on; overrides ATTEST_PORT.")
    serve.set_defaults(func=_serve)

    migrate = commands.add_parser("migrate", help="Apply pending database migrations and exit.")
    migrate.set_defaults(func=_migrate)

    clients = commands.add_parser("clients", help="Manage API clients.")
    clients_commands = clients.add_subparsers(dest="clients_command", required=True)
    create = clients_commands.add_parser(
        "create", help="Create an API client and print its key once."
    )
    create.add_argument("--name", required=True, help="A name that says who uses the key.")
    create.add_argument("--tenant", default="default", help="The tenant the client belongs to.")
    create.add_argument(
        "--scopes",
        required=True,
        help="Comma-separated scopes, for example subjects:write,tokens:issue.",
    )
    create.set_defaults(func=_clients_create)
    listing = clients_commands.add_parser(
        "list", help="List API clients (never their keys) as JSON."
    )
    listing.add_argument("--tenant", help="Only the clients of this tenant.")
    listing.set_defaults(func=_clients_list)
    revoke = clients_commands.add_parser(
        "revoke", help="Revoke an API client: its keys are refused from now on."
    )
    revoke.add_argument("client_id", help="The id of the client to revoke.")
    revoke.set_defaults(func=_clients_revoke)
    rotate = clients_commands.add_parser(
        "rotate", help="Give an API client a new key and print it once."
    )
    rotate.add_argument("client_id", help="The id of the client whose key is rotated.")
    rotate.add_argument(
        "--grace-seconds",
        type=int,
        default=0,
        help="How long the previous key keeps working, 0 to 86400 seconds (default 0).",
    )
    rotate.set_defaults(func=_clients_rotate)

    keys = commands.add_parser("keys", help="Manage signing keys: list, rotate, revoke, history.")
    from attest.keys.cli import configure as configure_keys  # noqa: PLC0415 - stdlib only

    configure_keys(keys, lambda: _settings(argparse.Namespace()), _keys_run)

    audiences = commands.add_parser(
        "audiences", help="Suspend an audience or lift its suspension over the API."
    )
    from attest.policy.cli import configure_audiences  # noqa: PLC0415 - stdlib only at import

    configure_audiences(audiences)

    policies = commands.add_parser("policies", help="Preview a draft policy over the API.")
    from attest.policy.cli import configure_policies  # noqa: PLC0415 - stdlib only at import

    configure_policies(policies)

    subjects = commands.add_parser("subjects", help="Onboard subjects in bulk over the API.")
    from attest.subjects.cli import configure as configure_subjects  # noqa: PLC0415 - stdlib only

    configure_subjects(subjects)

    verify = commands.add_parser(
        "verify", help="Verify an eligibility token offline against published keys."
    )
    from attest.verify.cli import configure  # noqa: PLC0415 - base install only

    configure(verify)
    verify.set_defaults(func=_verify)

    audit = commands.add_parser(
        "audit", help="Check attestation receipts and the transparency log (offline first)."
    )
    from attest.verify.audit_cli import configure as configure_audit  # noqa: PLC0415

    configure_audit(audit)
    audit.set_defaults(func=_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from attest.keys.cli import attach_kid  # noqa: PLC0415 - as build_parser does
    from attest.verify.audit_cli import attach_jti  # noqa: PLC0415

    parser = build_parser()
    args = parser.parse_args(attach_kid(attach_jti(sys.argv[1:] if argv is None else argv)))
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from attest.settings import SettingsError  # noqa: PLC0415

        if isinstance(exc, SettingsError):
            print(f"attest: configuration error: {exc}", file=sys.stderr)
            return 2
        raise
    return code


if __name__ == "__main__":
    raise SystemExit(main())
