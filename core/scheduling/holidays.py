"""Public holidays and make-up workdays of a clinic's country, from the ``holidays`` package.

``holidays`` knows substituted days: a bridge day off (e.g. HU Friday 2026-01-02) is listed as a holiday,
and the weekend day worked instead (Saturday 2026-01-10) is in ``weekend_workdays``; ``is_working_day``
answers True for it. On such a Saturday a clinic works the hours of the weekday it stands in for.
The package needs yearly updates: decrees for make-up days are published a year ahead at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import holidays as holidays_lib


@dataclass(frozen=True)
class PublicCalendar:
    country: str
    year: int
    holidays: dict[date, str]
    makeup_workdays: dict[date, date | None]  # weekend workday -> the day off it replaces, if known

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays

    def weekday_for(self, day: date) -> int:
        """The weekday whose hours apply on ``day`` (a make-up Saturday works like the day it replaces)."""
        if day in self.makeup_workdays:
            replaced = self.makeup_workdays[day]
            return replaced.weekday() if replaced is not None else day.weekday()
        return day.weekday()


def _language(cls: type, locale: str | None) -> str | None:
    if not locale:
        return None
    supported = getattr(cls, "supported_languages", ()) or ()
    base = locale.replace("-", "_").split("_")[0]
    for candidate in (locale, locale.replace("-", "_"), base):
        if candidate in supported:
            return candidate
    return next((lang for lang in supported if lang.split("_")[0] == base), None)


_DATE_FORMATS = ("%m/%d/%Y", "%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y", "%Y. %m. %d.", "%Y.%m.%d", "%d-%m-%Y")


@lru_cache(maxsize=256)
def public_calendar(country: str, year: int, locale: str | None = None) -> PublicCalendar:
    """Holidays of ``country`` in ``year`` with names in ``locale`` when the package has it.

    An unsupported country gives an empty calendar: the clinic's own days off still apply.
    """
    country = (country or "").upper()
    try:
        cls = holidays_lib.country_holidays(country).__class__
    except NotImplementedError:
        return PublicCalendar(country, year, {}, {})
    language = _language(cls, locale)
    # neighbouring years too: a make-up Saturday in January may stand in for a day off in December
    table = holidays_lib.country_holidays(country, years=range(year - 1, year + 2), language=language)
    around = {d: str(n) for d, n in sorted(table.items())}
    named = {d: n for d, n in around.items() if d.year == year}
    makeup: dict[date, date | None] = {}
    # the substituted day's name quotes the workday's date, formatted per translation
    formats = {getattr(table, "substituted_date_format", None), *_DATE_FORMATS} - {None}
    for workday in sorted(d for d in getattr(table, "weekend_workdays", set()) if d.year == year):
        stamps = {workday.strftime(f) for f in formats if f}
        makeup[workday] = next((d for d, n in around.items() if any(s in n for s in stamps)), None)
    return PublicCalendar(country, year, named, makeup)
