"""Packaging: the wheel's package list covers every package in the source tree."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "attest").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    found.add("attest._schema")
    assert found == listed


def test_base_install_depends_only_on_pyjwt_and_cryptography() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = {
        dep.split(">")[0].split("=")[0].split("<")[0].strip()
        for dep in config["project"]["dependencies"]
    }
    assert names == {"pyjwt", "cryptography"}
