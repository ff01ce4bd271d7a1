"""The log read by an existing C2SP/sumdb client: Go's golang.org/x/mod/sumdb/note and tlog.

tests/log/gocheck verifies the checkpoint with note.Open, reads the hash tiles through
tlog.TileHashReader (which authenticates every tile against the signed tree) and checks
inclusion and consistency proofs computed by Go from those tiles.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785

GO_SOURCE = Path(__file__).parent / "gocheck"
GOPATH = Path("/usr/share/gocode")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gocheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None or not (GOPATH / "src/golang.org/x/mod/sumdb/tlog").exists():
        pytest.skip(
            "Go or golang.org/x/mod is absent: install Debian golang-go golang-golang-x-mod-dev"
        )
    out = tmp_path_factory.mktemp("go") / "gocheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(GOPATH),
        "GOCACHE": str(out.parent / "cache"),
    }
    subprocess.run(
        ["go", "build", "-o", str(out), "."],
        cwd=GO_SOURCE,
        env=env,
        check=True,
        capture_output=True,
    )
    return out


def _rows(world: Any) -> list[Any]:
    async def read(conn: Any) -> list[Any]:
        return list(
            await conn.fetch(
                "SELECT * FROM audit_events WHERE log_index IS NOT NULL ORDER BY log_index"
            )
        )

    rows: list[Any] = world.run(read)
    return rows


def _leaf(row: Any) -> bytes:
    return rfc8785.dumps(
        {
            "event_id": str(row["event_id"]),
            "type": row["type"],
            "occurred_at": row["occurred_at"].isoformat(),
            "actor": str(row["actor"]) if row["actor"] else None,
            "tenant": row["tenant"],
            "subject_id": str(row["subject_id"]) if row["subject_id"] else None,
            "data": row["data"],
        }
    )


def _wait_checkpoint(server: Any, size: int) -> list[str]:
    import time

    deadline = time.monotonic() + 15
    while True:
        lines = httpx.get(server.base_url + "/v1/log/checkpoint").text.split("\n")
        if len(lines) > 2 and lines[1].isdigit() and int(lines[1]) >= size:
            return lines
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_go_sumdb_client_reads_the_log(world: Any, gocheck: Path) -> None:
    server = world.start()
    vkey = httpx.get(server.base_url + "/.well-known/attest-configuration").json()["log"]["vkey"]
    world.add_events(300)
    old = _wait_checkpoint(server, 300)
    world.add_events(250)  # the newer tree crosses the second full tile
    _wait_checkpoint(server, int(old[1]) + 250)
    rows = _rows(world)
    picks = [0, 1, 255, 256, 299, len(rows) - 1]
    stdin = "".join(f"{i} {_leaf(rows[i]).hex()}\n" for i in picks)
    args = [str(gocheck), "-url", server.base_url, "-vkey", vkey]
    ok = subprocess.run(
        [*args, "-old-size", old[1], "-old-hash", old[2]],
        input=stdin, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split()[0] == "ok"
    assert ok.stdout.split()[2] == str(len(picks))

    # A changed leaf, a forged old root, another key: Go refuses each.
    changed = _leaf(rows[5]) + b" "
    bad_leaf = subprocess.run(
        args, input=f"5 {changed.hex()}\n", capture_output=True, text=True, check=False
    )
    assert bad_leaf.returncode == 1
    forged = base64.b64encode(b"\1" * 32).decode()
    bad_old = subprocess.run(
        [*args, "-old-size", old[1], "-old-hash", forged],
        input="", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad_old.returncode == 1
    assert "CheckTree" in bad_old.stderr
