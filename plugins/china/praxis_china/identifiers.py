"""Chinese resident identity numbers (居民身份号码, GB 11643-1999): check, normalise and mask them.

18 characters: a 6-digit region code (GB/T 2260), the birth date ``YYYYMMDD``, a 3-digit sequence (odd
for men, even for women) and a check character (ISO 7064 MOD 11-2, ``0``-``9`` or ``X``). python-stdnum's
``cn.ric`` computes the check character, reads the birth date and looks the region up in its bundled
table. An unknown region is **accepted**: new districts appear and the bundled table goes stale, so
``region`` merely reports what the table knows. 15-digit numbers from before 1999 are refused: they
were replaced by 18-digit ones.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric

SEPARATORS = re.compile(r"[\s\-‐‑‒–—]+")
SHAPE = re.compile(r"[0-9]{17}[0-9X]")
CHINA = ZoneInfo("Asia/Shanghai")


class IdentifierError(ValueError):
    """Why a value is not a valid identifier. ``msgid`` and ``params`` let a caller translate the reason;
    ``code`` is stable for API clients."""

    def __init__(self, msgid: str, code: str = "invalid", **params: object) -> None:
        self.msgid = msgid
        self.code = code
        self.params = params
        super().__init__(msgid.format(**params))


@dataclass(frozen=True)
class RicInfo:
    birth_date: date
    sex: str  # "male" or "female"
    #: Province/prefecture/county names from python-stdnum's table, or None for a region it does not know.
    region: dict[str, str] | None


def today_in_china() -> date:
    return datetime.now(CHINA).date()


def _compact(value: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise IdentifierError("Resident identity number may contain only digits and a final X", "invalid_format")
    return SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()


def normalize_ric(value: str, *, today: date | None = None) -> str:
    """The 18 characters of a valid number (a final ``x`` becomes ``X``); raises ``IdentifierError``
    (a ``ValueError``) saying why not."""
    number = _compact(value)
    if len(number) == 15 and number.isdigit():
        raise IdentifierError("15-digit identity numbers were replaced by 18-digit ones in 1999: enter the "
                              "18-digit number", "invalid_length")
    if len(number) != 18:
        raise IdentifierError("Resident identity number must have 18 characters, not {count}", "invalid_length",
                              count=len(number))
    if not SHAPE.fullmatch(number):
        raise IdentifierError("Resident identity number may contain only digits and a final X", "invalid_format")
    if number[-1] != ric.calc_check_digit(number):
        raise IdentifierError("Resident identity number's check character does not match: look for a mistyped "
                              "digit", "invalid_checksum")
    try:
        born = ric.get_birth_date(number)
    except stdnum_errors.ValidationError:
        raise IdentifierError("The birth date in the identity number ({yyyymmdd}) is not a real date",
                              "invalid_date", yyyymmdd=number[6:14]) from None
    if born > (today or today_in_china()):
        raise IdentifierError("The identity number gives a birth date in the future ({date})", "invalid_date",
                              date=born.isoformat())
    return number


def is_valid_ric(value: str, *, today: date | None = None) -> bool:
    try:
        normalize_ric(value, today=today)
    except ValueError:
        return False
    return True


def region(value: str) -> dict[str, str] | None:
    """Where python-stdnum's table places the number's region code (for its birth year), or None."""
    try:
        return ric.get_birth_place(_compact(value))
    except stdnum_errors.ValidationError:
        return None


def ric_info(value: str, *, today: date | None = None) -> RicInfo:
    number = normalize_ric(value, today=today)
    return RicInfo(
        birth_date=ric.get_birth_date(number),
        sex="male" if int(number[16]) % 2 else "female",
        region=region(number),
    )


def mask_ric(value: str) -> str:
    """Only the last 3 characters stay visible: ``***************02X``."""
    compact = "".join(ch for ch in unicodedata.normalize("NFKC", str(value)) if ch.isalnum()).upper()
    return "*" * 15 + compact[-3:].rjust(3, "*")
