"""Policy documents: schema and semantic validation, digest, and the built-in policies.

Pure apart from reading the package's own data files (schemas and built-in policies),
which are part of the installed code.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final, cast

import jsonschema
import rfc8785
from jsonschema import exceptions as jsonschema_exceptions

from attest.evidence.attributes import ISO_3166_ALPHA2

__all__ = [
    "BUILTIN_POLICY_NAMES",
    "MAX_RULES",
    "MAX_RULE_DEPTH",
    "PolicyDocumentError",
    "builtin_policies",
    "effective_at",
    "load_schema",
    "policy_digest",
    "validate_policy_document",
]

#: Deepest allowed rule nesting; the rule at ``$.rule`` has depth 1.
MAX_RULE_DEPTH: Final = 8
#: Most rules (of every kind, ``$.rule`` included) a document may hold.
MAX_RULES: Final = 256
#: Built-in policies shipped in schema/policies/, in the order builtin_policies() returns.
BUILTIN_POLICY_NAMES: Final = ("us-nationals-only", "us-persons")

# Bound on generic JSON nesting, checked before the schema so that a hostile, deeply
# nested document cannot exhaust the recursion of the schema validator. A valid document
# nests at most 2 * MAX_RULE_DEPTH + 2 containers deep.
_MAX_JSON_DEPTH: Final = 2 * MAX_RULE_DEPTH + 8
_CONSTRAINT_KEYS: Final = ("min_assurance", "max_evidence_age_days")


class PolicyDocumentError(ValueError):
    """A policy document is invalid. ``path`` is the JSON path of the offending member."""

    code = "invalid_policy"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _schema_file(*parts: str) -> Any:
    return resources.files("attest._schema").joinpath(*parts)


def load_schema(name: str) -> dict[str, Any]:
    """Load a JSON Schema from schema/json/ by file name, e.g. ``policy.schema.json``."""
    if "/" in name or "\\" in name or not name.endswith(".json"):
        raise ValueError(f"not a schema file name: {name!r}")
    loaded = json.loads(_schema_file("json", name).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise TypeError(f"schema {name!r} is not a JSON object")
    return loaded


def _is_strict_integer(_checker: object, instance: object) -> bool:
    # JSON Schema counts 1.0 as an integer; a policy version or a day count must be a real
    # integer so that what is stored, digested and put in tokens is the same value.
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _policy_validator() -> jsonschema.protocols.Validator:
    schema = load_schema("policy.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer)
    # jsonschema.validators.extend is not annotated in types-jsonschema.
    cls = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator, type_checker=checker
    )
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def _json_depth_exceeds(doc: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def _error_message(error: jsonschema_exceptions.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator in ("minProperties", "maxProperties") and "attribute" in schema.get(
        "properties", {}
    ):
        return "an attribute rule needs exactly one of any_of and none_of"
    return error.message


def _error_path(error: jsonschema_exceptions.ValidationError) -> str:
    path = error.json_path
    instance = error.instance
    # Point at the member itself rather than at the object that holds it.
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(str(key) for key in instance if key not in known)
        if extra:
            return f"{path}.{extra[0]}"
    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        return f"{path}.{instance}"
    return path


def _rules(rule: Mapping[str, Any], path: str, depth: int) -> Iterator[tuple[Any, str, int]]:
    yield rule, path, depth
    for kind in ("all", "any"):
        for index, child in enumerate(rule.get(kind, ())):
            yield from _rules(child, f"{path}.{kind}[{index}]", depth + 1)


def _requires_evidence(rule: Mapping[str, Any]) -> bool:
    """True when the rule can only be satisfied through at least one satisfied any_of rule."""
    if "any_of" in rule:
        return True
    if "all" in rule:
        return any(_requires_evidence(child) for child in rule["all"])
    if "any" in rule:
        return all(_requires_evidence(child) for child in rule["any"])
    return False


def _semantic_checks(doc: Mapping[str, Any]) -> None:
    # A rule tree is walked only after the schema accepted it, and the JSON depth bound
    # keeps this recursion shallow.
    for count, (rule, path, depth) in enumerate(_rules(doc["rule"], "$.rule", 1), start=1):
        if count > MAX_RULES:
            raise PolicyDocumentError(path, f"a policy may hold at most {MAX_RULES} rules")
        if depth > MAX_RULE_DEPTH:
            raise PolicyDocumentError(path, f"rules may nest at most {MAX_RULE_DEPTH} deep")
        if rule.get("attribute") == "citizenship":
            key = "any_of" if "any_of" in rule else "none_of"
            for index, code in enumerate(rule[key]):
                if code not in ISO_3166_ALPHA2:
                    raise PolicyDocumentError(
                        f"{path}.{key}[{index}]",
                        f"{code!r} is not an assigned ISO 3166-1 alpha-2 code",
                    )
        if "all" in rule:
            has_evidence = _requires_evidence(rule)
            for index, child in enumerate(rule["all"]):
                if any(k in child for k in _CONSTRAINT_KEYS) and not has_evidence:
                    raise PolicyDocumentError(
                        f"{path}.all[{index}]",
                        "this constraint has no effect: its 'all' has no any_of rule",
                    )
        if "any" in rule:
            for index, child in enumerate(rule["any"]):
                if any(k in child for k in _CONSTRAINT_KEYS):
                    raise PolicyDocumentError(
                        f"{path}.any[{index}]",
                        "min_assurance and max_evidence_age_days rules belong in an 'all'",
                    )
    if not _requires_evidence(doc["rule"]):
        raise PolicyDocumentError(
            "$.rule",
            "every way to satisfy the policy must require an attribute value (any_of)",
        )


def validate_policy_document(doc: object) -> dict[str, Any]:
    """Validate a policy document and return a deep copy of it.

    Checks the JSON Schema (schema/json/policy.schema.json) and then what a schema cannot
    express: assigned ISO 3166-1 codes, nesting depth, rule count, that the policy cannot be
    satisfied without evidence, and that constraint rules have an effect. Raises
    PolicyDocumentError for the first problem found, with its JSON path.
    """
    if _json_depth_exceeds(doc, _MAX_JSON_DEPTH):
        raise PolicyDocumentError("$", "the document nests too deeply")
    error = jsonschema_exceptions.best_match(_policy_validator().iter_errors(cast(Any, doc)))
    if error is not None:
        raise PolicyDocumentError(_error_path(error), _error_message(error))
    if not isinstance(doc, dict):  # the schema says "type": "object"; this narrows the type
        raise PolicyDocumentError("$", "a policy document must be an object")
    _semantic_checks(doc)
    if "effective_at" in doc:
        effective_at(doc)  # raises for anything but an RFC 3339 instant with an offset
    return copy.deepcopy(doc)


def effective_at(doc: Mapping[str, Any]) -> datetime | None:
    """The instant a document governs from (``effective_at``), or None: at once."""
    value = doc.get("effective_at")
    if value is None:
        return None
    parsed = None
    if isinstance(value, str) and "T" in value.upper():
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PolicyDocumentError(
            "$.effective_at", "must be an RFC 3339 date and time with an offset"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise PolicyDocumentError("$.effective_at", "out of range") from None


def policy_digest(doc: Mapping[str, Any]) -> str:
    """Lowercase hex SHA-256 of the RFC 8785 (JCS) canonical form of the document.

    Raises PolicyDocumentError when the document has no canonical form (a float that is
    not finite, an integer beyond 2**53, a non-string key): such a document is not JSON.
    """
    try:
        canonical = rfc8785.dumps(dict(doc))
    except rfc8785.CanonicalizationError as exc:
        raise PolicyDocumentError("$", f"no RFC 8785 canonical form: {exc}") from exc
    return hashlib.sha256(canonical).hexdigest()


def builtin_policies() -> list[dict[str, Any]]:
    """The built-in policy documents (validated), in BUILTIN_POLICY_NAMES order."""
    policies = []
    for name in BUILTIN_POLICY_NAMES:
        raw = json.loads(_schema_file("policies", f"{name}.json").read_text(encoding="utf-8"))
        doc = validate_policy_document(raw)
        if doc["name"] != name:
            raise PolicyDocumentError("$.name", f"built-in file {name}.json names {doc['name']}")
        policies.append(doc)
    return policies
