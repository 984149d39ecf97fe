"""When is a doctor working? Clinic hours, public holidays, clinic days off, doctors' weekly templates,
dated exceptions and breaks, computed in memory from data loaded once.

Intervals are half-open ``[start, end)`` in integer seconds since the Unix epoch (UTC): cheap to compare,
subtract and slice, and free of local-time ambiguity. Local wall times become instants with ``zoneinfo``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlmodel import Session

from core.models.clinic import Clinic
from core.models.schedule import ClinicDay, DoctorSchedule, ScheduleBreak, ScheduleException
from core.scheduling.holidays import PublicCalendar, public_calendar

if TYPE_CHECKING:
    from core.scheduling.setup import ClinicSetup

Interval = tuple[int, int]


@dataclass(frozen=True)
class WorkInterval:
    start: int
    end: int
    room_id: int | None


@dataclass(frozen=True)
class DayInfo:
    day: date
    open: bool
    weekday: int  # the weekday whose hours apply (a make-up Saturday uses the day it replaces)
    reason: str | None = None  # why closed, or the holiday a clinic works on


def to_epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def local_instant(day: date, at: time, tz: ZoneInfo) -> int:
    """The instant of a local wall time (the first of two in a repeated hour; a skipped hour moves on)."""
    return to_epoch(datetime.combine(day, at, tzinfo=tz))


def subtract(intervals: list[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    """``intervals`` minus ``cuts``; both sorted or not, result sorted."""
    result = sorted(intervals)
    for cut_start, cut_end in sorted(cuts):
        next_result = []
        for start, end in result:
            if cut_end <= start or cut_start >= end:
                next_result.append((start, end))
                continue
            if start < cut_start:
                next_result.append((start, cut_start))
            if cut_end < end:
                next_result.append((cut_end, end))
        result = next_result
    return result


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out = []
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                out.append((start, end))
    return sorted(out)


@dataclass
class ClinicCalendar:
    """Everything needed to answer "when does doctor D work on day X" for one clinic and date range."""

    clinic: Clinic
    tz: ZoneInfo
    hours: dict[int, list[tuple[time, time]]]
    days: dict[date, ClinicDay]
    templates: dict[int, list[DoctorSchedule]] = field(default_factory=dict)
    exceptions: dict[tuple[int, date], list[ScheduleException]] = field(default_factory=dict)
    weekly_breaks: dict[tuple[int, int], list[ScheduleBreak]] = field(default_factory=dict)
    dated_breaks: dict[tuple[int, date], list[ScheduleBreak]] = field(default_factory=dict)
    _public: dict[int, PublicCalendar] = field(default_factory=dict)
    _instants: dict[tuple[date, time], int] = field(default_factory=dict)
    _days: dict[date, DayInfo] = field(default_factory=dict)
    _clinic_day: dict[date, list[Interval] | None] = field(default_factory=dict)
    _weekly: dict[tuple[int, int], list[tuple[time, time, int | None, date | None, date | None]]] | None = None
    _offsets: dict[date, int] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, clinic: Clinic, doctor_ids: Iterable[int] | None, first: date,
             last: date) -> ClinicCalendar:
        """The clinic's set-up for ``first``..``last`` (inclusive) and the given doctors (None: all), from the
        per-process set-up cache (one small query checks that it is current)."""
        from core.scheduling.setup import cached

        assert clinic.id is not None
        return cls.from_setup(clinic, cached(session, clinic.id), doctor_ids, first, last)

    @classmethod
    def from_setup(cls, clinic: Clinic, setup: ClinicSetup, doctor_ids: Iterable[int] | None = None,
                   first: date | None = None, last: date | None = None) -> ClinicCalendar:
        """A calendar over a cached set-up, limited to some doctors and dates when given (the rows are shared,
        read-only; the memo tables are this calendar's own)."""
        ids = None if doctor_ids is None else set(doctor_ids)
        lo, hi = first or date.min, last or date.max

        def wanted(doctor_id: int, day: date | None = None) -> bool:
            return (ids is None or doctor_id in ids) and (day is None or lo <= day <= hi)

        return cls(
            clinic, ZoneInfo(clinic.timezone), setup.hours, setup.days,
            templates={d: rows for d, rows in setup.templates.items() if wanted(d)},
            exceptions={k: rows for k, rows in setup.exceptions.items() if wanted(*k)},
            weekly_breaks={k: rows for k, rows in setup.weekly_breaks.items() if wanted(k[0])},
            dated_breaks={k: rows for k, rows in setup.dated_breaks.items() if wanted(*k)},
        )

    def public(self, year: int) -> PublicCalendar:
        if year not in self._public:
            self._public[year] = public_calendar(self.clinic.country, year, self.clinic.locale)
        return self._public[year]

    def instant(self, day: date, at: time) -> int:
        """``local_instant`` memoised: every doctor shares the clinic's days and usual hours."""
        key = (day, at)
        value = self._instants.get(key)
        if value is None:
            value = self._instants[key] = local_instant(day, at, self.tz)
        return value

    def offset_at(self, moment: int) -> int:
        """The zone's UTC offset in seconds at an instant."""
        return int(datetime.fromtimestamp(moment, self.tz).utcoffset().total_seconds())  # type: ignore[union-attr]

    def working_offset(self, day: date, moment: int) -> int:
        """The UTC offset during working hours of ``day`` (clocks change at night; checked for the first
        instant asked about that day)."""
        offset = self._offsets.get(day)
        if offset is None:
            offset = self._offsets[day] = self.offset_at(moment)
        return offset

    def _templates_for(self, doctor_id: int, weekday: int) -> list[tuple[time, time, int | None, date | None,
                                                                         date | None]]:
        if self._weekly is None:
            weekly: dict[tuple[int, int], list[tuple[time, time, int | None, date | None, date | None]]] = {}
            for doctor, rows in self.templates.items():
                for t in rows:
                    weekly.setdefault((doctor, t.weekday), []).append(
                        (t.start_time, t.end_time, t.room_id, t.valid_from, t.valid_to))
            self._weekly = weekly
        return self._weekly.get((doctor_id, weekday), [])

    def day_info(self, day: date) -> DayInfo:
        cached = self._days.get(day)
        if cached is None:
            cached = self._days[day] = self._day_info(day)
        return cached

    def _day_info(self, day: date) -> DayInfo:
        public = self.public(day.year)
        own = self.days.get(day)
        weekday = public.weekday_for(day)
        if own is not None and own.closed:
            return DayInfo(day, False, weekday, own.reason or "clinic day off")
        if own is not None:  # the clinic works on this day whatever the public calendar says
            return DayInfo(day, True, weekday, public.holidays.get(day))
        if public.is_holiday(day):
            return DayInfo(day, False, weekday, public.holidays[day])
        return DayInfo(day, True, weekday)

    def clinic_intervals(self, info: DayInfo) -> list[Interval] | None:
        """The clinic's opening hours that day; ``None`` when the clinic sets no hours at all (no limit)."""
        if not info.open:
            return []
        if not self.hours:
            return None
        if info.day not in self._clinic_day:
            self._clinic_day[info.day] = sorted((self.instant(info.day, s), self.instant(info.day, e))
                                                for s, e in self.hours.get(info.weekday, []))
        return self._clinic_day[info.day]

    def doctor_intervals(self, doctor_id: int, day: date, *, with_breaks: bool = True) -> list[WorkInterval]:
        """The doctor's working time on ``day`` as instants, after clinic hours, days off and breaks."""
        info = self.day_info(day)
        if not info.open:
            return []
        raw: list[tuple[time, time, int | None]]
        exceptions = self.exceptions.get((doctor_id, day))
        if exceptions:
            if any(e.kind == "off" for e in exceptions):
                return []
            raw = [(e.start_time, e.end_time, e.room_id) for e in exceptions
                   if e.start_time is not None and e.end_time is not None]
        else:
            raw = [(start_t, end_t, room_id)
                   for start_t, end_t, room_id, valid_from, valid_to in self._templates_for(doctor_id, info.weekday)
                   if (valid_from is None or valid_from <= day) and (valid_to is None or day <= valid_to)]
        if not raw:
            return []
        clinic = self.clinic_intervals(info)
        cuts: list[Interval] = []
        if with_breaks:
            breaks = self.weekly_breaks.get((doctor_id, info.weekday), []) + self.dated_breaks.get((doctor_id, day), [])
            for b in breaks:
                cuts.append((self.instant(day, b.start_time), self.instant(day, b.end_time)))
        out: list[WorkInterval] = []
        for start_t, end_t, room_id in raw:
            pieces = [(self.instant(day, start_t), self.instant(day, end_t))]
            if clinic is not None:
                pieces = intersect(pieces, clinic)
            if cuts:
                pieces = subtract(pieces, cuts)
            out.extend(WorkInterval(s, e, room_id) for s, e in pieces if s < e)
        return sorted(out, key=lambda w: w.start)

    def local_days(self, start: datetime, end: datetime) -> list[date]:
        """The local dates an instant range touches."""
        first = start.astimezone(self.tz).date()
        last = (end - timedelta(microseconds=1)).astimezone(self.tz).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def covers(self, doctor_id: int, start: datetime, end: datetime) -> bool:
        """Whether ``[start, end)`` lies inside the doctor's working time (breaks excluded)."""
        s, e = to_epoch(start), to_epoch(end)
        pieces: list[Interval] = []
        for day in self.local_days(start, end):
            pieces.extend((w.start, w.end) for w in self.doctor_intervals(doctor_id, day))
        # join touching pieces (e.g. across midnight), then look for one that holds the range
        merged: list[list[int]] = []
        for ps, pe in sorted(pieces):
            if merged and ps <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], pe)
            else:
                merged.append([ps, pe])
        return any(ms <= s and e <= me for ms, me in merged)
