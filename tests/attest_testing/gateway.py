"""Loads the examples/model_gateway modules by path (examples/ is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

GATEWAY_DIR = Path(__file__).resolve().parents[2] / "examples" / "model_gateway"


def load(name: str) -> ModuleType:
    """``gateway`` or ``client`` from examples/model_gateway, imported once."""
    qualified = f"model_gateway_{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, GATEWAY_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module
