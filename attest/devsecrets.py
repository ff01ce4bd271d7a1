"""Secrets for development: generated once into the data directory, never in production."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from attest.settings import Settings, SettingsError

__all__ = ["resolve_secret"]

log = logging.getLogger(__name__)


def resolve_secret(settings: Settings, value: str | None, name: str) -> str:
    """Return the configured secret, or in embedded mode one generated into ``data_dir``.

    With an external database (production) a missing secret stops start-up: a secret
    generated on one instance's disk would differ between instances.
    """
    if value:
        return value
    variable = "ATTEST_" + name.upper()
    if not settings.embedded:
        raise SettingsError(f"{variable} must be set when ATTEST_DATABASE_URL is set")
    path = Path(settings.data_dir) / name
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(generated + "\n")
    log.warning(
        "%s is not set: generated one into %s (mode 0600). Fine for development; "
        "in production set %s from your secret store.",
        variable,
        path,
        variable,
    )
    return generated
