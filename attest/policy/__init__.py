"""Eligibility policies: documents (validation, digest, built-ins) and pure evaluation.

The names below are loaded on first use (PEP 562), so that ``attest.policy.cli`` imports
with the base install alone (``attest verify`` must work without the server extra).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attest.policy.document import (
        BUILTIN_POLICY_NAMES,
        MAX_RULE_DEPTH,
        MAX_RULES,
        PolicyDocumentError,
        builtin_policies,
        load_schema,
        policy_digest,
        validate_policy_document,
    )
    from attest.policy.engine import REASON_CODES, Decision, Fact, Reason, evaluate

__all__ = [
    "BUILTIN_POLICY_NAMES",
    "MAX_RULES",
    "MAX_RULE_DEPTH",
    "REASON_CODES",
    "Decision",
    "Fact",
    "PolicyDocumentError",
    "Reason",
    "builtin_policies",
    "evaluate",
    "load_schema",
    "policy_digest",
    "validate_policy_document",
]

_ENGINE = frozenset({"REASON_CODES", "Decision", "Fact", "Reason", "evaluate"})


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'attest.policy' has no attribute {name!r}")
    module = importlib.import_module(
        "attest.policy.engine" if name in _ENGINE else "attest.policy.document"
    )
    return getattr(module, name)
