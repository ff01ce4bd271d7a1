"""No secret of any kind reaches the log, at any level (issue 12 item 6), and a client that
leaves mid-body is a debug line, not an error with a traceback (item 9).

Two servers are watched: the session's in-process server, with every logger at DEBUG while a
whole onboarding-to-token flow runs (keys created, rotated, revoked, sent as ``?api_key=``),
and an ``attest serve`` process at ``ATTEST_LOG_LEVEL=DEBUG``, whose whole output is read.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from attest_testing.support import US_PASSPORT, Actors, LiveServer

ATTEST = str(Path(sys.executable).parent / "attest")
PROBE = "/v1/subjects/00000000-0000-4000-8000-000000000000"
# The test's own HTTP client logs the URLs it requests: that is this process, not the server.
CLIENT_LOGGERS = ("httpx", "httpcore", "hpack")
WATCHED = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "litestar", "attest", "asyncpg")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(CLIENT_LOGGERS):
            self.records.append(record)

    def text(self) -> str:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return "\n".join(formatter.format(r) for r in self.records)


@contextlib.contextmanager
def everything_at_debug() -> Iterator[Capture]:
    capture = Capture()
    loggers = [logging.getLogger(name) for name in WATCHED]
    loggers += [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = {id(lg): lg.level for lg in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    for logger in loggers[: len(WATCHED)]:
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        for logger in loggers[: len(WATCHED)]:
            logger.removeHandler(capture)
        for logger in loggers:
            logger.setLevel(levels[id(logger)])


def _secrets_of(api_key: str) -> list[str]:
    return [api_key, api_key.rsplit("_", 1)[1]]


def _assert_absent(text: str, values: list[str]) -> None:
    for value in values:
        assert value not in text, f"a secret reached the log: {value[:12]}..."


def test_no_secret_reaches_the_in_process_log(live: LiveServer, actors: Actors) -> None:
    with everything_at_debug() as capture:
        operator = actors.client(
            "subjects:write", "subjects:read", "evidence:write", "tokens:issue", "clients:admin"
        )
        reviewer_key = actors.key("evidence:review", "subjects:read")
        subject = operator.post("/v1/subjects", json={"external_ref": "log-1"}).json()
        evidence = operator.post(f"/v1/subjects/{subject['id']}/evidence", json=US_PASSPORT)
        with live.client(reviewer_key) as reviewer:
            assert reviewer.post(f"/v1/evidence/{evidence.json()['id']}/approvals").is_success
        token = operator.post(
            "/v1/tokens", json={"subject_id": subject["id"], "audience": "model:fable-5"}
        )
        assert token.status_code == 201, token.text
        made = operator.post("/v1/clients", json={"name": "x", "scopes": ["subjects:read"]}).json()
        rotated = operator.post(f"/v1/clients/{made['id']}/keys", json={"grace_seconds": 0})
        keys = [live.admin_key, reviewer_key, made["api_key"], rotated.json()["api_key"]]
        with httpx.Client(base_url=live.base_url) as anonymous:
            for key in keys:
                assert anonymous.get(PROBE, params={"api_key": key}).status_code == 401
                wrong = key[:-4] + "aaaa"
                bad = anonymous.get(PROBE, headers={"Authorization": f"Bearer {wrong}"})
                assert bad.status_code == 401
        operator.post(f"/v1/clients/{made['id']}/revocations")
        time.sleep(0.2)  # the access log line is written after the response
    text = capture.text()
    assert "[redacted]" in text  # the access log ran, without its query strings
    values = [s for key in keys for s in _secrets_of(key)]
    values += [live.settings.keystore_passphrase, live.settings.pairwise_secret]
    values.append(token.json()["token"])
    _assert_absent(text, values)


def test_a_client_leaving_mid_body_is_a_debug_line(live: LiveServer, actors: Actors) -> None:
    key = actors.key("subjects:write")
    host, port = live.base_url.removeprefix("http://").split(":")
    with everything_at_debug() as capture:
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /v1/subjects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n".encode()
                + b'{"external_ref": "'
            )
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any("client disconnected" in r.getMessage() for r in capture.records):
                break
            time.sleep(0.05)
    found = [r for r in capture.records if "client disconnected" in r.getMessage()]
    assert found, capture.text()
    assert all(r.levelno == logging.DEBUG for r in found)
    assert not [r for r in capture.records if r.levelno >= logging.ERROR], capture.text()
    assert not [r for r in capture.records if r.exc_info], capture.text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_reaches_the_serve_output(
    fresh_database: str, tmp_path: Path, log_format: str
) -> None:
    from attest.clients.service import generate_key

    port = _free_port()
    admin_key = generate_key().api_key
    passphrase = secrets.token_urlsafe(24)
    pairwise = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env.update(
        ATTEST_DATABASE_URL=fresh_database,
        ATTEST_PORT=str(port),
        ATTEST_DATA_DIR=str(tmp_path / "data"),
        ATTEST_KEYSTORE=str(tmp_path / "keys"),
        ATTEST_KEYSTORE_PASSPHRASE=passphrase,
        ATTEST_PAIRWISE_SECRET=pairwise,
        ATTEST_BOOTSTRAP_ADMIN_KEY=admin_key,
        ATTEST_LOG_LEVEL="DEBUG",
        ATTEST_LOG_FORMAT=log_format,
        ATTEST_WORKERS="2",
    )
    proc = subprocess.Popen(
        [ATTEST, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "attest serve exited early"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "attest serve did not become ready"
            time.sleep(0.2)
        auth = {"Authorization": f"Bearer {admin_key}"}
        made = httpx.post(
            url + "/v1/clients",
            json={"name": "x", "scopes": ["subjects:read"], "tenant": "t"},
            headers=auth,
        ).json()
        for key in (admin_key, made["api_key"]):
            assert httpx.get(url + PROBE, params={"api_key": key}).status_code == 401
            assert httpx.get(url + PROBE + f"?token={key}&x=1").status_code == 401
            wrong = {"Authorization": f"Bearer {key[:-4]}aaaa", "X-Request-Id": "probe-1"}
            assert httpx.get(url + PROBE, headers=wrong).status_code == 401
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "GET /v1/subjects/" in output  # the access log was on
    assert "?[redacted]" in output
    values = [*_secrets_of(admin_key), *_secrets_of(made["api_key"]), passphrase, pairwise]
    values += [f"{k[:-4]}aaaa" for k in (admin_key, made["api_key"])]
    _assert_absent(output, values)
    if log_format == "json":
        lines = [json.loads(line) for line in output.splitlines() if line.strip()]
        assert all(isinstance(doc, dict) for doc in lines)  # every line one object
        assert all({"time", "level", "logger", "message", "request_id"} <= set(d) for d in lines)
        assert {d["level"] for d in lines} >= {"DEBUG", "INFO"}
        access = [d for d in lines if d["logger"] == "attest.access"]
        probe = [d for d in access if d["request_id"] == "probe-1"]
        assert len(probe) == 2
        assert probe[0]["method"] == "GET"
        assert probe[0]["path"] == PROBE
        assert probe[0]["status"] == 401
        assert isinstance(probe[0]["duration_ms"], float)
        assert any(d["path"] == PROBE + "?[redacted]" for d in access)


def test_the_log_filter_scrubs_credentials_at_every_level_and_in_tracebacks() -> None:
    from attest.clients.service import generate_key
    from attest.http.redaction import RedactSecrets

    key = generate_key().api_key
    passphrase = secrets.token_urlsafe(24)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactSecrets([passphrase, None, "abc"]))
    logger = logging.getLogger("attest.test-redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        logger.debug("key %s in an argument", key)
        logger.info("header Authorization: Bearer %s", "opaque-token-value")
        logger.warning("passphrase %s", passphrase)
        logger.error("secret half " + key.rsplit("_", 1)[1])
        try:
            int(f"bad key {key}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    _assert_absent(text, [*_secrets_of(key), passphrase, "opaque-token-value"])
    assert text.count("[redacted]") == 5
    assert "Bearer [redacted]" in text
    assert (
        "ValueError: invalid literal for int() with base 10: 'bad key [redacted]'" in text
    )  # the traceback is kept, scrubbed
    assert "abc" not in RedactSecrets(["abc"]).literals  # too short to search for
