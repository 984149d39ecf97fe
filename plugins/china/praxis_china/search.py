"""Pinyin search keys for Chinese names: full pinyin without tones and initials (张伟 -> zhangwei, zw).

pypinyin reads a character by its most common reading, which is wrong for many surnames (曾 is read zeng
as a surname, ceng otherwise; likewise 单 shan, 解 xie, 朴 piao, 区 ou). So the first character is indexed
under every reading pypinyin knows (``heteronym=True``), and the patient is found by either. The rest of
the name uses pypinyin's reading in context. ü is written ``v`` (吕 -> lv), as pinyin keyboards type it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from types import ModuleType

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
KEEP = re.compile(r"[a-z0-9]+")


def _plain(syllable: str) -> str:
    """Lower-case letters and digits only (pypinyin passes non-Han text through as it is)."""
    return "".join(KEEP.findall(syllable.lower()))


@cache
def _pypinyin() -> ModuleType:
    # pypinyin loads its dictionaries (about a second) on import: only pay that when a Han name is saved,
    # not at every app start.
    import pypinyin

    return pypinyin


def first_character_readings(char: str) -> list[str]:
    """Every toneless reading of one Han character, the usual one first."""
    p = _pypinyin()
    usual = p.lazy_pinyin(char, style=p.Style.NORMAL)[0]
    readings = [usual, *p.pinyin(char, style=p.Style.NORMAL, heteronym=True)[0]]
    return list(dict.fromkeys(_plain(r) for r in readings if _plain(r)))


def name_search_keys(text: str) -> list[str]:
    """Full-pinyin and initials keys for a name containing Han characters; empty otherwise.

    ``曾国藩`` -> ``["cengguofan", "zengguofan", "cgf", "zgf"]``."""
    name = "".join(unicodedata.normalize("NFKC", text).split())
    if not HAN.search(name):
        return []
    p = _pypinyin()
    syllables = [_plain(s) for s in p.lazy_pinyin(name, style=p.Style.NORMAL)]
    variants = [syllables]
    if HAN.match(name[0]):
        variants = [[reading, *syllables[1:]] for reading in first_character_readings(name[0])]
    full, initials = [], []
    for variant in variants:
        parts = [s for s in variant if s]
        full.append("".join(parts))
        initials.append("".join(p[0] for p in parts))
    return list(dict.fromkeys(key for key in full + initials if key))
