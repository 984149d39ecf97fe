"""Russian identifiers: pure functions to check, normalise and mask them.

* SNILS (страховой номер индивидуального лицевого счёта): 11 digits, printed ``XXX-XXX-XXX YY``. The
  last two digits check the first nine: the sum of each digit times its weight (9 for the first down to 1
  for the ninth); a sum below 100 is the check number itself, 100 and 101 give ``00``, and a larger sum is
  taken mod 101, where 100 again gives ``00``. The check applies only to numbers above 001-001-998 (the
  Pension Fund's rule); smaller ones are accepted as they are. python-stdnum has no SNILS module, so the
  check is written here. It cannot catch every typo: ``101-229-470 00`` and ``101-229-471 00`` are both
  valid, because their sums are 100 and 101.
* OMS unified policy number (единый номер полиса, ЕНП): 16 digits. Its 16th digit is a check digit defined
  by FFOMS order No. 79, but the algorithm's text is not publicly available, so only the length and the
  digits are checked here (and an all-zero number is refused). Older regional series-and-number policies
  and temporary certificates are not this identifier.
"""

from __future__ import annotations

import re
import unicodedata

SEPARATORS = re.compile(r"[\s\-‐‑‒–—]+")
DIGITS = re.compile(r"[0-9]*")
#: SNILS numbers up to and including this one carry no check number.
SNILS_UNCHECKED_UP_TO = 1_001_998


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


# --- SNILS ----------------------------------------------------------------------------------------


def snils_check_number(first9: str) -> str:
    """The two check digits for the first nine digits of a SNILS."""
    if len(first9) != 9 or not first9.isascii() or not first9.isdigit():
        raise ValueError("give the first 9 digits of a SNILS")
    total = sum(int(digit) * weight for digit, weight in zip(first9, range(9, 0, -1), strict=True))
    if total < 100:
        check = total
    elif total in (100, 101):
        check = 0
    else:
        check = total % 101
        if check == 100:
            check = 0
    return f"{check:02d}"


def normalize_snils(value: str) -> str:
    """The 11 digits of a valid SNILS; raises ``IdentifierError`` (a ``ValueError``) saying why not."""
    digits = _digits(value, "SNILS may contain only digits, spaces and dashes")
    if len(digits) != 11:
        raise IdentifierError("SNILS must have 11 digits, not {count}", "invalid_length", count=len(digits))
    serial = int(digits[:9])
    if serial == 0:
        raise IdentifierError("000-000-000 is not a real SNILS", "invalid")
    if serial > SNILS_UNCHECKED_UP_TO and digits[9:] != snils_check_number(digits[:9]):
        raise IdentifierError("SNILS check number does not match: look for a mistyped digit", "invalid_checksum")
    return digits


def is_valid_snils(value: str) -> bool:
    try:
        normalize_snils(value)
    except ValueError:
        return False
    return True


def format_snils(value: str) -> str:
    """``11223344595`` -> ``112-233-445 95``."""
    digits = normalize_snils(value)
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:9]} {digits[9:]}"


def mask_snils(value: str) -> str:
    """Only the last 3 digits stay visible: ``***-***-**5 95``."""
    last = _last3(value)
    return f"***-***-**{last[0]} {last[1:]}"


# --- OMS policy -----------------------------------------------------------------------------------


def normalize_oms(value: str) -> str:
    """The 16 digits of an OMS unified policy number (length and digits only: see the module's notes)."""
    digits = _digits(value, "OMS policy number may contain only digits, spaces and dashes")
    if len(digits) != 16:
        raise IdentifierError("OMS policy number must have 16 digits, not {count}", "invalid_length",
                              count=len(digits))
    if int(digits) == 0:
        raise IdentifierError("0000 0000 0000 0000 is not a real OMS policy number", "invalid")
    return digits


def mask_oms(value: str) -> str:
    """Only the last 3 digits stay visible: ``**** **** **** *456``."""
    return "**** **** **** *" + _last3(value)


def _last3(value: str) -> str:
    """The last 3 letters or digits of a value, whatever its separators; never more of it."""
    compact = "".join(ch for ch in unicodedata.normalize("NFKC", str(value)) if ch.isalnum())
    return compact[-3:].rjust(3, "*")
