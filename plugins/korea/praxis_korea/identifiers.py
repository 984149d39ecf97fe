"""Korean resident registration numbers (주민등록번호, RRN): pure functions to check, normalise and mask them.

An RRN is 13 digits, written ``YYMMDD-GNNNNNN``: the birth date, then a digit G that gives the sex and
the century (1/2: Korean born 1900-1999, 3/4: Korean born 2000-2099, 5/6 and 7/8: foreign residents of
the same centuries; odd is male). 9 and 0 (born in the 1800s) are refused: no such person is a patient.

**Why a wrong check digit is accepted.** Numbers issued before 5 October 2020 end in a check digit
(weights 2,3,4,5,6,7,8,9,2,3,4,5, ``(11 - sum mod 11) mod 10``). Since that date, new and re-issued
numbers carry six random digits after G, with no region code and no check digit (Ministry of the
Interior and Safety reform). When a number was issued cannot be told from the number: a person born in
1980 may have had theirs re-issued in 2021. So the check digit can only ever be a hint, never a reason
to refuse; ``legacy_check_digit_matches`` exposes the hint for a soft warning. What is always checked
is what every RRN, old or new, must satisfy: 13 digits, a real birth date not in the future (in Korea's
time zone) and a G of 1 to 8. python-stdnum's ``kr.rrn`` is used only for the legacy check digit, because
its ``validate`` enforces that digit and so refuses valid post-2020 numbers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from stdnum.kr import rrn as stdnum_rrn

SEPARATORS = re.compile(r"[\s\-‐‑‒–—]+")
DIGITS = re.compile(r"[0-9]*")
KOREA = ZoneInfo("Asia/Seoul")
#: From this date on, new and re-issued numbers have random digits instead of region code and check digit.
REFORM_DATE = date(2020, 10, 5)
CENTURY = {"1": 1900, "2": 1900, "5": 1900, "6": 1900, "3": 2000, "4": 2000, "7": 2000, "8": 2000}


class IdentifierError(ValueError):
    """Why a value is not a valid identifier. ``msgid`` and ``params`` let a caller translate the reason;
    ``code`` is stable for API clients."""

    def __init__(self, msgid: str, code: str = "invalid", **params: object) -> None:
        self.msgid = msgid
        self.code = code
        self.params = params
        super().__init__(msgid.format(**params))


@dataclass(frozen=True)
class RrnInfo:
    birth_date: date
    sex: str  # "male" or "female"
    foreign_resident: bool
    #: Whether the pre-2020 check digit matches; None when the number cannot have one (born after the reform).
    legacy_check_digit_matches: bool | None


def today_in_korea() -> date:
    return datetime.now(KOREA).date()


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


def _parse(value: str, today: date | None) -> tuple[str, date]:
    digits = _digits(value, "Resident registration number may contain only digits, spaces and dashes")
    if len(digits) != 13:
        raise IdentifierError("Resident registration number must have 13 digits, not {count}", "invalid_length",
                              count=len(digits))
    g = digits[6]
    if g not in CENTURY:
        raise IdentifierError("The 7th digit of a resident registration number must be 1 to 8, not {digit}",
                              "invalid_gender_digit", digit=g)
    try:
        born = date(CENTURY[g] + int(digits[:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        raise IdentifierError("The resident registration number starts with {yymmdd}, which is not a real date",
                              "invalid_date", yymmdd=digits[:6]) from None
    if born > (today or today_in_korea()):
        raise IdentifierError("The resident registration number gives a birth date in the future ({date})",
                              "invalid_date", date=born.isoformat())
    return digits, born


def normalize_rrn(value: str, *, today: date | None = None) -> str:
    """The 13 digits of a valid RRN; raises ``IdentifierError`` (a ``ValueError``) saying why not.

    The check digit is deliberately not enforced (see the module's notes)."""
    return _parse(value, today)[0]


def rrn_info(value: str, *, today: date | None = None) -> RrnInfo:
    """What a valid RRN tells: birth date, sex, whether a foreign resident, and the check-digit hint."""
    digits, born = _parse(value, today)
    g = digits[6]
    return RrnInfo(
        birth_date=born,
        sex="male" if int(g) % 2 else "female",
        foreign_resident=g in "5678",
        legacy_check_digit_matches=legacy_check_digit_matches(digits),
    )


def legacy_check_digit_matches(value: str) -> bool | None:
    """True or False for whether the pre-October-2020 check digit matches, or None when the birth date is on
    or after the reform (such a number was certainly issued without one). A mismatch is not an error."""
    digits, born = _parse(value, date.max)
    if born >= REFORM_DATE:
        return None
    return digits[12] == stdnum_rrn.calc_check_digit(digits[:12])


def format_rrn(value: str) -> str:
    """``9710139019902`` -> ``971013-9019902``."""
    digits = normalize_rrn(value)
    return f"{digits[:6]}-{digits[6:]}"


def mask_rrn(value: str) -> str:
    """Only the last 3 digits stay visible: ``******-****902``."""
    compact = "".join(ch for ch in unicodedata.normalize("NFKC", str(value)) if ch.isalnum())
    return "******-****" + compact[-3:].rjust(3, "*")
