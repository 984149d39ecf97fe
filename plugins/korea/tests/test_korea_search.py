"""Initial-consonant (chosung) search keys, in the compatibility jamo that keyboards type."""

from __future__ import annotations

import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st
from praxis_korea.search import CHOSUNG, chosung, name_search_keys

syllables = st.integers(0xAC00, 0xD7A3).map(chr)


def test_known_names():
    assert name_search_keys("김민수") == ["ㄱㅁㅅ"]
    assert name_search_keys("꽃님이") == ["ㄲㄴㅇ"]
    assert name_search_keys("남궁 민수") == ["ㄴㄱㅁㅅ", "ㄴㄱ", "ㅁㅅ"]
    assert name_search_keys("Kim Minsu") == []
    assert name_search_keys("") == []


def test_keys_are_compatibility_jamo_from_u3131():
    [key] = name_search_keys("김민수")
    assert [hex(ord(c)) for c in key] == ["0x3131", "0x3141", "0x3145"]
    assert all(0x3131 <= ord(c) <= 0x314E for c in CHOSUNG) and len(CHOSUNG) == 19


def test_decomposed_names_and_typed_queries_give_the_same_key():
    assert chosung(unicodedata.normalize("NFD", "김민수")) == "ㄱㅁㅅ"
    assert chosung("ᄀᄆ") == "ㄱㅁ"  # conjoining jamo U+1100, U+1106
    assert chosung("ㄱㅁ") == "ㄱㅁ"  # what an IME sends
    assert chosung("김ㅁㅅ") == "ㄱㅁㅅ"
    assert chosung("김 민-수 (Kim)") == "ㄱㅁㅅ"


@given(st.lists(syllables, min_size=1, max_size=6).map("".join))
@example("김민수")
@example("가힣")
def test_every_syllable_gives_one_of_the_19_initials(name):
    key = chosung(name)
    assert len(key) == len(name)
    assert set(key) <= set(CHOSUNG)
    assert chosung(unicodedata.normalize("NFD", name)) == key
    assert name_search_keys(name) == [key]


@given(st.integers(0, 18), st.integers(0, 20), st.integers(0, 27))
def test_the_initial_is_the_one_the_syllable_was_built_from(initial, vowel, final):
    syllable = chr(0xAC00 + (initial * 21 + vowel) * 28 + final)
    assert chosung(syllable) == CHOSUNG[initial]
    decomposed = unicodedata.normalize("NFD", syllable)
    assert chosung(decomposed[0]) == CHOSUNG[initial]
