"""Initial-consonant (초성, chosung) search keys for Hangul names: 김민수 -> ㄱㅁㅅ.

Keys use the Hangul *compatibility* jamo (U+3131..U+314E), which is what Korean keyboards (IMEs) type.
Decomposed text (NFD) carries *conjoining* jamo (U+1100..U+1112) instead; both are mapped to the same
compatibility letters, so a name saved in either form and a query typed either way meet.
"""

from __future__ import annotations

import unicodedata

#: The 19 initial consonants in the order of the Unicode Hangul syllable block.
CHOSUNG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
SYLLABLE_FIRST, SYLLABLE_LAST = 0xAC00, 0xD7A3
SYLLABLES_PER_INITIAL = 21 * 28  # vowels x finals
CONJOINING_FIRST, CONJOINING_LAST = 0x1100, 0x1112


def chosung(text: str) -> str:
    """The initial consonants of the Hangul in ``text``, in compatibility jamo; other characters are dropped.

    Initial consonants already given on their own (a query such as ``김ㅁㅅ``) are kept, so a query goes
    through the same function as the name it should find."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        code = ord(ch)
        if SYLLABLE_FIRST <= code <= SYLLABLE_LAST:
            out.append(CHOSUNG[(code - SYLLABLE_FIRST) // SYLLABLES_PER_INITIAL])
        elif CONJOINING_FIRST <= code <= CONJOINING_LAST:
            out.append(CHOSUNG[code - CONJOINING_FIRST])
        elif ch in CHOSUNG:
            out.append(ch)
    return "".join(out)


def name_search_keys(text: str) -> list[str]:
    """Search keys for a name: the chosung of the whole name and, for a name written in several words
    (남궁 민수), of each word, so the given name alone is found too. Empty for a name without Hangul."""
    keys = []
    for part in [text, *text.split()]:
        key = chosung(part)
        if key and key not in keys:
            keys.append(key)
    return keys
