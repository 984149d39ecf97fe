"""TAJ and stamp numbers: known vectors, and properties of the check digit over random numbers."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from praxis_hungary.identifiers import (
    IdentifierError,
    format_taj,
    is_valid_taj,
    mask_stamp,
    mask_taj,
    normalize_stamp,
    normalize_taj,
    taj_check_digit,
)

eight_digits = st.text(alphabet="0123456789", min_size=8, max_size=8).filter(lambda s: s != "00000000")


def with_check(first8: str) -> str:
    return first8 + str(taj_check_digit(first8))


@pytest.mark.parametrize("value", ["037 687 210", "037-687-210", "037687210", "111111110", "111 111 110",
                                   "111-111-110", "123456788", "987654322", " 123 456 788 ", "１２３４５６７８８"])
def test_valid_taj_numbers_normalise_to_their_nine_digits(value):
    assert normalize_taj(value) == re.sub(r"\D", "", value.translate(str.maketrans("１２３４５６７８", "12345678")))


@pytest.mark.parametrize(("value", "code", "reason"), [
    ("111111111", "invalid_checksum", "check digit does not match"),
    ("123456789", "invalid_checksum", "check digit does not match"),
    ("037 687 211", "invalid_checksum", "check digit does not match"),
    ("000000000", "invalid", "not a real TAJ number"),
    ("03768721", "invalid_length", "must have 9 digits, not 8"),
    ("0376872100", "invalid_length", "must have 9 digits, not 10"),
    ("", "invalid_length", "must have 9 digits, not 0"),
    ("037.687.210", "invalid_format", "only digits, spaces and dashes"),
    ("O37687210", "invalid_format", "only digits, spaces and dashes"),
])
def test_invalid_taj_numbers_say_why(value, code, reason):
    with pytest.raises(ValueError, match=reason) as raised:
        normalize_taj(value)
    assert isinstance(raised.value, IdentifierError) and raised.value.code == code
    assert not is_valid_taj(value)


@given(eight_digits)
@example("03768721")
@example("11111111")
@example("99999999")
def test_the_computed_check_digit_makes_a_valid_number_and_normalising_is_idempotent(first8):
    number = with_check(first8)
    assert normalize_taj(number) == number
    assert normalize_taj(format_taj(number)) == number
    assert normalize_taj(f"{number[:3]}-{number[3:6]}-{number[6:]}") == number


@given(eight_digits, st.integers(0, 8), st.integers(1, 9))
@example("03768721", 8, 1)
@example("03768721", 0, 5)
def test_every_single_digit_error_is_detected(first8, position, delta):
    number = with_check(first8)
    wrong = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1:]
    assert not is_valid_taj(wrong)


@given(eight_digits, st.integers(0, 6))
@example("16000000", 0)  # 1 and 6 differ by 5: 3*1+7*6 = 45 and 3*6+7*1 = 25 agree mod 10
def test_adjacent_swaps_are_detected_unless_the_digits_differ_by_five(first8, position):
    a, b = first8[position], first8[position + 1]
    swapped = first8[:position] + b + a + first8[position + 2:]
    number = with_check(first8)
    changed = swapped + number[8]
    if a == b:
        assert is_valid_taj(changed)
    else:
        assert is_valid_taj(changed) == (abs(int(a) - int(b)) == 5)


@given(eight_digits)
def test_the_mask_shows_only_the_last_three_digits(first8):
    number = with_check(first8)
    masked = mask_taj(number)
    assert masked == f"*** *** {number[6:]}"
    assert re.sub(r"\D", "", masked) == number[6:]
    assert mask_taj(format_taj(number)) == masked


def test_known_masks():
    assert mask_taj("037687210") == "*** *** 210"
    assert mask_taj("037 687 210") == "*** *** 210"
    assert mask_taj("21") == "*** *** *21"


def test_check_digit_needs_eight_digits():
    with pytest.raises(ValueError):
        taj_check_digit("1234567")


@pytest.mark.parametrize("value", ["58012", "58 012", "00123"])
def test_stamp_numbers_are_five_digits_without_a_check_digit(value):
    assert normalize_stamp(value) == value.replace(" ", "")


@pytest.mark.parametrize(("value", "reason"), [
    ("5801", "must have 5 digits, not 4"),
    ("580123", "must have 5 digits, not 6"),
    ("O5801", "only digits"),
    ("00000", "not a real stamp number"),
])
def test_invalid_stamp_numbers_say_why(value, reason):
    with pytest.raises(ValueError, match=reason):
        normalize_stamp(value)


@given(st.text(alphabet="0123456789", min_size=5, max_size=5).filter(lambda s: s != "00000"))
def test_stamp_mask_shows_only_the_last_three_digits(number):
    assert normalize_stamp(number) == number
    assert mask_stamp(number) == "**" + number[2:]
