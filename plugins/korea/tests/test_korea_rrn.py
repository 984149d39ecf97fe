"""Resident registration numbers: birth date and gender digit always checked, the check digit never enforced."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from praxis_korea.identifiers import (
    REFORM_DATE,
    IdentifierError,
    format_rrn,
    legacy_check_digit_matches,
    mask_rrn,
    normalize_rrn,
    rrn_info,
)
from stdnum.kr import rrn as stdnum_rrn

TODAY = date(2026, 3, 1)
births = st.dates(date(1900, 1, 1), TODAY)
tails = st.text(alphabet="0123456789", min_size=6, max_size=6)


def gender_digit(born: date, male: bool, foreign: bool) -> str:
    base = {(1900, False): 1, (2000, False): 3, (1900, True): 5, (2000, True): 7}[(born.year // 100 * 100, foreign)]
    return str(base if male else base + 1)


def make(born: date, male: bool = True, foreign: bool = False, tail: str = "234567") -> str:
    return born.strftime("%y%m%d") + gender_digit(born, male, foreign) + tail


def with_legacy_check(first12: str) -> str:
    return first12 + stdnum_rrn.calc_check_digit(first12)


@given(births, st.booleans(), st.booleans(), tails)
@example(date(2000, 2, 29), True, False, "000000")
@example(date(1999, 12, 31), False, True, "999999")
@example(REFORM_DATE, True, False, "123456")
def test_any_real_birth_date_and_gender_digit_is_accepted_whatever_the_last_digits(born, male, foreign, tail):
    number = make(born, male, foreign, tail)
    assert normalize_rrn(number, today=TODAY) == number
    assert normalize_rrn(f"{number[:6]}-{number[6:]}", today=TODAY) == number
    info = rrn_info(number, today=TODAY)
    assert info.birth_date == born
    assert info.sex == ("male" if male else "female")
    assert info.foreign_resident == foreign


@given(st.dates(date(1900, 1, 1), REFORM_DATE - timedelta(days=1)), st.booleans(),
       st.text(alphabet="0123456789", min_size=5, max_size=5), st.integers(1, 9))
@example(date(1980, 1, 1), True, "23456", 1)
def test_the_legacy_check_digit_is_a_hint_not_a_reason_to_refuse(born, male, tail5, delta):
    good = with_legacy_check(make(born, male, tail=tail5 + "0")[:12])
    bad = good[:12] + str((int(good[12]) + delta) % 10)
    assert legacy_check_digit_matches(good) is True
    assert legacy_check_digit_matches(bad) is False
    assert normalize_rrn(bad, today=TODAY) == bad
    assert rrn_info(bad, today=TODAY).legacy_check_digit_matches is False


@given(st.dates(REFORM_DATE, TODAY), tails)
def test_numbers_of_people_born_after_the_reform_have_no_check_digit(born, tail):
    number = make(born, tail=tail)
    assert legacy_check_digit_matches(number) is None
    assert normalize_rrn(number, today=TODAY) == number


def test_stdnum_would_refuse_a_valid_post_reform_number_that_this_plugin_accepts():
    number = with_legacy_check(make(date(2021, 5, 5))[:12])
    number = number[:12] + str((int(number[12]) + 1) % 10)
    assert not stdnum_rrn.is_valid(number)
    assert normalize_rrn(number, today=TODAY) == number


@pytest.mark.parametrize(("value", "code", "reason"), [
    ("800101-9234567", "invalid_gender_digit", "must be 1 to 8, not 9"),
    ("800101-0234567", "invalid_gender_digit", "must be 1 to 8, not 0"),
    ("000229-1234567", "invalid_date", "000229, which is not a real date"),  # 1900 was not a leap year
    ("800230-1234567", "invalid_date", "not a real date"),
    ("801301-1234567", "invalid_date", "not a real date"),
    ("800100-1234567", "invalid_date", "not a real date"),
    ("261231-3234567", "invalid_date", "in the future (2026-12-31)"),
    ("800101-123456", "invalid_length", "must have 13 digits, not 12"),
    ("800101/1234567", "invalid_format", "only digits, spaces and dashes"),
])
def test_bad_dates_gender_digits_and_formats_are_refused_with_a_reason(value, code, reason):
    with pytest.raises(ValueError, match=re.escape(reason)) as raised:
        normalize_rrn(value, today=TODAY)
    assert isinstance(raised.value, IdentifierError) and raised.value.code == code


def test_format_puts_the_dash_after_the_birth_date():
    assert format_rrn("8001011234567") == "800101-1234567"


def test_2000_02_29_is_real_for_the_2000s_gender_digits():
    assert normalize_rrn("000229-3234567", today=TODAY) == "0002293234567"
    assert normalize_rrn("０００２２９－３２３４５６７", today=TODAY) == "0002293234567"


def test_the_default_today_is_korean_time():
    assert normalize_rrn("800101-1234567") == "8001011234567"
    with pytest.raises(ValueError, match="future"):
        normalize_rrn((datetime.now(UTC).date() + timedelta(days=2)).strftime("%y%m%d") + "3234567")


@given(births, tails)
def test_the_mask_shows_only_the_last_three_digits(born, tail):
    number = make(born, tail=tail)
    masked = mask_rrn(f"{number[:6]}-{number[6:]}")
    assert masked == "******-****" + number[-3:]
    assert re.sub(r"\D", "", masked) == number[-3:]
