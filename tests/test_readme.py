"""Docs that run: the README's walk-through, executed as written against a live server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from attest_testing.support import LiveServer

ROOT = Path(__file__).resolve().parents[1]


def walkthrough_script() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Walk-through", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "the walk-through has no runnable sh block"
    return "\n".join(blocks)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl")
def test_readme_walkthrough_runs_as_written(live: LiveServer, tmp_path: Path) -> None:
    script = walkthrough_script().replace(
        ".venv/bin/attest", str(Path(sys.executable).parent / "attest")
    )
    env = {**os.environ, "ATTEST_URL": live.base_url, "ADMIN": live.admin_key}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # The denial before approval is a problem document with reasons.
    first = out.splitlines()[0]
    problem = json.loads(first)
    assert problem["status"] == 403
    assert problem["reasons"]
    assert "verified" in out.splitlines()
    # The verified claims are printed as JSON, then the auditor's view names the policy.
    assert '"aud": "model:fable-5"' in out
    assert out.strip().splitlines()[-1] == "us-nationals-only"


def test_every_setting_is_documented_in_the_readme() -> None:
    import dataclasses

    from attest.settings import Settings

    text = (ROOT / "README.md").read_text()
    missing = [
        f"ATTEST_{f.name.upper()}"
        for f in dataclasses.fields(Settings)
        if f"`ATTEST_{f.name.upper()}`" not in text
    ]
    assert missing == []
