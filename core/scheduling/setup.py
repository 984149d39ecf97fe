"""A per-process cache of each clinic's static appointment-book set-up.

Booking an appointment or searching free slots needs the clinic's opening hours, own days off, every
doctor's weekly templates, dated exceptions and breaks, its rooms and its option lists (statuses, types,
sources...). Those change rarely but were read with seven queries per booking. Here they are loaded once
per process and clinic and reused until the clinic's generation (``core_clinic_setup_generation``)
changes: any transaction that adds, changes or deletes such a row raises it before it commits (an ORM
flush hook below catches every write through a session; the bulk deletes in ``core.scheduling.schedules``
raise it explicitly). Each use reads the clinic row together with its generation in one query, so a
change committed by any process is seen by the next booking, exactly as before.

The cached rows are detached copies shared between threads and must be treated as read-only.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.models.appointment import OPTION_KINDS, AppointmentOption
from core.models.clinic import Clinic
from core.models.schedule import (
    ClinicDay,
    ClinicHours,
    ClinicSetupGeneration,
    DoctorSchedule,
    Room,
    ScheduleBreak,
    ScheduleException,
)
from core.scheduling.errors import NotFound

BUMPED = "praxis.scheduling.setup_changed"
WATCHED = (ClinicHours, ClinicDay, DoctorSchedule, ScheduleException, ScheduleBreak, Room, AppointmentOption)


@dataclass(frozen=True)
class RoomInfo:
    id: int
    name: str
    active: bool


@dataclass
class ClinicSetup:
    """One clinic's set-up at one generation (all dates, all doctors)."""

    generation: int
    hours: dict[int, list[tuple[time, time]]]
    days: dict[date, ClinicDay]
    templates: dict[int, list[DoctorSchedule]]
    exceptions: dict[tuple[int, date], list[ScheduleException]]
    weekly_breaks: dict[tuple[int, int], list[ScheduleBreak]]
    dated_breaks: dict[tuple[int, date], list[ScheduleBreak]]
    rooms: dict[int, RoomInfo]
    options: dict[str, list[Any]] = field(default_factory=dict)  # kind -> [scheduling.options.Option]
    # the clinic's fields the appointment book computes with (id, timezone, country, locale), as last read
    # by a booking; a guess to be confirmed (clinic rows change without a new generation)
    seen_clinic: Any = None


_caches: weakref.WeakKeyDictionary[Engine, dict[int, ClinicSetup]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def current(session: Session, clinic_id: int) -> tuple[Clinic, ClinicSetup]:
    """The clinic (read now) and its set-up (cached while its generation stands). NotFound if no clinic."""
    row = session.exec(
        select(Clinic, ClinicSetupGeneration.generation)
        .outerjoin(ClinicSetupGeneration, ClinicSetupGeneration.clinic_id == Clinic.id)  # type: ignore[arg-type]
        .where(Clinic.id == clinic_id)
    ).first()
    if row is None:
        raise NotFound(f"clinic {clinic_id} not found")
    return row[0], _get(session, clinic_id, row[1] or 0)


def cached(session: Session, clinic_id: int) -> ClinicSetup:
    """The clinic's set-up, when the caller already holds the clinic row."""
    generation = session.exec(select(ClinicSetupGeneration.generation)
                              .where(ClinicSetupGeneration.clinic_id == clinic_id)).first() or 0
    return _get(session, clinic_id, generation)


def _get(session: Session, clinic_id: int, generation: int) -> ClinicSetup:
    if clinic_id in session.info.get(BUMPED, ()):
        # this transaction changed the set-up: its rows may still roll back, so they are never cached
        return _load(session, clinic_id, generation)
    engine = _engine_of(session)
    with _lock:
        found = _caches.setdefault(engine, {}).get(clinic_id)
    if found is None or found.generation != generation:
        found = _load(session, clinic_id, generation)
        with _lock:
            _caches.setdefault(engine, {})[clinic_id] = found
    return found


def peek(session: Session, clinic_id: int) -> ClinicSetup | None:
    """The set-up this process last cached for the clinic, without asking the database whether it is still
    current: a booking computes with it and confirms the generation in the query it has to run anyway
    (``refresh`` when it was stale). None when nothing is cached or this transaction changed the set-up."""
    if clinic_id in session.info.get(BUMPED, ()):
        return None
    with _lock:
        return _caches.get(_engine_of(session), {}).get(clinic_id)


def refresh(session: Session, clinic_id: int, generation: int) -> ClinicSetup:
    """The clinic's set-up at ``generation`` (read in this transaction), from the cache or loaded."""
    return _get(session, clinic_id, generation)


def forget(engine: Engine | None = None) -> None:
    """Drop cached set-ups (of one engine, or all)."""
    with _lock:
        if engine is None:
            _caches.clear()
        else:
            _caches.pop(engine, None)


def _load(session: Session, clinic_id: int, generation: int) -> ClinicSetup:
    from core.scheduling.options import DEFAULTS, Option

    def rows(model: Any) -> list[Any]:
        found = list(session.exec(select(model).where(model.clinic_id == clinic_id)).all())
        for item in found:
            session.expunge(item)
        return found

    hours: dict[int, list[tuple[time, time]]] = {}
    for h in rows(ClinicHours):
        hours.setdefault(h.weekday, []).append((h.start_time, h.end_time))
    setup = ClinicSetup(generation, hours, {d.day: d for d in rows(ClinicDay)}, {}, {}, {}, {}, {})
    for t in rows(DoctorSchedule):
        setup.templates.setdefault(t.doctor_id, []).append(t)
    for e in rows(ScheduleException):
        setup.exceptions.setdefault((e.doctor_id, e.day), []).append(e)
    for b in rows(ScheduleBreak):
        if b.weekday is not None:
            setup.weekly_breaks.setdefault((b.doctor_id, b.weekday), []).append(b)
        elif b.day is not None:
            setup.dated_breaks.setdefault((b.doctor_id, b.day), []).append(b)
    setup.rooms = {r.id: RoomInfo(r.id, r.name, r.active) for r in rows(Room) if r.id is not None}
    by_kind: dict[str, list[Option]] = {}
    for o in sorted(rows(AppointmentOption), key=lambda o: (o.position, o.id or 0)):
        by_kind.setdefault(o.kind, []).append(Option(o.code, o.label, o.color, o.role, o.position, o.active))
    setup.options = {kind: by_kind.get(kind) or list(DEFAULTS[kind]) for kind in OPTION_KINDS}
    return setup


def bump(session: Session, clinic_ids: set[int] | list[int] | int) -> None:
    """Raise the set-up generation of these clinics in the caller's transaction."""
    ids = sorted({clinic_ids} if isinstance(clinic_ids, int) else set(clinic_ids))
    if not ids:
        return
    session.info.setdefault(BUMPED, set()).update(ids)
    connection = session.connection()
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    table = ClinicSetupGeneration.__table__  # type: ignore[attr-defined]
    for clinic_id in ids:  # in id order: concurrent bumps of several clinics cannot deadlock
        statement = insert(table).values(clinic_id=clinic_id, generation=1)
        connection.execute(statement.on_conflict_do_update(
            index_elements=[table.c.clinic_id], set_={"generation": table.c.generation + 1}))


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _transaction_over(session: Session) -> None:
    session.info.pop(BUMPED, None)


@event.listens_for(Session, "after_flush")
def _bump_on_change(session: Session, _context: Any) -> None:
    changed: set[int] = set()
    for group in (session.new, session.dirty, session.deleted):
        for obj in group:
            if isinstance(obj, WATCHED) and obj.clinic_id is not None:
                changed.add(obj.clinic_id)
    if changed:
        bump(session, changed)
