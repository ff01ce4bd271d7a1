"""Attribute vocabulary for evidence and policies, and pure validation of claimed attributes.

Nothing here does I/O: these are plain functions over plain data, shared by the policy
engine, the evidence service and the HTTP layer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from attest.verify.contract import ASSURANCE_LEVELS, assurance_rank

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

#: Identity assurance levels of NIST SP 800-63A, weakest first.

#: Attribute names that evidence can establish and policies can test.
ATTRIBUTES: Final = ("citizenship", "us_person_status")

#: Values of ``us_person_status``. The first four are the "U.S. person" categories of
#: 15 CFR 772.1 (EAR); ``none`` is a person in none of them.
US_PERSON_STATUSES: Final = (
    "us_citizen",
    "us_national",
    "lawful_permanent_resident",
    "protected_individual",
    "none",
)

#: Document types an operator can record for a ``manual_review``.
DOCUMENT_TYPES: Final = (
    "us_passport",
    "us_passport_card",
    "foreign_passport",
    "national_id_card",
    "permanent_resident_card",
    "naturalization_certificate",
    "birth_certificate",
    "consular_report_of_birth_abroad",
    "other",
)

#: Every officially assigned ISO 3166-1 alpha-2 code (249 codes). User-assigned codes
#: (such as XK, used by some issuers for Kosovo), exceptionally and transitionally reserved
#: codes (UK, EU, AN, ...) are deliberately absent: they are not nationalities a policy can
#: name unambiguously.
# A grid of codes is easier to audit against the ISO table than a 249-item list literal.
ISO_3166_ALPHA2: Final = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET
    FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
    HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT
    JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ
    OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA
    RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
    UA UG UM US UY UZ
    VA VC VE VG VI VN VU
    WF WS
    YE YT
    ZA ZM ZW
    """.split()  # noqa: SIM905 -- see above
)

_ALPHA2_SHAPE: Final = re.compile(r"[A-Z]{2}")
_US_NATIONAL_STATUSES: Final = frozenset({"us_citizen", "us_national"})


def _citizenship_problems(value: object) -> list[tuple[str, str]]:
    path = "$.citizenship"
    if not isinstance(value, list):
        return [(path, "must be a list of ISO 3166-1 alpha-2 codes")]
    if not value:
        return [(path, "must not be empty")]
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, code in enumerate(value):
        item = f"{path}[{index}]"
        if not isinstance(code, str):
            problems.append((item, "must be a string"))
        elif _ALPHA2_SHAPE.fullmatch(code) is None:
            problems.append((item, "must be an upper-case ISO 3166-1 alpha-2 code"))
        elif code not in ISO_3166_ALPHA2:
            problems.append((item, f"{code!r} is not an assigned ISO 3166-1 alpha-2 code"))
        elif code in seen:
            problems.append((item, f"duplicate code {code!r}"))
        else:
            seen.add(code)
    return problems


def validate_claimed_attributes(attributes: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return the structural problems of a claimed attribute object as (JSON path, problem).

    Paths are relative to the attribute object (``$`` is the object itself). An empty list
    means the object is well formed: at least one known attribute, ``citizenship`` a
    non-empty list of unique, upper-case, assigned ISO 3166-1 alpha-2 codes, and
    ``us_person_status`` one of US_PERSON_STATUSES.
    """
    if not isinstance(attributes, Mapping):
        return [("$", "must be an object")]
    if not attributes:
        return [("$", f"must name at least one of: {', '.join(ATTRIBUTES)}")]
    problems: list[tuple[str, str]] = []
    for name in sorted(attributes, key=str):
        if name not in ATTRIBUTES:
            problems.append((f"$.{name}", "unknown attribute"))
    if "citizenship" in attributes:
        problems.extend(_citizenship_problems(attributes["citizenship"]))
    if "us_person_status" in attributes:
        status = attributes["us_person_status"]
        if not isinstance(status, str) or status not in US_PERSON_STATUSES:
            problems.append(
                ("$.us_person_status", f"must be one of: {', '.join(US_PERSON_STATUSES)}")
            )
    return problems


def consistency_reasons(attributes: Mapping[str, Any], document_type: str) -> list[str]:
    """Return why well-formed claimed attributes contradict themselves or their document.

    A non-empty result means a manual review must be *rejected* (the claim is well formed
    but cannot be true), as opposed to *malformed* input. Preconditions: the attributes pass
    validate_claimed_attributes and document_type is one of DOCUMENT_TYPES; otherwise
    ValueError is raised. Only rules that hold without exception are applied:

    1. us_person_status ``us_citizen`` with a citizenship list that lacks ``US``: a US
       citizen holds US nationality.
    2. ``US`` in citizenship with a status other than ``us_citizen``/``us_national``: a
       person of US nationality is a US citizen or national, never an LPR, a protected
       individual (8 U.S.C. 1324b(a)(3) covers aliens only) or a non-US person.
    3. ``us_passport`` and ``us_passport_card`` are issued only to US citizens and
       non-citizen nationals (22 U.S.C. 212): the citizenship list must include ``US`` and
       the status must be ``us_citizen`` or ``us_national``.
    4. ``naturalization_certificate`` and ``consular_report_of_birth_abroad`` evidence US
       citizenship: the same requirements as rule 3.
    5. ``permanent_resident_card`` is issued only to aliens: the status must be
       ``lawful_permanent_resident`` and the citizenship list must not include ``US``.
    6. ``foreign_passport`` cannot evidence US nationality: the status must not be
       ``us_citizen``/``us_national`` and the citizenship list must include a non-US code.

    Rules only test attributes that are present. The result is in rule order.
    """
    if validate_claimed_attributes(attributes):
        raise ValueError("attributes are malformed; call validate_claimed_attributes first")
    if document_type not in DOCUMENT_TYPES:
        raise ValueError(f"unknown document type {document_type!r}")
    citizenship: list[str] | None = attributes.get("citizenship")
    status: str | None = attributes.get("us_person_status")
    has_us = citizenship is not None and "US" in citizenship
    reasons: list[str] = []
    # Rule 1.
    if status == "us_citizen" and citizenship is not None and not has_us:
        reasons.append("A US citizen must have US in the citizenship list.")
    # Rule 2.
    if has_us and status is not None and status not in _US_NATIONAL_STATUSES:
        reasons.append(f"US citizenship contradicts the US person status {status}.")
    # Rules 3 and 4.
    if document_type in (
        "us_passport",
        "us_passport_card",
        "naturalization_certificate",
        "consular_report_of_birth_abroad",
    ):
        if citizenship is not None and not has_us:
            reasons.append(f"A {document_type} cannot support a citizenship list without US.")
        if status is not None and status not in _US_NATIONAL_STATUSES:
            reasons.append(f"A {document_type} cannot support the US person status {status}.")
    # Rule 5.
    if document_type == "permanent_resident_card":
        if status is not None and status != "lawful_permanent_resident":
            reasons.append(f"A permanent_resident_card cannot support the status {status}.")
        if has_us:
            reasons.append("A permanent_resident_card cannot support US citizenship.")
    # Rule 6.
    if document_type == "foreign_passport":
        if status in _US_NATIONAL_STATUSES:
            reasons.append(f"A foreign_passport cannot support the US person status {status}.")
        if citizenship is not None and all(code == "US" for code in citizenship):
            reasons.append("A foreign_passport must support a non-US citizenship.")
    return reasons
