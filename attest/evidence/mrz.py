"""Machine-readable zones of ICAO Doc 9303 travel documents: TD1, TD2 and TD3. Pure.

:func:`check_mrz` takes the MRZ text and the current time and returns every field it could
read together with one :class:`MrzReason` per failed rule; nothing here does I/O or reads
the clock. Section numbers refer to ICAO Doc 9303, eighth edition (2021):

- Part 3, 4.9: check digits (weights 7, 3, 1; ``<`` is 0, ``A``..``Z`` are 10..35).
- Part 3, 5: issuing state and nationality codes (see :mod:`attest.evidence.countries`).
- Part 4, 4.2.2: TD3 (passports), 2 lines of 44 characters.
- Part 5, 4.2.2: TD1 (ID cards), 3 lines of 30 characters, with the long document number
  rule (4.2.4: a number over 9 characters continues in the optional data).
- Part 6, 4.2.2: TD2, 2 lines of 36 characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from attest.evidence.countries import lookup

__all__ = ["MrzReason", "MrzResult", "check_digit", "check_mrz"]

_LINE_RE: Final = re.compile(r"[A-Z0-9<]*")
_SEX: Final = frozenset({"M", "F", "X", "<"})


def _value(char: str) -> int:
    if char.isdigit():
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == "<":
        return 0
    raise ValueError(f"{char!r} is not an MRZ character")


def check_digit(data: str) -> str:
    """The Doc 9303 Part 3, 4.9 check digit of ``data`` (weights 7, 3, 1 repeating)."""
    weights = (7, 3, 1)
    return str(sum(_value(c) * weights[i % 3] for i, c in enumerate(data)) % 10)


@dataclass(frozen=True, slots=True)
class MrzReason:
    """One failed rule: a stable ``code``, the MRZ ``field`` it concerns, a sentence."""

    code: str
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class MrzResult:
    """What the MRZ says and which rules failed. Valid when ``reasons`` is empty.

    ``document_number`` is personal data: callers keep only a keyed hash of it.
    """

    format: str | None
    document_code: str | None = None
    issuing_state: str | None = None
    nationality: str | None = None
    citizenship: str | None = None  # ISO 3166-1 alpha-2, None if the code names no state
    document_number: str | None = None
    birth_date: date | None = None
    expiry_date: date | None = None
    reasons: list[MrzReason] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.reasons


@dataclass(slots=True)
class _Fields:
    """The raw fields of one MRZ, cut out by position, and what the check digits cover."""

    format: str
    document_code: str
    issuing_state: str
    name: str
    number: str
    number_digit: str
    nationality: str
    birth: str
    birth_digit: str
    sex: str
    expiry: str
    expiry_digit: str
    optional: str | None  # covered by its own check digit (TD3 only)
    optional_digit: str | None
    composite: str
    composite_digit: str
    number_extended: bool = False


def _cut_td3(l1: str, l2: str) -> _Fields:
    # Part 4, 4.2.2.
    return _Fields(
        "TD3", l1[0:2], l1[2:5], l1[5:44], l2[0:9], l2[9], l2[10:13], l2[13:19], l2[19],
        l2[20], l2[21:27], l2[27], l2[28:42], l2[42],
        l2[0:10] + l2[13:20] + l2[21:43], l2[43],
    )  # fmt: skip


def _cut_td2(l1: str, l2: str) -> _Fields:
    # Part 6, 4.2.2: the optional data (28..34) has no check digit of its own.
    return _Fields(
        "TD2", l1[0:2], l1[2:5], l1[5:36], l2[0:9], l2[9], l2[10:13], l2[13:19], l2[19],
        l2[20], l2[21:27], l2[27], None, None,
        l2[0:10] + l2[13:20] + l2[21:35], l2[35],
    )  # fmt: skip


def _cut_td1(l1: str, l2: str, l3: str) -> _Fields:
    # Part 5, 4.2.2; composite over line 1 from position 5, and line 2 parts.
    number, number_digit, extended = l1[5:14], l1[14], False
    optional1 = l1[15:30]
    if number_digit == "<" and optional1.strip("<"):
        # Part 5, 4.2.4: a number longer than 9 characters continues in the optional
        # data; its last character there is the check digit, followed by a filler.
        rest = optional1.split("<", 1)[0]
        number, number_digit, extended = number + rest[:-1], rest[-1:] or "<", True
    return _Fields(
        "TD1", l1[0:2], l1[2:5], l3, number, number_digit, l2[15:18], l2[0:6], l2[6],
        l2[7], l2[8:14], l2[14], None, None,
        l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29], extended,
    )  # fmt: skip


def _split(text: str) -> tuple[list[str], list[MrzReason]]:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    shapes = {3: (30,), 2: (36, 44)}
    if len(lines) not in shapes or len({len(line) for line in lines}) != 1:
        return lines, [
            MrzReason(
                "mrz_format",
                "$.mrz",
                "An MRZ is 3 lines of 30 (TD1), 2 of 36 (TD2) or 2 of 44 (TD3) characters.",
            )
        ]
    if len(lines[0]) not in shapes[len(lines)]:
        return lines, [
            MrzReason("mrz_format", "$.mrz", f"Lines of {len(lines[0])} characters fit no format.")
        ]
    bad = [n for n, line in enumerate(lines, 1) if _LINE_RE.fullmatch(line) is None]
    if bad:
        return lines, [
            MrzReason(
                "mrz_charset",
                "$.mrz",
                f"Line {bad[0]} has characters outside A-Z, 0-9 and '<'.",
            )
        ]
    return lines, []


def _date(raw: str) -> tuple[int, int, int] | None:
    if not raw.isdigit():
        return None
    return int(raw[0:2]), int(raw[2:4]), int(raw[4:6])


def _birth_date(raw: str, today: date) -> date | None:
    parts = _date(raw)
    if parts is None:
        return None
    yy, mm, dd = parts
    # Two-digit year: the latest century that does not put the birth in the future.
    for century in (2000, 1900):
        try:
            candidate = date(century + yy, mm, dd)
        except ValueError:
            return None
        if candidate <= today or century == 1900:
            return candidate
    return None  # pragma: no cover - the loop always returns


def _expiry_date(raw: str, today: date) -> date | None:
    parts = _date(raw)
    if parts is None:
        return None
    yy, mm, dd = parts
    # Two-digit year: 20YY unless that lies more than 50 years ahead (then 19YY, expired).
    century = 2000 if 2000 + yy <= today.year + 50 else 1900
    try:
        return date(century + yy, mm, dd)
    except ValueError:
        return None


def _document_reasons(f: _Fields) -> list[MrzReason]:
    out: list[MrzReason] = []
    # Document code (Part 3, 4.2.2): P for passports (TD3); A, C or I for TD1/TD2 cards.
    allowed = "P" if f.format == "TD3" else "ACI"
    if f.document_code[0] not in allowed:
        message = f"A {f.format} document code starts with one of: {', '.join(allowed)}."
        out.append(MrzReason("document_code", "document_code", message))
    if lookup(f.issuing_state) is None:
        message = "Unknown issuing state code."
        out.append(MrzReason("issuing_state_unknown", "issuing_state", message))
    if f.name.strip("<") == "" or any(c.isdigit() for c in f.name):
        out.append(MrzReason("name_malformed", "name", "The name field is empty or has digits."))
    if f.number.strip("<") == "":
        out.append(MrzReason("document_number_missing", "document_number", "No document number."))
    return out


def _personal_reasons(
    f: _Fields, birth: date | None, expiry: date | None, today: date
) -> list[MrzReason]:
    out: list[MrzReason] = []
    if lookup(f.nationality) is None:
        out.append(MrzReason("nationality_unknown", "nationality", "Unknown nationality code."))
    if birth is None:
        out.append(MrzReason("birth_date_invalid", "birth_date", "The birth date is no date."))
    out.extend(_digit_reasons(f, "birth_date"))
    if f.sex not in _SEX:
        out.append(MrzReason("sex_invalid", "sex", "The sex field is not M, F, X or '<'."))
    if expiry is None:
        out.append(MrzReason("expiry_date_invalid", "expiry_date", "The expiry is no date."))
    out.extend(_digit_reasons(f, "expiry_date"))
    if expiry is not None and expiry < today:
        out.append(MrzReason("document_expired", "expiry_date", "The document has expired."))
    if birth is not None and expiry is not None and expiry <= birth:
        message = "The expiry is not after the birth."
        out.append(MrzReason("dates_inconsistent", "expiry_date", message))
    return out


def _digit_reasons(f: _Fields, which: str) -> list[MrzReason]:
    """The check digit rule for one field (Part 3, 4.9), as zero or one reason."""
    covered = {
        "document_number": (f.number, f.number_digit),
        "birth_date": (f.birth, f.birth_digit),
        "expiry_date": (f.expiry, f.expiry_digit),
        "optional_data": (f.optional, f.optional_digit),
        "composite": (f.composite, f.composite_digit),
    }
    data, digit = covered[which]
    if data is None or digit is None:
        return []  # this format has no such check digit
    if which == "optional_data" and data.strip("<") == "" and digit in ("<", "0"):
        return []  # Part 4, 4.2.2.2: empty optional data may carry '<' or 0
    if digit == check_digit(data):
        return []
    what = which.replace("_", " ")
    return [
        MrzReason(f"{which}_check_digit", which, f"The check digit of the {what} does not match.")
    ]


def check_mrz(text: str, now: datetime) -> MrzResult:
    """Check an MRZ at ``now`` (timezone-aware): one reason per failed rule, in MRZ order."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    lines, reasons = _split(text)
    if reasons:
        return MrzResult(format=None, reasons=reasons)
    if len(lines) == 3:
        f = _cut_td1(*lines)
    elif len(lines[0]) == 36:
        f = _cut_td2(*lines)
    else:
        f = _cut_td3(*lines)
    today = now.date()
    birth = _birth_date(f.birth, today)
    expiry = _expiry_date(f.expiry, today)
    out = _document_reasons(f)
    out.extend(_digit_reasons(f, "document_number"))
    out.extend(_personal_reasons(f, birth, expiry, today))
    out.extend(_digit_reasons(f, "optional_data"))
    out.extend(_digit_reasons(f, "composite"))
    issuer = lookup(f.issuing_state)
    nation = lookup(f.nationality)
    return MrzResult(
        format=f.format,
        document_code=f.document_code.rstrip("<"),
        issuing_state=issuer.code if issuer else None,
        nationality=nation.code if nation else None,
        citizenship=nation.alpha2 if nation else None,
        document_number=f.number.rstrip("<"),
        birth_date=birth,
        expiry_date=expiry,
        reasons=out,
    )
