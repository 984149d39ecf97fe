"""Free-slot search: for one or several doctors, a duration and a date range, the start times at which an
appointment fits, given clinic hours, holidays and days off, templates, exceptions, breaks and the
appointments already booked (the doctor's and the room's).

Two queries on one read-only connection: the clinic row with its set-up generation (the set-up itself comes
from the per-process cache of ``core.scheduling.setup``), then the busy intervals of the doctors and rooms as
integer epoch seconds computed by the database (one compiled Core statement, no ORM objects). The rest is
integer arithmetic in memory: per doctor and day, the working intervals minus the busy ones in one sweep,
then the grid steps that fit as ``range`` s of plain tuples. Only the page that is returned is turned into
date strings, each distinct instant once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, Select, bindparam, cast, func, or_, select
from sqlalchemy.engine import Connection, Row
from sqlmodel import Session

from core.clock import now
from core.models.appointment import Appointment
from core.scheduling.calendar import ClinicCalendar, Interval, to_epoch
from core.scheduling.errors import FieldErrors
from core.scheduling.setup import current

if TYPE_CHECKING:
    from core.app_context import Praxis

MAX_DAYS = 62
MAX_DOCTORS = 100
_DAY = 86400
LONGEST_APPOINTMENT = timedelta(hours=24)  # core.scheduling.appointments refuses longer ones

# A slot is a plain tuple (start, doctor_id, end, room_id), times in epoch seconds: thousands are made per
# search, and a tuple costs a fraction of an object.
SlotTuple = tuple[int, int, int, int | None]
_BY_START_THEN_DOCTOR = itemgetter(0, 1)


def _epoch(dialect: str, column: Any) -> Any:
    """The column as integer epoch seconds, computed by the database (parsing thousands of datetimes in
    Python would cost more than the whole search)."""
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.extract("epoch", column), BigInteger)


_BUSY: dict[str, Select[Any]] = {}


def _busy_statement(dialect: str) -> Select[Any]:
    """One statement per dialect, built once (SQLAlchemy then reuses its compiled form). The lower bound on
    ``start_at`` keeps the index range to the searched days instead of the clinic's whole history."""
    statement = _BUSY.get(dialect)
    if statement is None:
        t = Appointment.__table__  # type: ignore[attr-defined]
        at = t.c.start_at.type
        statement = _BUSY[dialect] = (
            select(t.c.doctor_id, t.c.room_id, _epoch(dialect, t.c.start_at), _epoch(dialect, t.c.end_at))
            .where(t.c.clinic_id == bindparam("clinic_id"), t.c.active == True,  # noqa: E712
                   t.c.start_at >= bindparam("earliest", type_=at), t.c.start_at < bindparam("end", type_=at),
                   t.c.end_at > bindparam("start", type_=at),
                   or_(t.c.doctor_id.in_(bindparam("doctors", expanding=True)),
                       t.c.room_id.in_(bindparam("rooms", expanding=True)))))
    return statement


def busy(connection: Connection | Session, clinic_id: int, doctor_ids: list[int], start: datetime, end: datetime,
         room_ids: list[int] | tuple[()] = ()) -> Sequence[Row[tuple[int, int | None, int, int]]]:
    """``(doctor_id, room_id, start, end)`` (epoch seconds) of the active appointments of these doctors or
    rooms overlapping the range."""
    if isinstance(connection, Session):
        connection = connection.connection()
    return connection.execute(_busy_statement(connection.dialect.name), {
        "clinic_id": clinic_id, "earliest": start - LONGEST_APPOINTMENT, "start": start, "end": end,
        "doctors": list(doctor_ids), "rooms": list(room_ids)}).all()


class _Busy:
    """Busy intervals of one doctor or room sorted by start, with a fast window lookup."""

    __slots__ = ("intervals", "starts")

    def __init__(self, intervals: list[Interval]) -> None:
        self.intervals = sorted(intervals)
        self.starts = [s for s, _ in self.intervals]

    def within(self, start: int, end: int) -> list[Interval]:
        lo = bisect_left(self.starts, start - _DAY)  # appointments last at most 24 h
        hi = bisect_right(self.starts, end)
        return [iv for iv in self.intervals[lo:hi] if iv[1] > start]


_EMPTY = _Busy([])


def find(calendar: ClinicCalendar, busy_by_doctor: dict[int, _Busy], busy_by_room: dict[int, _Busy],
         doctor_ids: list[int], duration: int, first: date, last: date, step: int, not_before: int,
         room_id: int | None = None, limit: int | None = None) -> tuple[int, list[SlotTuple]]:
    """The pure computation (seconds throughout): how many slots there are, and the first ``limit`` of them
    (all when None) as ``(start, doctor_id, end, room_id)``, by start then doctor. Slots start on multiples of
    ``step`` in local time.

    Days are taken in order and each day's slots sorted on their own: a doctor's working time on a local day
    lies within that day, so every slot of a day starts before any slot of the next. Once the page is full,
    the later slots are only counted, not made.
    """
    total = 0
    page: list[SlotTuple] = []
    working_offset = calendar.working_offset
    busy_of = [(doctor_id, busy_by_doctor.get(doctor_id, _EMPTY)) for doctor_id in doctor_ids]
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        day_slots: list[SlotTuple] | None = [] if limit is None or len(page) < limit else None
        offset: int | None = None
        for doctor_id, doctor_busy in busy_of:
            for work in calendar.doctor_intervals(doctor_id, day):
                work_start, work_end = work.start, work.end
                if work_end - work_start < duration or work_end <= not_before:
                    continue
                use_room = room_id if room_id is not None else work.room_id
                cuts = doctor_busy.within(work_start, work_end)
                if use_room is not None:
                    room_cuts = busy_by_room.get(use_room, _EMPTY).within(work_start, work_end)
                    if room_cuts:
                        cuts = sorted(cuts + room_cuts)
                # sweep the working interval past the cuts (sorted by start; a last empty cut at its end):
                # the gaps are the free pieces
                cuts.append((work_end, work_end))
                cursor = work_start if work_start >= not_before else not_before
                for cut_start, cut_end in cuts:
                    if cut_start > cursor:
                        free_end = cut_start if cut_start < work_end else work_end
                        if free_end - cursor >= duration:
                            if offset is None:  # the calendar fixes it at the first instant asked that day
                                offset = working_offset(day, cursor)
                            grid = -((-(cursor + offset)) // step) * step - offset  # round up to the local grid
                            last_start = free_end - duration
                            if grid <= last_start:
                                total += (last_start - grid) // step + 1
                                if day_slots is not None:
                                    day_slots.extend((t, doctor_id, t + duration, use_room)
                                                     for t in range(grid, last_start + 1, step))
                    if cut_end > cursor:
                        cursor = cut_end
                        if cursor >= work_end:
                            break
        if day_slots:
            day_slots.sort(key=_BY_START_THEN_DOCTOR)  # stable: ties keep the doctors' order
            page.extend(day_slots if limit is None else day_slots[:limit - len(page)])
    return total, page


def render(slots: list[SlotTuple], tz: ZoneInfo) -> list[dict[str, Any]]:
    """Slots as dictionaries with ISO times in UTC and local wall time; each distinct instant is formatted
    once (many doctors share the same start times)."""
    texts: dict[int, tuple[str, str]] = {}

    def text(moment: int) -> tuple[str, str]:
        found = texts.get(moment)
        if found is None:
            utc = datetime.fromtimestamp(moment, UTC)
            found = texts[moment] = (utc.isoformat(), utc.astimezone(tz).replace(tzinfo=None).isoformat())
        return found

    out = []
    for start, doctor_id, end, room_id in slots:
        start_at, start_local = text(start)
        end_at, end_local = text(end)
        out.append({"doctor_id": doctor_id, "room_id": room_id, "start_at": start_at, "end_at": end_at,
                    "start_local": start_local, "end_local": end_local})
    return out


def search(praxis: Praxis, clinic_id: int, doctor_ids: list[int], duration_minutes: int, first: date, last: date,
           *, step_minutes: int = 15, room_id: int | None = None, limit: int = 500,
           include_past: bool = False) -> dict[str, Any]:
    """Free slots, earliest first, at most ``limit``; times in UTC and clinic-local wall time."""
    errors = FieldErrors()
    if not doctor_ids:
        errors.add("doctor_id", "name at least one doctor", "required")
    elif len(doctor_ids) > MAX_DOCTORS:
        errors.add("doctor_id", f"at most {MAX_DOCTORS} doctors", "too_many")
    if not 5 <= duration_minutes <= 24 * 60:
        errors.add("duration", "between 5 and 1440 minutes", "out_of_range")
    if not 5 <= step_minutes <= 240:
        errors.add("step", "between 5 and 240 minutes", "out_of_range")
    if last < first:
        errors.add("to", "must not be before from", "end_before_start")
    elif (last - first).days + 1 > MAX_DAYS:
        errors.add("to", f"search at most {MAX_DAYS} days at a time", "range_too_long")
    errors.raise_if_any()
    doctors = sorted(set(doctor_ids))
    with praxis.engine.connect() as connection:
        # a read: on SQLite a plain BEGIN, not the write lock. The option is set on this connection rather
        # than through core.db.reader(), whose per-call engine copy would miss the set-up cache (keyed by engine).
        connection.execution_options(praxis_read_only=True)
        with Session(bind=connection) as session:
            clinic, setup = current(session, clinic_id)
            calendar = ClinicCalendar.from_setup(clinic, setup, doctors, first, last)
            tz = calendar.tz
            range_start = datetime.combine(first, datetime.min.time(), tzinfo=tz) - timedelta(days=1)
            range_end = datetime.combine(last + timedelta(days=2), datetime.min.time(), tzinfo=tz)
            rooms = {t.room_id for rows in calendar.templates.values() for t in rows if t.room_id is not None}
            rooms |= {e.room_id for rows in calendar.exceptions.values() for e in rows if e.room_id is not None}
            if room_id is not None:
                rooms.add(room_id)
            taken = busy(connection, clinic_id, doctors, range_start, range_end, sorted(rooms))
    by_doctor: dict[int, list[Interval]] = {}
    by_room: dict[int, list[Interval]] = {}
    for doctor_id, booked_room, start_at, end_at in taken:
        interval = (start_at, end_at)
        by_doctor.setdefault(doctor_id, []).append(interval)
        if booked_room is not None:
            by_room.setdefault(booked_room, []).append(interval)
    not_before = 0 if include_past else to_epoch(now())
    total, page = find(calendar, {d: _Busy(v) for d, v in by_doctor.items()},
                       {r: _Busy(v) for r, v in by_room.items()}, doctors, duration_minutes * 60, first, last,
                       step_minutes * 60, not_before, room_id, limit)
    return {"timezone": clinic.timezone, "duration_minutes": duration_minutes, "total": total,
            "truncated": total > limit, "slots": render(page, tz)}
