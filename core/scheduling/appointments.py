"""The appointment book: book, change, move, copy, resize, status, cancel, no-show, trash, restore, pinboard.

Every write is one transaction that, in order: validates the input (422 with field errors), checks the
doctor's working time (outside it needs ``overbook``), runs the plugins' ``praxis_validate_appointment``
veto, takes the doctor's and room's booking locks and looks for overlaps (409 listing them, unless
``overbook``), writes the row, its history entry (before/after), the audit entry and the domain event
(outbox). Nothing is queued if anything fails: the event rows roll back with the change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import and_, bindparam, exists, insert, literal, null
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Bundle
from sqlmodel import Session, col, func, or_, select

from core import audit
from core.clock import now
from core.db import reader, transaction
from core.events import emit
from core.models.appointment import Appointment, AppointmentChange
from core.models.auth import Membership, User
from core.models.clinic import Clinic
from core.models.patient import Patient
from core.models.schedule import ClinicSetupGeneration
from core.patients.hooks import pinned_plugin_state
from core.scheduling.calendar import ClinicCalendar, to_epoch
from core.scheduling.conflicts import describe, find_conflicts, lock_resources
from core.scheduling.errors import Conflict, FieldErrors, Forbidden, NotFound, VersionConflict, invalid
from core.scheduling.options import STAMPS, Options
from core.scheduling.people import check_patient, check_staff, patient_errors, staff_errors
from core.scheduling.setup import ClinicSetup
from core.scheduling.setup import current as current_setup
from core.scheduling.setup import peek as peek_setup
from core.scheduling.setup import refresh as refresh_setup
from plugin_sdk.events import EventName

if TYPE_CHECKING:
    from core.app_context import Praxis

MAX_DURATION = timedelta(hours=24)
MAX_SERVICES = 100
# fields a client may set directly (create / patch)
EDITABLE = ("patient_id", "new_patient_name", "new_patient_phone", "doctor_id", "room_id", "assistant_id", "start_at",
            "end_at", "type_code", "source_code", "services", "notes", "communication_status")
PLACEMENT = ("doctor_id", "room_id", "start_at", "end_at")
# fields kept in the change history and sent in events
TRACKED = EDITABLE + ("is_new_patient", "status", "arrived_at", "seated_at", "done_at", "cancel_reason", "cancel_note",
                      "cancelled_at", "no_show_reason", "deleted_at", "delete_reason", "pinned_at", "pin_note",
                      "overbooked", "series_id", "copied_from")


@dataclass(frozen=True)
class Caller:
    """Who acts, and whether they may overbook (``appointments.overbook`` in the clinic)."""

    actor: audit.Actor
    can_overbook: bool = False


@dataclass
class Placement:
    overbooked: bool = False
    outside_hours: bool = False
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID | date):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    return value


def snapshot(a: Appointment | Draft) -> dict[str, Any]:
    return {name: _json(getattr(a, name)) for name in TRACKED}


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def appointment_out(a: Appointment | Draft, tz: ZoneInfo, options: Options | None = None,
                    snap: dict[str, Any] | None = None) -> dict[str, Any]:
    """The appointment as the API gives it (``snap``: its ``snapshot`` when the caller has it already)."""
    out: dict[str, Any] = {"id": a.id, "clinic_id": a.clinic_id, "version": a.version, "active": a.active}
    out.update(snapshot(a) if snap is None else snap)
    out["start_at"], out["end_at"] = a.start_at.isoformat(), a.end_at.isoformat()
    out["start_local"] = a.start_at.astimezone(tz).replace(tzinfo=None).isoformat()
    out["end_local"] = a.end_at.astimezone(tz).replace(tzinfo=None).isoformat()
    out["duration_minutes"] = int((a.end_at - a.start_at).total_seconds() // 60)
    out["created_at"], out["created_by"] = a.created_at.isoformat(), a.created_by
    out["updated_at"], out["updated_by"] = a.updated_at.isoformat(), a.updated_by
    out["status_changed_at"] = _json(a.status_changed_at)
    if options is not None:
        status = options.get("status", a.status)
        out["status_label"] = status.label if status else a.status
        out["status_color"] = status.color if status else None
        out["status_role"] = status.role if status else None
    out["in_trash"] = a.deleted_at is not None or (options is not None and options.role_of(a.status) == "cancelled")
    return out


class Book:
    """One transaction's view of a clinic's appointment book."""

    def __init__(self, praxis: Praxis, session: Session, clinic_id: int, caller: Caller, *,
                 guess: bool = False) -> None:
        """With ``guess``, a booking starts from the set-up and clinic this process last saw, without a query;
        ``create`` confirms both in the one query it runs (and starts again from fresh data if they changed)."""
        self.praxis = praxis
        self.session = session
        self.clinic_id = clinic_id
        self.caller = caller
        self.placing: Appointment | Draft | None = None
        cached = peek_setup(session, clinic_id) if guess else None
        if cached is not None and cached.seen_clinic is not None:
            self._use(cached.seen_clinic, cached)
        else:
            self._use(*current_setup(session, clinic_id))

    def _use(self, clinic: Any, setup: ClinicSetup) -> None:
        self.clinic, self.setup = clinic, setup
        self.options = Options(None, self.clinic_id, setup.options)
        self.tz = ZoneInfo(clinic.timezone)
        self.basis = _basis(clinic)

    # --- reading ----------------------------------------------------------------------------------

    def load(self, appointment_id: int, *, for_update: bool = True) -> Appointment:
        statement = select(Appointment).where(Appointment.id == appointment_id, Appointment.clinic_id == self.clinic_id)
        if for_update:
            statement = statement.with_for_update()
        appt = self.session.exec(statement).first()
        if appt is None:
            raise NotFound(f"appointment {appointment_id} not found")
        return appt

    def out(self, appt: Appointment) -> dict[str, Any]:
        return appointment_out(appt, self.tz, self.options)

    def is_cancelled(self, appt: Appointment) -> bool:
        return self.options.role_of(appt.status) == "cancelled"

    def in_trash(self, appt: Appointment) -> bool:
        return appt.deleted_at is not None or self.is_cancelled(appt)

    def compute_active(self, appt: Appointment) -> bool:
        return appt.deleted_at is None and appt.pinned_at is None and self.options.blocks(appt.status)

    # --- validation -------------------------------------------------------------------------------

    def check_room(self, room_id: int | None, errors: FieldErrors, field: str = "room_id") -> None:
        """Like ``schedules.check_room``, from the cached set-up (rooms are never deleted)."""
        if room_id is None:
            return
        room = self.setup.rooms.get(room_id)
        if room is None:
            errors.add(field, f"room {room_id} not found in this clinic", "unknown_room")
        elif not room.active:
            errors.add(field, f"room {room.name!r} is not in use", "room_inactive")

    def validate(self, appt: Appointment | Draft, changed: set[str], *, is_new: bool,
                 known: Known | None = None) -> None:
        """Field checks (422 listing every problem). ``known``: staff and patient already read by ``lookup``."""
        errors = FieldErrors()
        touched = set(EDITABLE) if is_new else changed
        if appt.start_at is None or appt.end_at is None:
            errors.add("start_at" if appt.start_at is None else "end_at", "a time is required", "required")
        elif appt.end_at <= appt.start_at:
            errors.add("end_at", "must be after the start", "end_before_start")
        elif appt.end_at - appt.start_at > MAX_DURATION:
            errors.add("end_at", "an appointment lasts at most 24 hours", "too_long")
        people = {k: getattr(appt, k) for k in ("doctor_id", "assistant_id") if k in touched}
        if people and known is not None:
            staff_errors(known.staff, errors, **people)
        elif people:
            check_staff(self.session, self.clinic_id, errors, **people)
        if "room_id" in touched:
            self.check_room(appt.room_id, errors)
        if appt.patient_id is not None:
            if touched & {"patient_id"} and known is not None:
                patient_errors(self.clinic_id, appt.patient_id, known.patient, errors)
            elif touched & {"patient_id"}:
                check_patient(self.session, self.clinic_id, appt.patient_id, errors)
            appt.new_patient_name = appt.new_patient_phone = None
            appt.is_new_patient = False
        else:
            appt.is_new_patient = True
            name = (appt.new_patient_name or "").strip()
            if not name:
                errors.add("new_patient_name", "give a patient, or the name and phone of a new one", "required")
            appt.new_patient_name = name or None
            if not appt.new_patient_phone:
                errors.add("new_patient_phone", "a new patient needs a phone number", "required")
            elif touched & {"new_patient_phone", "patient_id"}:
                normalised = normalise_phone(appt.new_patient_phone, self.clinic.country)
                if normalised is None:
                    errors.add("new_patient_phone", "not a valid phone number", "invalid_phone")
                else:
                    appt.new_patient_phone = normalised
        for name, kind in (("type_code", "type"), ("source_code", "source"),
                           ("communication_status", "communication_status")):
            value = getattr(appt, name)
            if name in touched and value is not None:
                option = self.options.get(kind, value)
                if option is None or not option.active:
                    known = ", ".join(o.code for o in self.options.lists[kind] if o.active)
                    errors.add(name, f"unknown code {value!r}; use one of: {known}", "unknown_code")
        if "services" in touched:
            if not isinstance(appt.services, list) or len(appt.services) > MAX_SERVICES:
                errors.add("services", f"a list of at most {MAX_SERVICES} services", "invalid")
            elif any(not isinstance(s, str | dict) for s in appt.services):
                errors.add("services", "each service is a code or an object", "invalid")
        if len(appt.notes or "") > 4000:
            errors.add("notes", "at most 4000 characters", "too_long")
        errors.raise_if_any()

    def veto(self, appt: Appointment, *, is_new: bool) -> None:
        data = {"id": appt.id, "clinic_id": self.clinic_id, **snapshot(appt), "start_at": appt.start_at.isoformat(),
                "end_at": appt.end_at.isoformat()}
        self.praxis.runtime.veto("praxis_validate_appointment", self.clinic_id, appointment=data, is_new=is_new)

    def check_hours(self, appt: Appointment | Draft, overbook: bool, *, pick_room: bool) -> bool:
        """Whether the time is outside the doctor's working hours; refuses it unless overbooking.

        With ``pick_room`` and no room given, the room of the doctor's schedule at that time is used.
        """
        _may_overbook(self.caller, overbook)
        return self.refuse_outside(self.hours(appt, pick_room=pick_room), overbook)

    def hours(self, appt: Appointment | Draft, *, pick_room: bool) -> bool:
        """Whether the time is inside the doctor's working hours (picking the schedule's room, see above)."""
        first = appt.start_at.astimezone(self.tz).date()
        last = appt.end_at.astimezone(self.tz).date()
        calendar = ClinicCalendar.from_setup(self.clinic, self.setup, [appt.doctor_id], first, last)
        inside = calendar.covers(appt.doctor_id, appt.start_at, appt.end_at)
        if inside and pick_room and appt.room_id is None:
            s = to_epoch(appt.start_at)
            for day in calendar.local_days(appt.start_at, appt.end_at):
                for w in calendar.doctor_intervals(appt.doctor_id, day):
                    if w.start <= s < w.end and w.room_id is not None:
                        appt.room_id = w.room_id
        return inside

    @staticmethod
    def refuse_outside(inside: bool, overbook: bool) -> bool:
        if not inside and not overbook:
            raise invalid("start_at", "outside the doctor's working hours (breaks, days off and holidays count); "
                          "overbook to book anyway", "outside_working_hours")
        return not inside

    def place(self, appt: Appointment, overbook: bool) -> Placement:
        """Lock the doctor and room, then refuse overlaps (or record them when overbooking)."""
        if overbook or self.session.get_bind().dialect.name != "postgresql":
            lock_resources(self.session, self.clinic_id, [appt.doctor_id], [appt.room_id])
        # On PostgreSQL an ordinary booking takes no lock: the exclusion constraints make a concurrent
        # overlapping insert wait for this transaction and then fail (``flush`` turns that into a 409), so
        # bookings of one doctor or room no longer queue behind each other's whole transaction.
        self.placing = appt
        clashes = find_conflicts(self.session, self.clinic_id, appt.start_at, appt.end_at, appt.doctor_id,
                                 appt.room_id, exclude_ids=[appt.id] if appt.id else [])
        listed = describe(clashes, appt.doctor_id, appt.room_id)
        if clashes and not overbook:
            raise Conflict("the time is taken", conflicts=listed)
        appt.overbooked = bool(clashes)
        return Placement(overbooked=bool(clashes), conflicts=listed)

    # --- writing ----------------------------------------------------------------------------------

    def record(self, appt: Appointment | Draft, action: str, event: str | None, before: dict[str, Any],
               placement: Placement | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the history entry, the audit entry(ies) and the domain event of a change already written.

        The history row is an ORM object on purpose: messaging plans the appointment's messages from the
        history rows a transaction flushes (``core.messaging.listener``). Audit entries are written at
        commit, after that planning, so the audit chain's head is locked only for the commit itself."""
        after = snapshot(appt)
        b, a = diff(before, after) if before else ({}, {k: v for k, v in after.items() if v not in (None, "", [])})
        actor = self.caller.actor
        assert appt.id is not None
        self.session.add(AppointmentChange(appointment_id=appt.id, clinic_id=self.clinic_id, actor_id=actor.id,
                                           actor_name=actor.name, action=action, before=b, after=a))
        target = f"appointment:{appt.id}"
        audit.record(self.session, actor, f"appointment.{action}", clinic_id=self.clinic_id, target=target,
                     data={"before": b, "after": a, **(extra or {})}, at_commit=True)
        if placement is not None and (placement.overbooked or placement.outside_hours):
            audit.record(self.session, actor, "appointment.overbooked", clinic_id=self.clinic_id, target=target,
                         data={"conflicts": placement.conflicts, "outside_working_hours": placement.outside_hours,
                               "start_at": appt.start_at.isoformat(), "end_at": appt.end_at.isoformat(),
                               "doctor_id": appt.doctor_id, "room_id": appt.room_id}, at_commit=True)
        out = appointment_out(appt, self.tz, self.options, after)
        if event is not None:
            emit(self.session, self.praxis.runtime, event, clinic_id=self.clinic_id, subject_type="appointment",
                 subject_id=appt.id, data={**out, "before": b, **(extra or {})}, actor=actor)
        return out

    def create(self, values: dict[str, Any], *, overbook: bool = False, series_id: int | None = None,
               copied_from: int | None = None) -> tuple[Draft, Placement]:
        """Validate, check the hours, veto and place a new appointment, then insert it (one statement).

        Everything the checks need from the database (the clinic, its set-up generation, whether the
        doctor and assistant work here, the patient, the overlapping appointments) is read by one query
        (``lookup``); the working hours are computed first with the set-up this process has cached, and
        again if that query shows the set-up or the clinic changed meanwhile."""
        unknown = set(values) - set(EDITABLE)
        if unknown:
            raise invalid(sorted(unknown)[0], "this field cannot be set", "not_allowed")
        at = now()
        for attempt in range(3):
            appt = Draft(clinic_id=self.clinic_id, status=self.options.status_for_role("booked").code,
                         status_changed_at=at, series_id=series_id, copied_from=copied_from, created_at=at,
                         created_by=self.caller.actor.id, updated_at=at, updated_by=self.caller.actor.id, **values)
            if appt.services is None:
                appt.services = []
            if appt.notes is None:
                appt.notes = ""
            timed = appt.start_at is not None and appt.end_at is not None and appt.end_at > appt.start_at
            inside = self.hours(appt, pick_room=True) if timed else True
            known = self.lookup(appt, final=attempt == 2)
            if known is not None:
                break
        assert known is not None
        self.validate(appt, set(values), is_new=True, known=known)
        _may_overbook(self.caller, overbook)
        placement = Placement(outside_hours=self.refuse_outside(inside, overbook))
        if appt.room_id is not None and "room_id" not in values:
            errors = FieldErrors()
            self.check_room(appt.room_id, errors)
            errors.raise_if_any()
        self.veto(appt, is_new=True)
        clashes = known.conflicts
        if overbook and self.session.get_bind().dialect.name == "postgresql":
            # overbookings serialise on the doctor's and room's locks (see ``place``), then look again
            lock_resources(self.session, self.clinic_id, [appt.doctor_id], [appt.room_id])
            clashes = find_conflicts(self.session, self.clinic_id, appt.start_at, appt.end_at, appt.doctor_id,
                                     appt.room_id)
        placement.conflicts = describe(clashes, appt.doctor_id, appt.room_id)
        if clashes and not overbook:
            raise Conflict("the time is taken", conflicts=placement.conflicts)
        appt.overbooked = placement.overbooked = bool(clashes)
        appt.active = True
        self.placing = appt
        try:
            appt.id = self.session.connection().execute(_INSERT, appt.row()).scalar_one()
        except IntegrityError as exc:
            self._lost(exc)
        return appt, placement

    def lookup(self, appt: Draft, *, final: bool = False) -> Known | None:
        """Run the booking's one read (see ``create``). None when the set-up or the clinic this book computed
        with turned out stale: the book now holds the fresh ones, and the caller computes again."""
        room, assistant, patient = appt.room_id is not None, appt.assistant_id is not None, appt.patient_id is not None
        params: dict[str, Any] = {"clinic_id": self.clinic_id, "doctor_id": appt.doctor_id, "start": appt.start_at,
                                  "end": appt.end_at}
        if room:
            params["room_id"] = appt.room_id
        if assistant:
            params["assistant_id"] = appt.assistant_id
        if patient:
            params["patient_id"] = appt.patient_id
        rows = self.session.execute(_lookup_statement(room, assistant, patient), params).all()
        if not rows:
            raise NotFound(f"clinic {self.clinic_id} not found")
        first = rows[0]
        clinic, generation = first[0], first[1] or 0
        if generation != self.setup.generation or _basis(clinic) != self.basis:
            self._use(clinic, refresh_setup(self.session, self.clinic_id, generation))
            self.setup.seen_clinic = ClinicBasis(self.clinic_id, clinic.timezone, clinic.country, clinic.locale)
            if not final:
                return None
        self.clinic = clinic
        if self.setup.seen_clinic is None:
            self.setup.seen_clinic = ClinicBasis(self.clinic_id, clinic.timezone, clinic.country, clinic.locale)
        found = None if first[4] is None else (first[4], first[5], first[6])
        return Known(staff={"doctor_id": bool(first[2]), "assistant_id": bool(first[3])}, patient=found,
                     conflicts=[r[7] for r in rows if r[7].id is not None])

    def flush(self) -> None:
        try:
            self.session.flush()
        except IntegrityError as exc:
            self._lost(exc)

    def _lost(self, exc: IntegrityError) -> NoReturn:
        """A PostgreSQL exclusion constraint caught an overlap: a concurrent booking won (409 once rolled back)."""
        if "overlap" in str(exc.orig):
            appt = self.placing
            if appt is None:
                raise Conflict("the time is taken", conflicts=[]) from exc
            raise RaceLost(self.clinic_id, appt.start_at, appt.end_at, appt.doctor_id, appt.room_id,
                           appt.id) from exc
        raise exc


@dataclass(frozen=True)
class ClinicBasis:
    """The clinic's fields the appointment book computes with, as last read (``setup.seen_clinic``)."""

    id: int
    timezone: str
    country: str
    locale: str


def _basis(clinic: Any) -> tuple[str, str, str]:
    return clinic.timezone, clinic.country, clinic.locale


@dataclass
class Known:
    """What ``Book.lookup`` read: whether the doctor and assistant work in the clinic, the patient's
    (clinic_id, deleted_at, merged_into) or None, and the active appointments overlapping the time."""

    staff: dict[str, bool]
    patient: tuple[Any, Any, Any] | None
    conflicts: list[Any]  # rows with the columns ``describe`` reads


_TABLE = Appointment.__table__  # type: ignore[attr-defined]
_CONFLICT = Bundle("conflict", *(_TABLE.c[name] for name in (
    "id", "start_at", "end_at", "doctor_id", "room_id", "status", "patient_id", "new_patient_name")))
_COLUMNS = tuple(c.name for c in _TABLE.columns if c.name != "id")
_DEFAULTS = {name: (f.default_factory, None) if f.default_factory is not None else (None, f.default)
             for name, f in Appointment.model_fields.items() if name in _COLUMNS}
_INSERT = insert(_TABLE).returning(_TABLE.c.id)


class Draft:
    """A new appointment before and after its insert: the row's values as plain attributes. Building and
    flushing an ORM object for it cost about as much as all of the booking's checks."""

    id: int | None
    clinic_id: int
    patient_id: uuid.UUID | None
    new_patient_name: str | None
    new_patient_phone: str | None
    is_new_patient: bool
    doctor_id: int
    room_id: int | None
    assistant_id: int | None
    start_at: datetime
    end_at: datetime
    services: list[Any]
    notes: str
    status: str
    deleted_at: datetime | None
    overbooked: bool
    active: bool
    version: int
    created_at: datetime
    created_by: int | None
    updated_at: datetime
    updated_by: int | None
    status_changed_at: datetime | None

    def __init__(self, **values: Any) -> None:
        self.id = None
        for name, (factory, default) in _DEFAULTS.items():
            if name not in values:
                setattr(self, name, factory() if factory is not None else default)
        for name, value in values.items():
            setattr(self, name, value)

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COLUMNS}


_LOOKUPS: dict[tuple[bool, bool, bool], Any] = {}


def _lookup_statement(room: bool, assistant: bool, patient: bool) -> Any:
    """The booking's read (see ``Book.create``), built once per shape: one row per overlapping active
    appointment of the doctor (or in the room), or one row with none."""
    key = (room, assistant, patient)
    statement = _LOOKUPS.get(key)
    if statement is not None:
        return statement

    def works_here(param: str) -> Any:
        return exists().where(col(Membership.user_id) == col(User.id), Membership.clinic_id == bindparam("clinic_id"),
                              col(User.id) == bindparam(param), User.active == True)  # noqa: E712

    who = col(Appointment.doctor_id) == bindparam("doctor_id")
    if room:
        who = or_(who, col(Appointment.room_id) == bindparam("room_id"))
    columns: list[Any] = [Clinic, ClinicSetupGeneration.generation, works_here("doctor_id"),
                          works_here("assistant_id") if assistant else literal(False)]
    if patient:
        columns += [Patient.clinic_id, Patient.deleted_at, Patient.merged_into]
    else:
        columns += [null(), null(), null()]
    columns.append(_CONFLICT)
    statement = select(*columns).select_from(Clinic).outerjoin(
        ClinicSetupGeneration, col(ClinicSetupGeneration.clinic_id) == col(Clinic.id))
    if patient:
        statement = statement.outerjoin(Patient, col(Patient.id) == bindparam("patient_id"))
    statement = statement.outerjoin(Appointment, and_(
        col(Appointment.clinic_id) == col(Clinic.id), Appointment.active == True,  # noqa: E712
        col(Appointment.start_at) < bindparam("end"), col(Appointment.end_at) > bindparam("start"), who,
    )).where(col(Clinic.id) == bindparam("clinic_id")).order_by(col(Appointment.start_at))
    _LOOKUPS[key] = statement
    return statement


@contextmanager
def write(praxis: Praxis) -> Iterator[Session]:
    """A write transaction with the plugin-state cache pinned: the veto and the event fan-out read that
    cache, and on SQLite a refresh inside the transaction would wait for the write lock this one holds."""
    try:
        with pinned_plugin_state(praxis.runtime), transaction(praxis.engine) as session:
            yield session
    except RaceLost as lost:  # rolled back by now: list what won the race (it is committed)
        raise Conflict("the time is taken", conflicts=lost.winners(praxis)) from lost


class RaceLost(Exception):
    """A concurrent booking of the same doctor or room committed between the overlap check and the write."""

    def __init__(self, clinic_id: int, start: datetime, end: datetime, doctor_id: int, room_id: int | None,
                 appointment_id: int | None) -> None:
        super().__init__("the time is taken")
        self.args_ = (clinic_id, start, end, doctor_id, room_id, appointment_id)

    def winners(self, praxis: Praxis) -> list[dict[str, Any]]:
        clinic_id, start, end, doctor_id, room_id, appointment_id = self.args_
        from core.scheduling import conflicts

        with transaction(reader(praxis.engine)) as session:
            clashes = conflicts.find_conflicts(session, clinic_id, start, end, doctor_id, room_id,
                                     exclude_ids=[appointment_id] if appointment_id else [])
            return describe(clashes, doctor_id, room_id)


def _may_overbook(caller: Caller, overbook: bool) -> None:
    if overbook and not caller.can_overbook:
        raise Forbidden("overbooking needs the appointments.overbook permission", permission="appointments.overbook")


def normalise_phone(raw: str, country: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, (country or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- public operations ----------------------------------------------------------------------------


def create(praxis: Praxis, clinic_id: int, values: dict[str, Any], caller: Caller, *,
           overbook: bool = False) -> dict[str, Any]:
    """Book an appointment. Raises ValidationFailed (422), Forbidden (403) or Conflict (409)."""
    _may_overbook(caller, overbook)
    with write(praxis) as session:
        book = Book(praxis, session, clinic_id, caller, guess=True)
        appt, placement = book.create(values, overbook=overbook)
        return book.record(appt, "created", EventName.appointment_created, {}, placement)


def _change(
    praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, action: str,
    event: Callable[[Appointment, dict[str, Any]], str | None] | str | None, version: int | None,
    mutate: Callable[[Book, Appointment], set[str]], overbook: bool = False, extra: dict[str, Any] | None = None,
    also: Callable[[Book, Appointment], None] | None = None,
) -> dict[str, Any]:
    """Load (locked), check the version, apply ``mutate`` (returns the fields it set), validate, re-place when
    the appointment's time, doctor or room changed or it starts blocking time again, then record."""
    _may_overbook(caller, overbook)
    with write(praxis) as session:
        book = Book(praxis, session, clinic_id, caller)
        appt = book.load(appointment_id)
        if version is not None and appt.version != version:
            raise VersionConflict(f"the appointment changed (version {appt.version}, you sent {version}); reload it",
                                  current_version=appt.version)
        # no autoflush: the pending change must not reach the table (and its exclusion constraints)
        # before the overlap check has run
        with session.no_autoflush:
            before = snapshot(appt)
            was_active = appt.active
            changed = mutate(book, appt)
            appt.active = book.compute_active(appt)
            book.validate(appt, changed, is_new=False)
            placement = None
            moved = bool(changed & set(PLACEMENT))
            if appt.active and (moved or not was_active):
                placement = Placement()
                placement.outside_hours = book.check_hours(appt, overbook, pick_room=False)
                book.veto(appt, is_new=False)
                placed = book.place(appt, overbook)
                placement.overbooked, placement.conflicts = placed.overbooked, placed.conflicts
            else:
                if appt.active is False:
                    appt.overbooked = False
                book.veto(appt, is_new=False)
        at = now()
        appt.version += 1
        appt.updated_at, appt.updated_by = at, caller.actor.id
        session.add(appt)
        book.flush()
        if also is not None:
            also(book, appt)
        name = event(appt, before) if callable(event) else event
        return book.record(appt, action, name, before, placement, extra)


def get(praxis: Praxis, clinic_id: int, appointment_id: int) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        book = Book(praxis, session, clinic_id, Caller(audit.Actor.system()))
        return book.out(book.load(appointment_id, for_update=False))


def update(praxis: Praxis, clinic_id: int, appointment_id: int, values: dict[str, Any], caller: Caller, *,
           version: int | None = None, overbook: bool = False) -> dict[str, Any]:
    """Change any editable fields; a change of time, doctor or room is re-checked and emitted as a move."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise invalid(sorted(unknown)[0], "this field cannot be changed here", "not_allowed")

    def mutate(book: Book, appt: Appointment) -> set[str]:
        if book.in_trash(appt) and set(values) & set(PLACEMENT):
            raise invalid("start_at", "the appointment is in the trash; restore it first", "in_trash")
        changed = set()
        for key, value in values.items():
            if getattr(appt, key) != value:
                setattr(appt, key, value)
                changed.add(key)
        return changed

    def event(appt: Appointment, before: dict[str, Any]) -> str:
        moved = any(before.get(k) != snapshot(appt).get(k) for k in PLACEMENT)
        return EventName.appointment_moved if moved else EventName.appointment_changed

    return _change(praxis, clinic_id, appointment_id, caller, action="changed", event=event, version=version,
                   mutate=mutate, overbook=overbook)


def move(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, start_at: datetime,
         end_at: datetime | None = None, doctor_id: int | None = None, room_id: int | None | bool = False,
         version: int | None = None, overbook: bool = False) -> dict[str, Any]:
    """Move to another time, doctor or room (the duration is kept unless ``end_at`` is given). Moving an
    appointment from the pinboard puts it back in the grid. ``room_id=False`` keeps the room."""

    def mutate(book: Book, appt: Appointment) -> set[str]:
        if book.in_trash(appt):
            raise invalid("start_at", "the appointment is in the trash; restore it instead", "in_trash")
        changed = set()
        duration = appt.end_at - appt.start_at
        new = {"start_at": start_at, "end_at": end_at or start_at + duration}
        if doctor_id is not None:
            new["doctor_id"] = doctor_id
        if room_id is not False:
            new["room_id"] = room_id
        for key, value in new.items():
            if getattr(appt, key) != value:
                setattr(appt, key, value)
                changed.add(key)
        if appt.pinned_at is not None:
            appt.pinned_at, appt.pin_note = None, ""
            changed.add("pinned_at")
        return changed

    return _change(praxis, clinic_id, appointment_id, caller, action="moved", event=EventName.appointment_moved,
                   version=version, mutate=mutate, overbook=overbook)


def resize(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, end_at: datetime,
           version: int | None = None, overbook: bool = False) -> dict[str, Any]:
    def mutate(book: Book, appt: Appointment) -> set[str]:
        if book.in_trash(appt):
            raise invalid("end_at", "the appointment is in the trash; restore it first", "in_trash")
        if appt.end_at == end_at:
            return set()
        appt.end_at = end_at
        return {"end_at"}

    return _change(praxis, clinic_id, appointment_id, caller, action="resized", event=EventName.appointment_moved,
                   version=version, mutate=mutate, overbook=overbook)


def copy(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, start_at: datetime,
         doctor_id: int | None = None, room_id: int | None | bool = False, overbook: bool = False) -> dict[str, Any]:
    """Book the same patient, type and services again at another time (or with another doctor)."""
    with write(praxis) as session:
        book = Book(praxis, session, clinic_id, caller)
        source = book.load(appointment_id, for_update=False)
        values = {k: getattr(source, k) for k in EDITABLE}
        values["services"] = list(source.services or [])
        values["start_at"] = start_at
        values["end_at"] = start_at + (source.end_at - source.start_at)
        values["communication_status"] = None
        if doctor_id is not None:
            values["doctor_id"] = doctor_id
        if room_id is not False:
            values["room_id"] = room_id
        elif doctor_id is not None and doctor_id != source.doctor_id:
            values["room_id"] = None
        if values["patient_id"] is not None:
            values.pop("new_patient_name"), values.pop("new_patient_phone")
        appt, placement = book.create({k: v for k, v in values.items()}, overbook=overbook, copied_from=source.id)
        return book.record(appt, "created", EventName.appointment_created, {}, placement, {"copied_from": source.id})


def set_status(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, status: str,
               version: int | None = None, overbook: bool = False) -> dict[str, Any]:
    """Move along the clinic's statuses (arrived, in treatment, done...), stamping arrival/seated/done times.
    Cancelling and no-shows have their own operations (they need a reason)."""

    def mutate(book: Book, appt: Appointment) -> set[str]:
        option = book.options.require("status", status, "status")
        assert option is not None
        if option.role in ("cancelled", "no_show"):
            raise invalid("status", f"use the {'cancel' if option.role == 'cancelled' else 'no-show'} action: "
                          "it needs a reason", "reason_required")
        if book.in_trash(appt):
            raise invalid("status", "the appointment is in the trash; restore it first", "in_trash")
        if appt.status == option.code:
            return set()
        previous_role = book.options.role_of(appt.status)
        appt.status, appt.status_changed_at = option.code, now()
        changed = {"status"}
        if previous_role == "no_show":
            appt.no_show_reason = None
        stamp = STAMPS.get(option.role or "")
        if stamp is not None:
            setattr(appt, stamp, appt.status_changed_at)
            changed.add(stamp)
        return changed

    return _change(praxis, clinic_id, appointment_id, caller, action="status_changed",
                   event=EventName.appointment_status_changed, version=version, mutate=mutate, overbook=overbook)


def cancel(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, reason: str, note: str = "",
           version: int | None = None) -> dict[str, Any]:
    """Cancel with a reason from the clinic's list; the appointment goes to the trash and frees its time."""

    def mutate(book: Book, appt: Appointment) -> set[str]:
        book.options.require("cancel_reason", reason, "reason")
        if book.in_trash(appt):
            raise invalid("reason", "the appointment is already cancelled or deleted", "in_trash")
        appt.status = book.options.status_for_role("cancelled").code
        appt.status_changed_at = appt.cancelled_at = now()
        appt.cancel_reason, appt.cancel_note = reason, note or ""
        appt.pinned_at = None
        return {"status", "cancel_reason", "cancel_note", "cancelled_at"}

    return _change(praxis, clinic_id, appointment_id, caller, action="cancelled",
                   event=EventName.appointment_cancelled, version=version, mutate=mutate)


def no_show(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, reason: str,
            version: int | None = None) -> dict[str, Any]:
    """Mark that the patient did not come, with a reason from the clinic's list."""

    def mutate(book: Book, appt: Appointment) -> set[str]:
        book.options.require("no_show_reason", reason, "reason")
        if book.in_trash(appt):
            raise invalid("reason", "the appointment is cancelled or deleted", "in_trash")
        appt.status = book.options.status_for_role("no_show").code
        appt.status_changed_at = now()
        appt.no_show_reason = reason
        return {"status", "no_show_reason"}

    return _change(praxis, clinic_id, appointment_id, caller, action="no_show",
                   event=EventName.appointment_status_changed, version=version, mutate=mutate)


def delete(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, reason: str,
           version: int | None = None, also: Callable[[Book, Appointment], None] | None = None) -> dict[str, Any]:
    """Move to the trash with a reason (kept, restorable); the time is freed."""
    if not (reason or "").strip():
        raise invalid("reason", "a reason is required", "required")

    def mutate(book: Book, appt: Appointment) -> set[str]:
        if appt.deleted_at is not None:
            raise invalid("reason", "the appointment is already in the trash", "in_trash")
        appt.deleted_at, appt.deleted_by, appt.delete_reason = now(), caller.actor.id, reason.strip()
        return {"deleted_at", "delete_reason"}

    return _change(praxis, clinic_id, appointment_id, caller, action="deleted", event=EventName.appointment_cancelled,
                   version=version, mutate=mutate, extra={"deleted": True}, also=also)


def restore(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, start_at: datetime | None = None,
            doctor_id: int | None = None, room_id: int | None | bool = False, version: int | None = None,
            overbook: bool = False) -> dict[str, Any]:
    """Take an appointment out of the trash (deleted or cancelled), at its own time or a new one; the time is
    checked again for conflicts."""

    def mutate(book: Book, appt: Appointment) -> set[str]:
        if not book.in_trash(appt):
            raise invalid("id", "the appointment is not in the trash", "not_in_trash")
        changed = set()
        if appt.deleted_at is not None:
            appt.deleted_at, appt.deleted_by, appt.delete_reason = None, None, ""
            changed.add("deleted_at")
        if book.is_cancelled(appt):
            appt.status = book.options.status_for_role("booked").code
            appt.status_changed_at = now()
            appt.cancel_reason, appt.cancel_note, appt.cancelled_at = None, "", None
            changed |= {"status", "cancel_reason"}
        if start_at is not None:
            duration = appt.end_at - appt.start_at
            appt.start_at, appt.end_at = start_at, start_at + duration
            changed |= {"start_at", "end_at"}
        if doctor_id is not None and doctor_id != appt.doctor_id:
            appt.doctor_id = doctor_id
            changed.add("doctor_id")
        if room_id is not False and room_id != appt.room_id:
            appt.room_id = room_id  # type: ignore[assignment]
            changed.add("room_id")
        return changed

    return _change(praxis, clinic_id, appointment_id, caller, action="restored",
                   event=EventName.appointment_restored, version=version, mutate=mutate, overbook=overbook)


def pin(praxis: Praxis, clinic_id: int, appointment_id: int, caller: Caller, *, note: str = "",
        version: int | None = None) -> dict[str, Any]:
    """Take the appointment out of the grid onto the pinboard, to be placed again with ``move``."""

    def mutate(book: Book, appt: Appointment) -> set[str]:
        if book.in_trash(appt):
            raise invalid("id", "the appointment is in the trash", "in_trash")
        if appt.pinned_at is not None:
            raise invalid("id", "the appointment is already on the pinboard", "pinned")
        appt.pinned_at, appt.pin_note = now(), note or ""
        return {"pinned_at", "pin_note"}

    return _change(praxis, clinic_id, appointment_id, caller, action="pinned", event=EventName.appointment_changed,
                   version=version, mutate=mutate)


# --- queries --------------------------------------------------------------------------------------


@dataclass
class Query:
    start: datetime | None = None
    end: datetime | None = None
    doctor_ids: list[int] = field(default_factory=list)
    room_ids: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    patient_id: uuid.UUID | None = None
    include_cancelled: bool = False
    limit: int = 500
    offset: int = 0


def local_range(tz: ZoneInfo, first: date, last: date) -> tuple[datetime, datetime]:
    """The instants from the start of local day ``first`` to the end of local day ``last``."""
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start, end


def list_appointments(praxis: Praxis, clinic_id: int, query: Query) -> dict[str, Any]:
    """Appointments in the grid (not deleted, not pinned; cancelled only when asked) overlapping the range."""
    with transaction(praxis.engine) as session:
        book = Book(praxis, session, clinic_id, Caller(audit.Actor.system()))
        conditions: list[Any] = [Appointment.clinic_id == clinic_id, col(Appointment.deleted_at).is_(None),
                                 col(Appointment.pinned_at).is_(None)]
        if query.start is not None:
            conditions.append(col(Appointment.end_at) > query.start)
        if query.end is not None:
            conditions.append(col(Appointment.start_at) < query.end)
        if query.doctor_ids:
            conditions.append(col(Appointment.doctor_id).in_(query.doctor_ids))
        if query.room_ids:
            conditions.append(col(Appointment.room_id).in_(query.room_ids))
        if query.patient_id is not None:
            conditions.append(Appointment.patient_id == query.patient_id)
        if query.statuses:
            conditions.append(col(Appointment.status).in_(query.statuses))
        elif not query.include_cancelled:
            cancelled = [o.code for o in book.options.lists["status"] if o.role == "cancelled"]
            conditions.append(col(Appointment.status).not_in(cancelled))
        total = session.exec(select(func.count()).select_from(Appointment).where(*conditions)).one()
        rows = session.exec(select(Appointment).where(*conditions)
                            .order_by(col(Appointment.start_at), col(Appointment.id))
                            .offset(query.offset).limit(query.limit)).all()
        return {"items": [book.out(a) for a in rows], "total": total, "limit": query.limit, "offset": query.offset}


def trash(praxis: Praxis, clinic_id: int, *, start: datetime | None = None, end: datetime | None = None,
          limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Deleted and cancelled appointments, newest first."""
    with transaction(praxis.engine) as session:
        book = Book(praxis, session, clinic_id, Caller(audit.Actor.system()))
        cancelled = [o.code for o in book.options.lists["status"] if o.role == "cancelled"]
        conditions: list[Any] = [Appointment.clinic_id == clinic_id,
                                 or_(col(Appointment.deleted_at).is_not(None), col(Appointment.status).in_(cancelled))]
        if start is not None:
            conditions.append(col(Appointment.end_at) > start)
        if end is not None:
            conditions.append(col(Appointment.start_at) < end)
        total = session.exec(select(func.count()).select_from(Appointment).where(*conditions)).one()
        rows = session.exec(select(Appointment).where(*conditions).order_by(col(Appointment.updated_at).desc())
                            .offset(offset).limit(limit)).all()
        return {"items": [book.out(a) for a in rows], "total": total, "limit": limit, "offset": offset}


def pinboard(praxis: Praxis, clinic_id: int) -> list[dict[str, Any]]:
    with transaction(praxis.engine) as session:
        book = Book(praxis, session, clinic_id, Caller(audit.Actor.system()))
        rows = session.exec(select(Appointment).where(
            Appointment.clinic_id == clinic_id, col(Appointment.pinned_at).is_not(None),
            col(Appointment.deleted_at).is_(None)).order_by(col(Appointment.pinned_at))).all()
        return [book.out(a) for a in rows if not book.is_cancelled(a)]


def history(praxis: Praxis, clinic_id: int, appointment_id: int) -> list[dict[str, Any]]:
    with transaction(praxis.engine) as session:
        book = Book(praxis, session, clinic_id, Caller(audit.Actor.system()))
        book.load(appointment_id, for_update=False)
        rows = session.exec(select(AppointmentChange).where(AppointmentChange.appointment_id == appointment_id)
                            .order_by(col(AppointmentChange.id))).all()
        return [{"id": r.id, "at": r.at.isoformat(), "actor_id": r.actor_id, "actor_name": r.actor_name,
                 "action": r.action, "before": r.before, "after": r.after} for r in rows]
