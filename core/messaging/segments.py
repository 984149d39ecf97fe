"""How many SMS a text costs: GSM-7 (3GPP TS 23.038) when every character is in the default alphabet or its
extension table, UCS-2 otherwise.

* GSM-7: 160 septets in one SMS; a concatenated message carries 153 per part. Characters of the extension
  table (``^{}\\[~]|€`` and form feed) take two septets (escape + character), and a part never ends between
  the two.
* UCS-2: 70 UTF-16 code units in one SMS, 67 per part. A character outside the Basic Multilingual Plane
  (most emoji) takes two code units, and a part never splits the pair.

The tables are a few lines of the standard; the libraries that carry them are codecs rather than counters
(and mostly unmaintained), so the counting is done here and tested against known lengths.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {"gsm7": 160, "ucs2": 70}
PART = {"gsm7": 153, "ucs2": 67}


@dataclass(frozen=True)
class SmsCount:
    encoding: str  # "gsm7" or "ucs2"
    length: int  # characters as a person counts them
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # the capacity of one part at this length (160/153 or 70/67)

    def as_dict(self) -> dict[str, int | str]:
        return {"encoding": self.encoding, "length": self.length, "units": self.units, "segments": self.segments,
                "per_segment": self.per_segment}


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _unit_sizes(text: str, encoding: str) -> list[int]:
    if encoding == "gsm7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count(text: str) -> SmsCount:
    """The encoding, length and number of SMS parts of ``text``."""
    encoding = "gsm7" if is_gsm7(text) else "ucs2"
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    if units == 0:
        return SmsCount(encoding, 0, 0, 0, SINGLE[encoding])
    if units <= SINGLE[encoding]:
        return SmsCount(encoding, len(text), units, 1, SINGLE[encoding])
    capacity = PART[encoding]
    parts, used = 1, 0
    for size in sizes:  # fill parts; a two-unit character that does not fit starts the next part
        if used + size > capacity:
            parts += 1
            used = 0
        used += size
    return SmsCount(encoding, len(text), units, parts, capacity)
