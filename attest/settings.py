"""Settings, built once from ``ATTEST_*`` variables (and an optional TOML file) and passed in.

Nothing here runs at import time: :func:`load_settings` is called by ``main`` or by tests,
and the frozen :class:`Settings` is handed to ``create_app``.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from attest.verify.contract import HARD_MAX_TOKEN_LIFETIME

__all__ = [
    "HARD_MAX_TOKEN_LIFETIME",
    "Settings",
    "SettingsError",
    "load_settings",
    "longest_token_lifetime",
]

# HARD_MAX_TOKEN_LIFETIME (seconds): no audience may ask for a token that lives longer, and
# the verifier rejects longer lifetimes. Defined once in the token contract, named here too.

API_KEY_RE = re.compile(r"^attest_[a-z0-9]{16}_[a-z0-9]{52}$")

# Variables read by tooling around the service rather than by the service itself.
_NOT_SETTINGS = frozenset({"ATTEST_CONFIG", "ATTEST_TEST_DATABASE_URL"})


def longest_token_lifetime(retiring_window: int, leeway: int) -> int:
    """The longest token lifetime (seconds) the keys can honour: a retiring key stays
    published for the retiring window, and verifiers accept a token up to the leeway after
    its ``exp``, so every token must expire by window - leeway (DESIGN.md, "Keys"). The one
    statement of this rule: settings, start-up and audience binding all ask it."""
    return retiring_window - leeway


class SettingsError(ValueError):
    """A setting is unknown or invalid; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Service configuration. Every default is documented with its unit."""

    #: PostgreSQL URL the service connects with. None: start the embedded PostgreSQL under
    #: ``data_dir/pgdata`` (which sets up an owner and a service role itself).
    database_url: str | None = field(default=None, repr=False)
    #: PostgreSQL URL of the role that owns the tables and runs the migrations. None: the
    #: ``database_url`` role does both, with a start-up warning (it could then rewrite the
    #: audit trail itself); set it so that the service role cannot.
    migration_database_url: str | None = field(default=None, repr=False)
    #: Address to listen on.
    host: str = "127.0.0.1"
    #: TCP port to listen on.
    port: int = 8080
    #: ``iss`` of every token; verifiers compare it exactly. Default ``http://<host>:<port>``.
    issuer: str = ""
    #: Directory for local state: embedded database, generated dev secrets.
    data_dir: Path = Path(".attest")
    #: Keystore: a directory path or ``file:<path>`` (encrypted PKCS#8 files).
    keystore: str = "keys"
    #: Passphrase of the file keystore. None: generated once into ``data_dir`` (dev only).
    keystore_passphrase: str | None = field(default=None, repr=False)
    #: Secret for pairwise subject identifiers. None: generated once into ``data_dir``.
    pairwise_secret: str | None = field(default=None, repr=False)
    #: Admin API key to create on first start instead of a generated one.
    bootstrap_admin_key: str | None = field(default=None, repr=False)
    #: Default token lifetime for an audience that does not set one (seconds).
    default_token_lifetime: int = 600
    #: ``Cache-Control: max-age`` of the JWKS document (seconds).
    jwks_max_age: int = 300
    #: Largest request body accepted (bytes).
    max_body_size: int = 65_536
    #: How long verified evidence counts before it must be verified again (days).
    evidence_validity_days: int = 365
    #: From this assurance up, manual-review evidence needs a second reviewer.
    four_eyes_min_assurance: str = "IAL2"
    #: Per-tenant ``four_eyes_min_assurance``: ``tenant=level`` pairs separated by commas,
    #: level IAL1, IAL2, IAL3 or never. Tenants not named use ``four_eyes_min_assurance``.
    four_eyes_by_tenant: str = ""
    #: Re-verification period per evidence type (days), overriding ``evidence_validity_days``:
    #: ``type=days`` pairs separated by commas, e.g. ``document_mrz=730,manual_review=365``.
    evidence_validity_by_type: str = ""
    #: Key of the keyed hash (HMAC-SHA-256) of document numbers. None: derived from
    #: ``pairwise_secret`` under a label of its own.
    document_hash_secret: str | None = field(default=None, repr=False)
    #: JSON file of the identity providers each tenant trusts for ``idp_assertion``
    #: evidence (see README). None: no provider is trusted.
    idp_providers: str | None = None
    #: Most items in one ``POST /v1/subjects/batch`` request (count).
    batch_max_items: int = 1000
    #: Largest ``POST /v1/subjects/batch`` body (bytes); other bodies use ``max_body_size``.
    batch_max_body_size: int = 4_000_000
    #: Entries in one token status list (2 bits each; a multiple of 4). A new list starts
    #: when one is full. Changing it affects new lists only.
    status_list_size: int = 131_072
    #: ``ttl`` of a Status List Token and its ``Cache-Control: max-age`` (seconds); the token
    #: expires two ttls after it was signed. Revocations reach verifiers within one ttl.
    status_list_ttl: int = 60
    #: How often each instance looks for policy and audience changes whose outstanding tokens
    #: must be re-evaluated (milliseconds); one instance does each re-evaluation.
    status_reevaluation_interval_ms: int = 1000
    #: Connections in the asyncpg pool, per instance.
    db_pool_size: int = 10
    #: Longest a request waits to borrow a pool connection before it is answered 503 with
    #: Retry-After (milliseconds).
    db_pool_timeout_ms: int = 5000
    #: PostgreSQL ``statement_timeout`` of the service's pooled connections: a statement
    #: running (or waiting for a lock) longer is cancelled and answered 503 (milliseconds;
    #: 0: no limit).
    db_statement_timeout_ms: int = 10_000
    #: Log level name.
    log_level: str = "INFO"
    #: How long a console sign-in lasts (seconds), from sign-in; then the browser signs in
    #: again. Signing out, or the client's key ceasing to work, ends it sooner.
    console_session_ttl: int = 3600
    #: Algorithm of newly created signing keys: ``ES256`` or ``EdDSA`` (Ed25519).
    key_algorithm: str = "ES256"
    #: How long a key signs before a scheduled rotation replaces it (seconds); 0: never.
    key_rotation_interval: int = 90 * 86_400
    #: How long a new key is published as ``pending`` before it signs (seconds); at least
    #: ``jwks_max_age``, so every verifier's cached key set holds it before it is used.
    key_prepublish: int = 600
    #: How long a replaced key stays published as ``retiring`` (seconds); at least the
    #: longest token lifetime plus ``key_leeway``.
    key_retiring_window: int = HARD_MAX_TOKEN_LIFETIME + 60
    #: Clock skew allowed to verifiers when a key leaves the JWKS (seconds).
    key_leeway: int = 60
    #: How often each instance checks for due key transitions (milliseconds).
    key_check_interval_ms: int = 10_000
    #: Failed authentications per key id in one ``auth_failure_window`` before that key id
    #: is refused with 429 until the window ends (count).
    auth_failure_limit: int = 10
    #: The window of ``auth_failure_limit`` (seconds).
    auth_failure_window: int = 300
    #: Requests per client in one ``client_rate_window`` before 429 (count).
    client_rate_limit: int = 20_000
    #: The window of ``client_rate_limit`` (seconds).
    client_rate_window: int = 60
    #: Redis URL for the shared rate-limit counters. None: they live in PostgreSQL.
    redis_url: str | None = field(default=None, repr=False)
    #: Transparency log origin (first checkpoint line, name of the log key). Default: the
    #: issuer URL without its scheme, followed by ``/log``.
    log_origin: str = ""
    #: Shortest time between two signed log checkpoints (seconds; decimals allowed).
    log_checkpoint_interval: float = 1.0
    #: PKCS#11 keystore (``ATTEST_KEYSTORE=pkcs11``): path of the module (.so).
    pkcs11_module: str | None = None
    #: PKCS#11 keystore: label of the token holding the keys.
    pkcs11_token_label: str | None = None
    #: PKCS#11 keystore: user PIN (or ``pkcs11_pin_file``); never logged.
    pkcs11_pin: str | None = field(default=None, repr=False)
    #: PKCS#11 keystore: file whose first line is the user PIN.
    pkcs11_pin_file: str | None = None
    #: The JWKS and status lists are served from memory and dropped when a change is
    #: notified (LISTEN/NOTIFY); if a notification is lost, at most this long (milliseconds)
    #: passes before an instance checks the database again.
    published_recheck_ms: int = 1000
    #: Worker processes `attest serve` runs (each with its own pool of ``db_pool_size``
    #: connections). Default: the number of CPU cores.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: On SIGTERM, how long requests in flight may take to finish before the workers are
    #: stopped regardless (seconds); new connections are refused from the signal on.
    shutdown_grace: int = 10
    #: Log line format: ``text`` (human-readable) or ``json`` (one object per line).
    log_format: str = "text"
    #: The longest a cached API-key record, read while this instance cannot hear cache
    #: invalidations (its LISTEN connection down), is still served (milliseconds; at most
    #: 1000). With the listener up, a change reaches every instance's caches at its commit.
    cache_max_staleness_ms: int = 1000
    #: How long the cache listener waits before reconnecting after losing its connection
    #: (milliseconds).
    cache_listener_retry_ms: int = 200
    #: Group commit: the most token requests recorded in one transaction (count; 1: none).
    issue_batch_max: int = 64
    #: Group commit: how long a batch waits for more requests after its first (milliseconds;
    #: 0: it takes the requests that arrived while the previous batch was committing).
    issue_batch_window_ms: int = 0
    #: Group commit: batches recorded at the same time, each on its own connection (count).
    issue_batch_workers: int = 2

    def four_eyes_min_for(self, tenant: str) -> str:
        """The four-eyes threshold of ``tenant``: its override, else the global one."""
        return _pair_map(self.four_eyes_by_tenant, "four_eyes_by_tenant").get(
            tenant, self.four_eyes_min_assurance
        )

    def validity_days_for(self, evidence_type: str) -> int:
        """Days verified evidence of ``evidence_type`` counts before re-verification."""
        pairs = _pair_map(self.evidence_validity_by_type, "evidence_validity_by_type")
        return int(pairs.get(evidence_type, self.evidence_validity_days))

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def keystore_path(self) -> Path:
        spec = self.keystore
        return Path(spec.removeprefix("file:"))


def _parse_int(name: str, raw: object, *, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise SettingsError(f"{name} must be an integer, got {raw!r}")
    try:
        value: int = int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _parse_seconds(name: str, raw: object, *, low: float, high: float) -> float:
    if isinstance(raw, bool):
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high} seconds, got {value}")
    return value


def _env_name(field_name: str) -> str:
    return "ATTEST_" + field_name.upper()


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``environ`` (default ``os.environ``), ``ATTEST_CONFIG`` and overrides.

    Unknown ``ATTEST_*`` variables and invalid values raise :class:`SettingsError`
    naming the variable, so a typo stops start-up instead of being ignored.
    """
    env = dict(os.environ if environ is None else environ)
    known = {f.name for f in fields(Settings)}
    raw: dict[str, Any] = {}

    config_file = env.get("ATTEST_CONFIG")
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                doc = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(
                f"ATTEST_CONFIG: cannot read {config_file}: {exc.strerror}"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"ATTEST_CONFIG: {config_file} is not valid TOML: {exc}") from None
        for key, value in doc.items():
            if key not in known:
                raise SettingsError(f"ATTEST_CONFIG: unknown setting {key!r} in {config_file}")
            raw[key] = value

    for name, value in env.items():
        if not name.startswith("ATTEST_") or name in _NOT_SETTINGS:
            continue
        key = name.removeprefix("ATTEST_").lower()
        if key not in known:
            raise SettingsError(f"{name}: unknown setting (known: {', '.join(sorted(known))})")
        raw[key] = value
    raw.update(overrides)
    return _build(raw)


#: Integer settings and their bounds (inclusive).
_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "port": (1, 65535),
    "default_token_lifetime": (10, HARD_MAX_TOKEN_LIFETIME),
    "jwks_max_age": (0, 86_400),
    "max_body_size": (1024, 10_000_000),
    "evidence_validity_days": (1, 3650),
    "db_pool_size": (1, 200),
    "db_pool_timeout_ms": (10, 600_000),
    "db_statement_timeout_ms": (0, 3_600_000),
    "key_rotation_interval": (0, 10 * 365 * 86_400),
    "key_prepublish": (0, 10 * 365 * 86_400),
    "key_retiring_window": (0, 10 * 365 * 86_400),
    "key_leeway": (0, 3600),
    "key_check_interval_ms": (50, 3_600_000),
    "status_list_size": (16, 1 << 24),
    "status_list_ttl": (1, 3600),
    "status_reevaluation_interval_ms": (50, 60_000),
    "published_recheck_ms": (0, 1000),
    "workers": (1, 256),
    "shutdown_grace": (1, 3600),
    "console_session_ttl": (60, 7 * 86_400),
    "cache_max_staleness_ms": (0, 1000),
    "cache_listener_retry_ms": (10, 600_000),
    "issue_batch_max": (1, 1000),
    "issue_batch_window_ms": (0, 100),
    "issue_batch_workers": (1, 32),
}


def _build(raw: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = _env_name(key)
        if value is None or value == "":
            continue
        if key in _INT_BOUNDS:
            low, high = _INT_BOUNDS[key]
            values[key] = _parse_int(name, value, low=low, high=high)
            if key == "status_list_size" and values[key] % 4:
                raise SettingsError(f"{name} must be a multiple of 4 (2-bit entries)")
        elif key == "data_dir":
            values[key] = Path(str(value))
        else:
            values[key] = str(value)

    for name in ("database_url", "migration_database_url"):
        url = values.get(name)
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise SettingsError(f"{_env_name(name)} must be a postgresql:// URL")
    if values.get("migration_database_url") and not values.get("database_url"):
        raise SettingsError(
            "ATTEST_MIGRATION_DATABASE_URL needs ATTEST_DATABASE_URL (the service's own role); "
            "the embedded default sets up both roles itself"
        )
    level = values.get("four_eyes_min_assurance", "IAL2")
    if level not in {"IAL1", "IAL2", "IAL3", "never"}:
        raise SettingsError("ATTEST_FOUR_EYES_MIN_ASSURANCE must be IAL1, IAL2, IAL3 or never")
    log_level = str(values.get("log_level", "INFO")).upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError("ATTEST_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    values["log_level"] = log_level
    if values.get("log_format", "text") not in {"text", "json"}:
        raise SettingsError("ATTEST_LOG_FORMAT must be text or json")
    admin_key = values.get("bootstrap_admin_key")
    if admin_key is not None and not API_KEY_RE.fullmatch(admin_key):
        # Never echo the value: it is a secret.
        raise SettingsError(
            "ATTEST_BOOTSTRAP_ADMIN_KEY must have the API key format "
            "attest_<16 lowercase alphanumerics>_<52 lowercase alphanumerics>"
        )
    issuer = values.get("issuer")
    if issuer is not None and not issuer.startswith(("https://", "http://")):
        raise SettingsError("ATTEST_ISSUER must be an http(s) URL")
    if issuer is None:
        host = values.get("host", "127.0.0.1")
        port = values.get("port", 8080)
        values["issuer"] = f"http://{host}:{port}"
    keystore = values.get("keystore", "keys")
    if ":" in keystore and not keystore.startswith("file:"):
        raise SettingsError("ATTEST_KEYSTORE must be a directory path, file:<path> or pkcs11")
    _check_keys(values)
    return Settings(**_check_evidence(_check_log(_check_limits(values))))


def _check_log(values: dict[str, Any]) -> dict[str, Any]:
    """The log settings: the checkpoint interval parsed, the origin derived and checked."""
    if "log_checkpoint_interval" in values:
        values["log_checkpoint_interval"] = _parse_seconds(
            "ATTEST_LOG_CHECKPOINT_INTERVAL",
            values["log_checkpoint_interval"],
            low=0.01,
            high=3600.0,
        )
    origin: str = values.get("log_origin") or (
        values["issuer"].split("://", 1)[1].rstrip("/") + "/log"
    )
    # C2SP tlog-checkpoint and signed-note: the origin is one line without spaces or '+'.
    if not origin.isprintable() or any(c.isspace() or c == "+" for c in origin):
        raise SettingsError("ATTEST_LOG_ORIGIN must hold no spaces, '+' or control characters")
    values["log_origin"] = origin
    return values


def parse_pairs(raw: str, name: str) -> list[tuple[str, str]]:
    """``a=1,b=2`` -> ``[("a", "1"), ("b", "2")]``; SettingsError names the setting."""
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in str(raw).split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SettingsError(f"{_env_name(name)}: {item!r} is not key=value")
        pairs.append((key.strip(), value.strip()))
    return pairs


@functools.lru_cache(maxsize=32)
def _pair_map(raw: str, name: str) -> Mapping[str, str]:
    # Settings are frozen, so each map is parsed once, not once per evidence submission.
    return MappingProxyType(dict(parse_pairs(raw, name)))


def _check_evidence(values: dict[str, Any]) -> dict[str, Any]:
    """Validate the evidence and batch settings; returns ``values`` with integers parsed."""
    for key, (low, high) in {
        "batch_max_items": (1, 10_000),
        "batch_max_body_size": (1024, 50_000_000),
    }.items():
        if key in values:
            values[key] = _parse_int(_env_name(key), values[key], low=low, high=high)
    for tenant, level in parse_pairs(values.get("four_eyes_by_tenant", ""), "four_eyes_by_tenant"):
        if level not in {"IAL1", "IAL2", "IAL3", "never"}:
            raise SettingsError(
                f"ATTEST_FOUR_EYES_BY_TENANT: {tenant}={level}: level must be IAL1, IAL2, "
                "IAL3 or never"
            )
    for kind, days in parse_pairs(
        values.get("evidence_validity_by_type", ""), "evidence_validity_by_type"
    ):
        _parse_int(f"ATTEST_EVIDENCE_VALIDITY_BY_TYPE ({kind})", days, low=1, high=3650)
    return values


def _check_limits(values: dict[str, Any]) -> dict[str, Any]:
    """Parse the rate-limit settings (a limit cannot be turned off, only raised)."""
    for key, (low, high) in {
        "auth_failure_limit": (1, 1_000_000),
        "auth_failure_window": (1, 86_400),
        "client_rate_limit": (1, 100_000_000),
        "client_rate_window": (1, 86_400),
    }.items():
        if key in values:
            values[key] = _parse_int(_env_name(key), values[key], low=low, high=high)
    url = values.get("redis_url")
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("ATTEST_REDIS_URL must be a redis://, rediss:// or unix:// URL")
    return values


def _check_keys(values: dict[str, Any]) -> None:
    """Refuse key settings that would break rotation safety (DESIGN.md "Keys")."""
    defaults = Settings()

    def get(key: str) -> Any:
        return values.get(key, getattr(defaults, key))

    if get("key_algorithm") not in {"ES256", "EdDSA"}:
        raise SettingsError("ATTEST_KEY_ALGORITHM must be ES256 or EdDSA")
    if get("key_prepublish") < get("jwks_max_age"):
        raise SettingsError(
            f"ATTEST_KEY_PREPUBLISH ({get('key_prepublish')} s) must be at least "
            f"ATTEST_JWKS_MAX_AGE ({get('jwks_max_age')} s): a key must be in every "
            "verifier's cached key set before it signs"
        )
    if get("default_token_lifetime") > longest_token_lifetime(
        get("key_retiring_window"), get("key_leeway")
    ):
        raise SettingsError(
            f"ATTEST_KEY_RETIRING_WINDOW ({get('key_retiring_window')} s) must be at least "
            f"ATTEST_DEFAULT_TOKEN_LIFETIME ({get('default_token_lifetime')} s) plus "
            f"ATTEST_KEY_LEEWAY ({get('key_leeway')} s): a key must stay published until "
            "every token it signed has expired"
        )
    interval = get("key_rotation_interval")
    if interval and interval < get("key_prepublish"):
        raise SettingsError(
            f"ATTEST_KEY_ROTATION_INTERVAL ({interval} s) must be 0 (no scheduled rotation) "
            f"or at least ATTEST_KEY_PREPUBLISH ({get('key_prepublish')} s)"
        )
    if get("keystore") == "pkcs11":
        for key in ("pkcs11_module", "pkcs11_token_label"):
            if not values.get(key):
                raise SettingsError(f"{_env_name(key)} must be set when ATTEST_KEYSTORE=pkcs11")
        if bool(values.get("pkcs11_pin")) == bool(values.get("pkcs11_pin_file")):
            raise SettingsError(
                "exactly one of ATTEST_PKCS11_PIN and ATTEST_PKCS11_PIN_FILE must be set "
                "when ATTEST_KEYSTORE=pkcs11"
            )
