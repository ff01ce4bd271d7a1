"""MRZ checks (ICAO Doc 9303) as a pure function: specimens, and one mutation per rule."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attest.evidence.attributes import ISO_3166_ALPHA2
from attest.evidence.countries import ALPHA3_TO_ALPHA2, ICAO_SPECIAL_CODES, lookup
from attest.evidence.mrz import check_digit, check_mrz

# The specimens printed in ICAO Doc 9303 (Part 4 Appendix B, Part 5 and Part 6 examples).
# Their state "UTO" (Utopia) exists only in examples; the tests put real codes in its place,
# which no check digit covers.
TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)
TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
)
TD2 = (
    "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
    "D231458907UTO7408122F1204159<<<<<<<6",
)
# Before the specimens' expiry (2012-04-15).
NOW = datetime(2010, 1, 1, tzinfo=UTC)


def _independent_digit(data: str) -> str:
    """Doc 9303 Part 3, 4.9, written again without sharing code with the implementation."""
    table = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")} | {"<": 0}
    return str(sum(table[c] * (7, 3, 1)[i % 3] for i, c in enumerate(data)) % 10)


def _real(lines: tuple[str, ...], code: str = "D<<") -> str:
    return "\n".join(line.replace("UTO", code) for line in lines)


def _put(text: str, line: int, pos: int, value: str) -> str:
    lines = text.split("\n")
    current = lines[line]
    lines[line] = current[:pos] + value + current[pos + len(value) :]
    return "\n".join(lines)


def _fix_composite(text: str) -> str:
    """Recompute the composite check digit, so a mutated digit fails only its own rule."""
    d = _independent_digit
    lines = text.split("\n")
    if len(lines) == 3:
        l1, l2 = lines[0], lines[1]
        lines[1] = l2[:29] + d(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
    else:
        l2 = lines[1]
        end = len(l2) - 1
        lines[1] = l2[:end] + d(l2[0:10] + l2[13:20] + l2[21:end])
    return "\n".join(lines)


def _codes(text: str, now: datetime = NOW) -> list[str]:
    return [reason.code for reason in check_mrz(text, now).reasons]


def test_check_digit_known_answers() -> None:
    # Values printed in the specimens.
    assert check_digit("L898902C3") == "6"
    assert check_digit("740812") == "2"
    assert check_digit("120415") == "9"
    assert check_digit("ZE184226B<<<<<") == "1"
    assert check_digit("D23145890") == "7"


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<", max_size=60))
def test_check_digit_matches_an_independent_implementation(data: str) -> None:
    assert check_digit(data) == _independent_digit(data)


@pytest.mark.parametrize(
    ("lines", "fmt", "number"),
    [(TD3, "TD3", "L898902C3"), (TD1, "TD1", "D23145890"), (TD2, "TD2", "D23145890")],
)
def test_specimens_pass_every_check(lines: tuple[str, ...], fmt: str, number: str) -> None:
    result = check_mrz(_real(lines), NOW)
    assert result.reasons == []
    assert result.valid
    assert result.format == fmt
    assert result.document_number == number
    assert result.birth_date == date(1974, 8, 12)
    assert result.expiry_date == date(2012, 4, 15)
    assert result.issuing_state == "D"
    assert result.nationality == "D"
    assert result.citizenship == "DE"


def test_the_specimen_state_utopia_is_not_a_country() -> None:
    assert _codes("\n".join(TD3)) == ["issuing_state_unknown", "nationality_unknown"]


def test_surrounding_whitespace_and_blank_lines_are_ignored() -> None:
    assert check_mrz("\n  " + _real(TD3).replace("\n", "\r\n\n") + "  \n", NOW).valid


# (line, position, replacement, expected reason): each mutation breaks exactly one rule.
TD3_MUTATIONS = [
    (1, 9, "7", "document_number_check_digit"),
    (1, 19, "3", "birth_date_check_digit"),
    (1, 27, "8", "expiry_date_check_digit"),
    (1, 42, "2", "optional_data_check_digit"),
    (1, 43, "1", "composite_check_digit"),
    (0, 0, "V", "document_code"),
    (0, 2, "ZZZ", "issuing_state_unknown"),
    (1, 10, "QQQ", "nationality_unknown"),
    (1, 20, "Q", "sex_invalid"),
    (0, 5, "ERIKSS0N", "name_malformed"),
]


@pytest.mark.parametrize(("line", "pos", "value", "code"), TD3_MUTATIONS)
def test_td3_each_rule_has_its_reason(line: int, pos: int, value: str, code: str) -> None:
    mutated = _put(_real(TD3), line, pos, value)
    if code != "composite_check_digit":
        mutated = _fix_composite(mutated)
    assert _codes(mutated) == [code]


TD1_MUTATIONS = [
    (0, 14, "8", "document_number_check_digit"),
    (1, 6, "3", "birth_date_check_digit"),
    (1, 14, "8", "expiry_date_check_digit"),
    (1, 29, "5", "composite_check_digit"),
    (0, 0, "P", "document_code"),
    (0, 2, "ZZZ", "issuing_state_unknown"),
    (1, 15, "QQQ", "nationality_unknown"),
    (1, 7, "Q", "sex_invalid"),
    (2, 0, "ERIKSS0N", "name_malformed"),
]


@pytest.mark.parametrize(("line", "pos", "value", "code"), TD1_MUTATIONS)
def test_td1_each_rule_has_its_reason(line: int, pos: int, value: str, code: str) -> None:
    mutated = _put(_real(TD1), line, pos, value)
    if code != "composite_check_digit":
        mutated = _fix_composite(mutated)
    assert _codes(mutated) == [code]


TD2_MUTATIONS = [
    (1, 9, "8", "document_number_check_digit"),
    (1, 19, "3", "birth_date_check_digit"),
    (1, 27, "8", "expiry_date_check_digit"),
    (1, 35, "5", "composite_check_digit"),
    (0, 0, "P", "document_code"),
    (0, 2, "ZZZ", "issuing_state_unknown"),
    (1, 10, "QQQ", "nationality_unknown"),
]


@pytest.mark.parametrize(("line", "pos", "value", "code"), TD2_MUTATIONS)
def test_td2_each_rule_has_its_reason(line: int, pos: int, value: str, code: str) -> None:
    mutated = _put(_real(TD2), line, pos, value)
    if code != "composite_check_digit":
        mutated = _fix_composite(mutated)
    assert _codes(mutated) == [code]


def _td3_with(line2: str) -> str:
    """A TD3 whose second line is given without check digits: this test computes them."""
    number, nat, birth, sex, expiry, optional = (
        line2[0:9], line2[9:12], line2[12:18], line2[18], line2[19:25], line2[25:39],
    )  # fmt: skip
    d = _independent_digit
    body = (
        number + d(number) + nat + birth + d(birth) + sex + expiry + d(expiry)
        + optional + d(optional)
    )  # fmt: skip
    composite = body[0:10] + body[13:20] + body[21:43]
    return TD3[0].replace("UTO", "FRA") + "\n" + body + d(composite)


def test_well_formed_check_digits_over_impossible_dates() -> None:
    # Birth 1974-13-12 and expiry 2012-02-30: check digits right, dates impossible.
    text = _td3_with("L898902C3FRA741312F120230ZE184226B<<<<<")
    assert _codes(text) == ["birth_date_invalid", "expiry_date_invalid"]


def test_non_digit_dates_are_invalid_and_fail_their_check_digit_too() -> None:
    mutated = _put(_real(TD3), 1, 13, "74O8")
    assert _codes(mutated) == [
        "birth_date_invalid",
        "birth_date_check_digit",
        "composite_check_digit",
    ]


def test_expiry_against_the_injected_clock() -> None:
    text = _real(TD3)
    assert _codes(text, datetime(2012, 4, 15, 23, 59, tzinfo=UTC)) == []
    assert _codes(text, datetime(2012, 4, 16, tzinfo=UTC)) == ["document_expired"]


def test_birth_century_never_puts_a_birth_in_the_future() -> None:
    text = _td3_with("L898902C3FRA050101F300101<<<<<<<<<<<<<<")
    assert check_mrz(text, NOW).birth_date == date(2005, 1, 1)
    assert check_mrz(text, datetime(2004, 6, 1, tzinfo=UTC)).birth_date == date(1905, 1, 1)


def test_expiry_not_after_birth_is_inconsistent() -> None:
    text = _td3_with("L898902C3FRA850101F830101<<<<<<<<<<<<<<")
    assert "dates_inconsistent" in _codes(text, datetime(1982, 1, 1, tzinfo=UTC))


def test_empty_optional_data_may_have_a_filler_check_digit() -> None:
    text = _td3_with("L898902C3FRA740812F300101<<<<<<<<<<<<<<")
    assert _codes(text) == []
    filler = _put(text, 1, 42, "<")
    # The composite covers position 42, so it has to be recomputed for this variant.
    lines = filler.split("\n")
    lines[1] = lines[1][:43] + _independent_digit(
        lines[1][0:10] + lines[1][13:20] + lines[1][21:43]
    )
    assert _codes("\n".join(lines)) == []


def test_td1_long_document_number_continues_in_the_optional_data() -> None:
    number = "D23145890123"  # 12 characters (Doc 9303 Part 5, 4.2.4)
    d = _independent_digit
    line1 = ("I<FRA" + number[:9] + "<" + number[9:] + d(number) + "<").ljust(30, "<")
    line2_body = "740812" + d("740812") + "F" + "300101" + d("300101") + "FRA" + "<" * 11
    composite = line1[5:30] + line2_body[0:7] + line2_body[8:15] + line2_body[18:29]
    line2 = line2_body + d(composite)
    result = check_mrz("\n".join([line1, line2, "MARTIN<<PAUL".ljust(30, "<")]), NOW)
    assert result.reasons == []
    assert result.document_number == number
    assert result.citizenship == "FR"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "mrz_format"),
        (TD3[0], "mrz_format"),
        (TD3[0] + "\n" + TD3[1][:-1], "mrz_format"),
        ("\n".join(line[:40] for line in TD3), "mrz_format"),
        ("\n".join(TD3).lower(), "mrz_charset"),
        (TD3[0] + "\n" + TD3[1][:-1] + "é", "mrz_charset"),
    ],
)
def test_shape_errors_stop_at_one_reason(text: str, code: str) -> None:
    assert _codes(text) == [code]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        check_mrz(_real(TD3), datetime(2010, 1, 1))


@pytest.mark.parametrize(
    ("field", "alpha2"),
    [
        ("D<<", "DE"),
        ("DEU", "DE"),
        ("USA", "US"),
        ("GBR", "GB"),
        ("GBD", "GB"),
        ("UNO", None),
        ("UNA", None),
        ("UNK", None),
        ("EUE", None),
        ("XXA", None),
        ("XXB", None),
        ("XXC", None),
        ("XXX", None),
    ],
)
def test_icao_codes_map_to_alpha2(field: str, alpha2: str | None) -> None:
    found = lookup(field)
    assert found is not None
    assert found.alpha2 == alpha2


@pytest.mark.parametrize("field", ["UTO", "ZZZ", "D<", "<<<", "DE<", "XK<"])
def test_unknown_codes(field: str) -> None:
    assert lookup(field) is None


def test_alpha3_table_covers_every_assigned_alpha2_once() -> None:
    assert len(ALPHA3_TO_ALPHA2) == 249
    assert set(ALPHA3_TO_ALPHA2.values()) == ISO_3166_ALPHA2
    assert all(
        code.alpha2 is None or code.alpha2 in ISO_3166_ALPHA2
        for code in ICAO_SPECIAL_CODES.values()
    )


@pytest.mark.parametrize("code", ["XXA", "UNO", "UNK"])
def test_a_nationality_without_a_state_is_valid_but_yields_no_citizenship(code: str) -> None:
    result = check_mrz(_real(TD3, code), NOW)
    assert result.valid
    assert result.nationality == code
    assert result.citizenship is None


def test_a_wrong_field_digit_also_breaks_the_composite_that_covers_it() -> None:
    assert _codes(_put(_real(TD3), 1, 9, "7")) == [
        "document_number_check_digit",
        "composite_check_digit",
    ]


@given(
    position=st.sampled_from([*range(13, 19), *range(21, 27)]),  # birth and expiry dates
    shift=st.integers(min_value=1, max_value=9),
)
def test_every_single_digit_substitution_in_a_date_is_detected(position: int, shift: int) -> None:
    # Weights 7, 3 and 1 are coprime to 10, so changing one digit always changes the sum
    # modulo 10 (Doc 9303 Part 3, 4.9). A letter for a digit can go undetected ('0' -> 'A'
    # adds 10): that weakness is ICAO's, and the date rules catch it here.
    text = _real(TD3)
    original = text.split("\n")[1][position]
    mutated = _put(text, 1, position, str((int(original) + shift) % 10))
    assert check_mrz(mutated, NOW).reasons
