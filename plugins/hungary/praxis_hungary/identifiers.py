"""Hungarian identifiers: pure functions to check, normalise and mask them.

* TAJ (társadalombiztosítási azonosító jel), the social security number: 9 digits, the 9th is a check
  digit: ``(3*(d1+d3+d5+d7) + 7*(d2+d4+d6+d8)) mod 10`` (1996. évi XX. törvény). python-stdnum has no
  TAJ module (only ``hu.anum``, the VAT number), so the check is written here. Printed as ``NNN NNN NNN``
  or ``NNN-NNN-NNN``; stored as the 9 digits.
* Doctor's stamp number (pecsétszám, the ENKK registration number): 5 digits. No check digit is
  publicly documented, so none is enforced.
"""

from __future__ import annotations

import re
import unicodedata

SEPARATORS = re.compile(r"[\s\-‐‑‒–—]+")
DIGITS = re.compile(r"[0-9]*")


class IdentifierError(ValueError):
    """Why a value is not a valid identifier. ``msgid`` and ``params`` let a caller translate the reason;
    ``code`` is stable for API clients."""

    def __init__(self, msgid: str, code: str = "invalid", **params: object) -> None:
        self.msgid = msgid
        self.code = code
        self.params = params
        super().__init__(msgid.format(**params))


def _digits(value: str, bad_format: str) -> str:
    """The digits of ``value`` once spaces and dashes are removed (full-width digits count as digits);
    raises ``IdentifierError(bad_format)`` if anything else is left."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise IdentifierError(bad_format, "invalid_format")
    compact = SEPARATORS.sub("", unicodedata.normalize("NFKC", value))
    if not DIGITS.fullmatch(compact):
        raise IdentifierError(bad_format, "invalid_format")
    return compact


# --- TAJ ------------------------------------------------------------------------------------------


def taj_check_digit(first8: str) -> int:
    """The check digit for the first 8 digits of a TAJ number."""
    if len(first8) != 8 or not first8.isascii() or not first8.isdigit():
        raise ValueError("give the first 8 digits of a TAJ number")
    odd = sum(int(d) for d in first8[0::2])
    even = sum(int(d) for d in first8[1::2])
    return (3 * odd + 7 * even) % 10


def normalize_taj(value: str) -> str:
    """The 9 digits of a valid TAJ number; raises ``IdentifierError`` (a ``ValueError``) saying why not."""
    digits = _digits(value, "TAJ number may contain only digits, spaces and dashes")
    if len(digits) != 9:
        raise IdentifierError("TAJ number must have 9 digits, not {count}", "invalid_length", count=len(digits))
    if digits == "000000000":
        raise IdentifierError("000 000 000 is not a real TAJ number", "invalid")
    if int(digits[8]) != taj_check_digit(digits[:8]):
        raise IdentifierError("TAJ number's check digit does not match: look for a mistyped digit",
                              "invalid_checksum")
    return digits


def is_valid_taj(value: str) -> bool:
    try:
        normalize_taj(value)
    except ValueError:
        return False
    return True


def format_taj(value: str) -> str:
    """``037687210`` -> ``037 687 210``."""
    digits = normalize_taj(value)
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def mask_taj(value: str) -> str:
    """Only the last 3 digits stay visible: ``*** *** 210``."""
    return "*** *** " + _last3(value)


# --- Doctor's stamp number ------------------------------------------------------------------------


def normalize_stamp(value: str) -> str:
    """The 5 digits of a doctor's stamp number; raises ``IdentifierError`` saying why not."""
    digits = _digits(value, "Stamp number may contain only digits, spaces and dashes")
    if len(digits) != 5:
        raise IdentifierError("Stamp number must have 5 digits, not {count}", "invalid_length", count=len(digits))
    if digits == "00000":
        raise IdentifierError("00000 is not a real stamp number", "invalid")
    return digits


def mask_stamp(value: str) -> str:
    """Only the last 3 digits stay visible: ``**012``."""
    return "**" + _last3(value)


def _last3(value: str) -> str:
    """The last 3 letters or digits of a value, whatever its separators; never more of it."""
    compact = "".join(ch for ch in unicodedata.normalize("NFKC", str(value)) if ch.isalnum())
    return compact[-3:].rjust(3, "*")
