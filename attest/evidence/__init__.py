"""Evidence and the attributes it establishes."""

from attest.evidence.attributes import (
    ASSURANCE_LEVELS,
    ATTRIBUTES,
    DOCUMENT_TYPES,
    ISO_3166_ALPHA2,
    US_PERSON_STATUSES,
    assurance_rank,
    consistency_reasons,
    validate_claimed_attributes,
)

__all__ = [
    "ASSURANCE_LEVELS",
    "ATTRIBUTES",
    "DOCUMENT_TYPES",
    "ISO_3166_ALPHA2",
    "US_PERSON_STATUSES",
    "assurance_rank",
    "consistency_reasons",
    "validate_claimed_attributes",
]
