"""Resident identity numbers: GB 11643 vectors, and properties of the MOD 11-2 check character."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from praxis_china.identifiers import IdentifierError, is_valid_ric, mask_ric, normalize_ric, region, ric_info

TODAY = date(2026, 3, 1)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def reference_check(first17: str) -> str:
    """GB 11643 as written in the standard: weighted sum mod 11 mapped through '10X98765432'."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def make(region_code: str, born: date, sequence: int) -> str:
    first17 = f"{region_code}{born:%Y%m%d}{sequence:03d}"
    return first17 + reference_check(first17)


regions = st.sampled_from(["110105", "360426", "440524", "310101", "999999", "000000"])


@pytest.mark.parametrize("value", ["11010519491231002X", "11010519491231002x", "360426199101010071",
                                   "440524188001010014", "110105 19491231 002X",
                                   "１１０１０５１９４９１２３１００２Ｘ"])
def test_known_valid_numbers(value):
    assert normalize_ric(value, today=TODAY) in {"11010519491231002X", "360426199101010071", "440524188001010014"}


@pytest.mark.parametrize(("value", "code", "reason"), [
    ("110105194912310021", "invalid_checksum", "check character does not match"),
    ("360426199101010072", "invalid_checksum", "check character does not match"),
    ("110105491231002", "invalid_length", "15-digit identity numbers were replaced"),
    ("11010519491231002", "invalid_length", "must have 18 characters, not 17"),
    ("1101051949123100X2", "invalid_format", "only digits and a final X"),
    ("11010519491231002Y", "invalid_format", "only digits and a final X"),
])
def test_invalid_numbers_say_why(value, code, reason):
    with pytest.raises(ValueError, match=reason) as raised:
        normalize_ric(value, today=TODAY)
    assert isinstance(raised.value, IdentifierError) and raised.value.code == code


def test_impossible_and_future_birth_dates_are_refused():
    impossible = "11010519490230001"
    with pytest.raises(ValueError, match=r"\(19490230\) is not a real date"):
        normalize_ric(impossible + reference_check(impossible), today=TODAY)
    future = make("110105", date(2026, 3, 2), 1)
    with pytest.raises(ValueError, match=r"future \(2026-03-02\)") as raised:
        normalize_ric(future, today=TODAY)
    assert raised.value.code == "invalid_date"
    assert normalize_ric(future, today=date(2026, 3, 2)) == future


def test_an_unknown_region_is_accepted_and_reported_as_unknown():
    number = make("999999", date(1990, 5, 17), 123)
    assert normalize_ric(number, today=TODAY) == number
    assert region(number) is None
    assert region("11010519491231002X") == {"province": "北京市", "county": "朝阳区"}
    info = ric_info("11010519491231002X", today=TODAY)
    assert (info.birth_date, info.sex) == (date(1949, 12, 31), "female")
    assert ric_info("360426199101010071", today=TODAY).sex == "male"


@given(regions, st.dates(date(1900, 1, 1), TODAY), st.integers(0, 999))
@example("110105", date(1949, 12, 31), 2)  # check character X
@example("440524", date(1880, 1, 1), 1)
def test_the_right_check_character_makes_a_valid_number_and_normalising_is_idempotent(code, born, sequence):
    number = make(code, born, sequence)
    assert normalize_ric(number, today=TODAY) == number
    assert normalize_ric(number.lower(), today=TODAY) == number
    assert ric_info(number, today=TODAY).birth_date == born


@given(regions, st.dates(date(1900, 1, 1), TODAY), st.integers(0, 999), st.integers(0, 16), st.integers(1, 9))
def test_every_single_digit_error_is_detected(code, born, sequence, position, delta):
    number = make(code, born, sequence)
    wrong = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1:]
    assert not is_valid_ric(wrong, today=TODAY)


@given(regions, st.dates(date(1900, 1, 1), TODAY), st.integers(0, 999))
def test_the_mask_shows_only_the_last_three_characters(code, born, sequence):
    number = make(code, born, sequence)
    masked = mask_ric(number)
    assert masked == "*" * 15 + number[-3:]
    assert re.sub(r"[^0-9X]", "", masked) == number[-3:]


def test_known_mask():
    assert mask_ric("11010519491231002x") == "***************02X"
