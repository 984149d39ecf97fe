"""SNILS and OMS policy numbers: known vectors, and properties of the SNILS check number."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from praxis_russia.identifiers import (
    SNILS_UNCHECKED_UP_TO,
    IdentifierError,
    format_snils,
    is_valid_snils,
    mask_oms,
    mask_snils,
    normalize_oms,
    normalize_snils,
    snils_check_number,
)

checked_serials = st.integers(SNILS_UNCHECKED_UP_TO + 1, 999_999_999).map(lambda n: f"{n:09d}")


def reference_check(first9: str) -> str:
    """The Pension Fund's rule, written out step by step, to compare against."""
    total = sum(int(d) * (9 - i) for i, d in enumerate(first9))
    while total > 101:
        total %= 101
    return "00" if total in (100, 101) else f"{total:02d}"


@pytest.mark.parametrize("value", ["112-233-445 95", "11223344595", "112 233 445 95", "112-233-445-95",
                                   "001-001-998 00", "001-001-998 57", "000-000-001 99"])
def test_valid_snils_normalise_to_their_eleven_digits(value):
    assert normalize_snils(value) == re.sub(r"\D", "", value)


@pytest.mark.parametrize(("value", "code", "reason"), [
    ("112-233-445 96", "invalid_checksum", "check number does not match"),
    ("001-001-999 00", "invalid_checksum", "check number does not match"),
    ("000-000-000 00", "invalid", "not a real SNILS"),
    ("112-233-445 9", "invalid_length", "must have 11 digits, not 10"),
    ("112/233/445 95", "invalid_format", "only digits, spaces and dashes"),
    ("", "invalid_length", "not 0"),
])
def test_invalid_snils_say_why(value, code, reason):
    with pytest.raises(ValueError, match=reason) as raised:
        normalize_snils(value)
    assert isinstance(raised.value, IdentifierError) and raised.value.code == code
    assert not is_valid_snils(value)


def test_sums_of_100_and_101_both_give_00_so_some_typos_pass():
    assert snils_check_number("101229470") == snils_check_number("101229471") == "00"
    assert is_valid_snils("101-229-470 00") and is_valid_snils("101-229-471 00")


@given(checked_serials)
@example("112233445")
@example("101229470")  # sum 100
@example("101229471")  # sum 101
@example("999999999")  # sum 405 -> 405 mod 101 = 1
@example("001001999")  # the first checked number
def test_the_check_number_follows_the_rule_and_makes_a_valid_snils(first9):
    check = snils_check_number(first9)
    assert check == reference_check(first9)
    number = first9 + check
    assert normalize_snils(number) == number
    assert normalize_snils(format_snils(number)) == number
    assert format_snils(number) == f"{first9[:3]}-{first9[3:6]}-{first9[6:]} {check}"


@given(checked_serials, st.integers(0, 99))
@example("112233445", 96)
def test_only_the_right_check_number_is_accepted_above_001_001_998(first9, check):
    assert is_valid_snils(f"{first9}{check:02d}") == (f"{check:02d}" == snils_check_number(first9))


@given(st.integers(1, SNILS_UNCHECKED_UP_TO), st.integers(0, 99))
@example(SNILS_UNCHECKED_UP_TO, 0)
@example(1, 42)
def test_numbers_up_to_001_001_998_are_not_checked(serial, check):
    assert is_valid_snils(f"{serial:09d}{check:02d}")


@given(checked_serials)
def test_the_snils_mask_shows_only_the_last_three_digits(first9):
    number = first9 + snils_check_number(first9)
    masked = mask_snils(format_snils(number))
    assert masked == f"***-***-**{number[8]} {number[9:]}"
    assert re.sub(r"\D", "", masked) == number[-3:]


def test_known_snils_mask():
    assert mask_snils("11223344595") == "***-***-**5 95"


@pytest.mark.parametrize("value", ["1234567890123456", "1234 5678 9012 3456", "1234-5678-9012-3456",
                                   "0000000000000001"])
def test_oms_policy_numbers_are_sixteen_digits(value):
    assert normalize_oms(value) == re.sub(r"\D", "", value)


@pytest.mark.parametrize(("value", "reason"), [
    ("123456789012345", "must have 16 digits, not 15"),
    ("12345678901234567", "must have 16 digits, not 17"),
    ("12345678901234AB", "only digits"),
    ("0000 0000 0000 0000", "not a real OMS policy number"),
])
def test_invalid_oms_policy_numbers_say_why(value, reason):
    with pytest.raises(ValueError, match=reason):
        normalize_oms(value)


@given(st.text(alphabet="0123456789", min_size=16, max_size=16).filter(lambda s: int(s) > 0))
def test_oms_normalising_is_idempotent_and_the_mask_shows_three_digits(number):
    assert normalize_oms(normalize_oms(number)) == number
    assert mask_oms(number) == "**** **** **** *" + number[-3:]
