"""The app for ``uvicorn --factory _factory:app`` (settings from the environment)."""

from __future__ import annotations

from litestar import Litestar

from attest.app import create_app
from attest.settings import load_settings


def app() -> Litestar:
    return create_app(load_settings())
