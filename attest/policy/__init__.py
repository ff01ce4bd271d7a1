"""Eligibility policies: documents (validation, digest, built-ins) and pure evaluation."""

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
