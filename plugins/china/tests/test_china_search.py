"""Pinyin search keys: full pinyin and initials, with every reading of the surname."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from praxis_china.search import first_character_readings, name_search_keys
from pypinyin import Style, lazy_pinyin


def test_zhang_wei():
    assert name_search_keys("张伟") == ["zhangwei", "zw"]


@pytest.mark.parametrize(("name", "surname_reading", "full", "initials"), [
    ("曾国藩", "zeng", "zengguofan", "zgf"),
    ("单田芳", "shan", "shantianfang", "stf"),
    ("解缙", "xie", "xiejin", "xj"),
    ("朴槿惠", "piao", "piaojinhui", "pjh"),
    ("区家麟", "ou", "oujialin", "ojl"),
])
def test_surnames_with_several_readings_are_found_by_the_surname_reading_and_the_common_one(
        name, surname_reading, full, initials):
    keys = name_search_keys(name)
    assert surname_reading in first_character_readings(name[0])
    assert full in keys and initials in keys
    assert len(first_character_readings(name[0])) >= 2
    common = first_character_readings(name[0])[0]
    assert common + full[len(surname_reading):] in keys


def test_tones_are_dropped_and_u_umlaut_is_v():
    assert name_search_keys("吕布") == ["lvbu", "lb"]
    assert all(k.isascii() and k.islower() for k in name_search_keys("欧阳修"))


def test_spaces_and_latin_text():
    assert name_search_keys("张 伟") == ["zhangwei", "zw"]
    assert name_search_keys("John Smith") == []
    assert name_search_keys("") == []
    assert name_search_keys("李Anna") == ["lianna", "la"]


@given(st.lists(st.integers(0x4E00, 0x9FA5).map(chr), min_size=1, max_size=4).map("".join))
@example("曾曾")
@example("单于")
def test_keys_are_every_surname_reading_followed_by_the_rest_in_full_and_as_initials(name):
    keys = name_search_keys(name)
    readings = first_character_readings(name[0])
    rest = [s for s in lazy_pinyin(name, style=Style.NORMAL)[1:] if s.isascii()]
    expected = [r + "".join(rest) for r in readings] + [r[0] + "".join(s[0] for s in rest) for r in readings]
    assert keys == list(dict.fromkeys(expected))
    assert all(k.isascii() and k == k.lower() and k.isalnum() for k in keys)
