"""The appointment book: day and week grids by doctor or by room, and everything done in them.

Reads and writes go through ``core.scheduling`` (the same code as ``/api/clinics/{id}/appointments``):
working hours, breaks, holidays and days off come from ``ClinicCalendar``; booking, moving, resizing,
copying, status changes, cancelling, the trash, the pinboard and the waitlist are the scheduling service's
operations with their checks, history, audit and events. This module lays the grid out in the clinic's
time zone and turns forms (and drags) into those calls.

Every change works as a plain form post (redirect back to the grid) and, with htmx, answers with an
``HX-Trigger: book-changed`` event on which the grid and the side panels reload themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from babel import dates as babel_dates
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlmodel import Session, col, select

from core.models.auth import Membership, Role, User
from core.models.patient import Patient, PatientAlert
from core.models.schedule import DoctorSchedule, Room
from core.scheduling import appointments as ap
from core.scheduling import slots as free_slots
from core.scheduling import waitlist
from core.scheduling.calendar import ClinicCalendar, subtract
from core.scheduling.errors import Conflict, Forbidden, NotFound, SchedulingError, VersionConflict
from core.scheduling.options import Options
from core.scheduling.schedules import get_clinic
from plugin_sdk.errors import ValidationFailed
from ui import i18n, menu
from ui.i18n import N_, _
from ui.routes import labs
from ui.screens import (
    FORM,
    Errors,
    call,
    clinic_today,
    clinic_zone,
    field_error_map,
    flag,
    form_of,
    full_name,
    htmx_response,
    local_instant,
    option_label,
    optional_int,
    parse_date,
    parse_time,
    plugin_panels,
    shade,
    status_label,
    text,
    tint,
    week_start,
)
from ui.web import Page, PageError, clinic_page, redirect_with_flash, render, render_text

router = APIRouter(prefix="/clinics/{clinic_id}/book", include_in_schema=False)
menu.register(menu.CoreItem("book", N_("Appointment book"), "/clinics/{clinic_id}/book", "appointments.view", 20))

STEPS = (10, 15, 20, 30)
DURATIONS = (10, 15, 20, 30, 45, 60, 90, 120, 180)
PX_PER_MINUTE = 1.6
DEFAULT_HOURS = (8 * 60, 18 * 60)
TRIGGER = "book-changed"
# Inputs of the book's dialogs: a service error about one of them is shown next to it.
DIALOG_FIELDS = frozenset({"date", "time", "duration", "doctor_id", "room_id", "type_code", "source_code", "notes",
                           "new_patient_name", "new_patient_phone", "patient_id", "reason", "note", "desired_date",
                           "window_start", "window_end"})
ACTION_TITLES = {
    "created": N_("Booked"), "changed": N_("Changed"), "moved": N_("Moved"), "resized": N_("Length changed"),
    "status_changed": N_("Status changed"), "cancelled": N_("Cancelled"), "no_show": N_("Marked as no-show"),
    "deleted": N_("Moved to the trash"), "restored": N_("Restored"), "pinned": N_("Put on the pinboard"),
}
FIELD_TITLES = {
    "start_at": N_("Start"), "end_at": N_("End"), "doctor_id": N_("Doctor"), "room_id": N_("Room"),
    "status": N_("Status"), "patient_id": N_("Patient"), "new_patient_name": N_("Name"),
    "new_patient_phone": N_("Phone"), "type_code": N_("Type"), "notes": N_("Notes"),
    "cancel_reason": N_("Cancel reason"), "delete_reason": N_("Reason"), "pinned_at": N_("Pinboard"),
    "no_show_reason": N_("No-show reason"), "communication_status": N_("Communication"),
}


# --- reading the clinic --------------------------------------------------------------------------------------


@dataclass
class Resources:
    doctors: list[tuple[int, str]]
    rooms: list[tuple[int, str]]

    def doctor_name(self, doctor_id: int | None) -> str:
        return next((n for i, n in self.doctors if i == doctor_id), "—")

    def room_name(self, room_id: int | None) -> str:
        return next((n for i, n in self.rooms if i == room_id), "")


def resources(session: Session, clinic_id: int) -> Resources:
    """Doctors: members with the doctor role or a working schedule here; rooms: those in use."""
    scheduled = set(session.exec(select(DoctorSchedule.doctor_id).where(DoctorSchedule.clinic_id == clinic_id)).all())
    rows = session.exec(select(User.id, User.name, Role.code)
                        .join(Membership, col(Membership.user_id) == col(User.id))
                        .join(Role, col(Role.id) == col(Membership.role_id))
                        .where(Membership.clinic_id == clinic_id, User.active == True)  # noqa: E712
                        .order_by(col(User.name))).all()
    doctors = [(int(uid), name) for uid, name, role in rows
               if uid is not None and (role == "doctor" or uid in scheduled)]
    rooms = [(int(r.id), r.name) for r in session.exec(select(Room).where(Room.clinic_id == clinic_id,
                                                                            Room.active == True)  # noqa: E712
                                                       .order_by(col(Room.position), col(Room.id))).all()
             if r.id is not None]
    return Resources(doctors, rooms)


def patients_of(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Names, chart numbers, VIP and whether medical alerts exist, for the patients shown in the grid."""
    if not ids:
        return {}
    rows = session.exec(select(Patient.id, Patient.family_name, Patient.given_name, Patient.chart_number,
                               Patient.vip).where(col(Patient.id).in_(list(ids)))).all()
    alerts = set(session.exec(select(PatientAlert.patient_id).where(col(PatientAlert.patient_id).in_(list(ids)))).all())
    return {pid: {"name": full_name(family, given), "chart": chart, "vip": vip, "alert": pid in alerts}
            for pid, family, given, chart, vip in rows}


def options_of(page: Page) -> Options:
    assert page.clinic_id is not None
    with Session(page.praxis.engine) as session:
        return Options(session, page.clinic_id)


def option_choices(options: Options, kind: str) -> list[tuple[str, str]]:
    return [(o.code, option_label(kind, o.code, o.label)) for o in options.lists[kind] if o.active]


def caller(page: Page) -> ap.Caller:
    assert page.principal is not None and page.clinic_id is not None
    return ap.Caller(page.principal.actor, can_overbook=page.can("appointments.overbook"))


# --- the grid ------------------------------------------------------------------------------------------------


@dataclass
class Block:
    item: dict[str, Any]
    top: float
    height: float
    lane: int = 0
    lanes: int = 1
    patient: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    start: datetime | None = None
    end: datetime | None = None
    color: str = "#6b7280"
    background: str = "#eef1f5"
    border: str = "#4a5260"
    status: str = ""
    type: str = ""


@dataclass
class Column:
    kind: str  # doctor or room
    resource_id: int
    day: date
    title: str
    closed: bool = False
    reason: str | None = None
    holiday: str | None = None
    work: list[tuple[float, float]] = field(default_factory=list)
    breaks: list[tuple[float, float]] = field(default_factory=list)
    slots: list[tuple[float, str, str]] = field(default_factory=list)  # top, HH:MM, label
    blocks: list[Block] = field(default_factory=list)
    today: bool = False
    header: str = ""


@dataclass
class Grid:
    view: str
    by: str
    day: date
    first: date
    last: date
    step: int
    start_min: int
    end_min: int
    columns: list[Column]
    hours: list[tuple[float, str]]
    height: float
    now_top: float | None = None


def _minutes(moment: datetime, tz: Any) -> int:
    local = moment.astimezone(tz)
    return local.hour * 60 + local.minute


def _epoch_minutes(seconds: int, tz: Any) -> int:
    return _minutes(datetime.fromtimestamp(seconds, UTC), tz)


def _lanes(blocks: list[Block]) -> None:
    """Side-by-side lanes for overlapping appointments (overbooked ones)."""
    blocks.sort(key=lambda b: (b.top, -b.height))
    group: list[Block] = []
    group_end = -1.0
    for block in blocks + [None]:  # type: ignore[list-item]
        if block is None or block.top >= group_end:
            ends: list[float] = []
            for b in group:
                lane = next((i for i, end in enumerate(ends) if end <= b.top), None)
                if lane is None:
                    ends.append(b.top + b.height)
                    lane = len(ends) - 1
                else:
                    ends[lane] = b.top + b.height
                b.lane = lane
            for b in group:
                b.lanes = max(1, len(ends))
            group, group_end = [], -1.0
            if block is None:
                break
        group.append(block)
        group_end = max(group_end, block.top + block.height)


def build_grid(page: Page, res: Resources, options: Options, *, view: str, by: str, day: date, step: int,
               doctor: int | None, room: int | None) -> Grid:
    assert page.clinic_id is not None
    tz = clinic_zone(page)
    first, last = (week_start(day), week_start(day) + timedelta(days=6)) if view == "week" else (day, day)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if by == "room":
        chosen = [(i, n) for i, n in res.rooms if view == "day" or i == (room or (res.rooms[0][0] if res.rooms else 0))]
    else:
        chosen = [(i, n) for i, n in res.doctors
                  if view == "day" or i == (doctor or (res.doctors[0][0] if res.doctors else 0))]
    with Session(page.praxis.engine) as session:
        clinic = get_clinic(session, page.clinic_id)
        calendar = ClinicCalendar.load(session, clinic, [i for i, _ in res.doctors], first, last)
    columns: list[Column] = []
    today = clinic_today(page)
    for day_ in days:
        info = calendar.day_info(day_)
        for resource_id, name in chosen:
            column = Column(by, resource_id, day_, name if view == "day" else "", today=day_ == today,
                            header=babel_dates.format_skeleton("MMMEd", day_, locale=i18n.current().babel_locale))
            column.closed = not info.open
            column.reason = info.reason
            if info.open and info.reason:
                column.holiday = info.reason
            if by == "doctor":
                work = calendar.doctor_intervals(resource_id, day_)
                raw = calendar.doctor_intervals(resource_id, day_, with_breaks=False)
                spans = [(w.start, w.end) for w in work]
                breaks = subtract([(w.start, w.end) for w in raw], spans)
            else:
                clinic_hours = calendar.clinic_intervals(info)
                if clinic_hours is None:
                    spans = [] if not info.open else [(calendar.instant(day_, time(0)),
                                                       calendar.instant(day_ + timedelta(days=1), time(0)))]
                else:
                    spans = clinic_hours
                breaks = []
            column.work = [(float(_epoch_minutes(s, tz)), float(_epoch_minutes(e, tz) or 24 * 60)) for s, e in spans]
            column.breaks = [(float(_epoch_minutes(s, tz)), float(_epoch_minutes(e, tz))) for s, e in breaks]
            columns.append(column)
    spans_all = [span for c in columns for span in c.work if span[1] - span[0] < 24 * 60]
    start_min = int(min([s for s, _ in spans_all], default=DEFAULT_HOURS[0]) // 60 * 60)
    end_min = int(-(-max([e for _, e in spans_all], default=DEFAULT_HOURS[1]) // 60) * 60)
    start, end = ap.local_range(tz, first, last)
    ids = [i for i, _ in chosen]
    query = ap.Query(start, end, doctor_ids=ids if by == "doctor" else [], room_ids=ids if by == "room" else [],
                     limit=2000)
    items = ap.list_appointments(page.praxis, page.clinic_id, query)["items"] if ids else []
    with Session(page.praxis.engine) as session:
        people = patients_of(session, {uuid.UUID(a["patient_id"]) for a in items if a.get("patient_id")})
    for item in items:
        begin = datetime.fromisoformat(item["start_at"])
        finish = datetime.fromisoformat(item["end_at"])
        start_min = min(start_min, _minutes(begin, tz) // 60 * 60)
        end_min = max(end_min, min(24 * 60, -(-(_minutes(finish, tz) or 24 * 60) // 60) * 60))
    columns_by_key = {(c.resource_id, c.day): c for c in columns}
    for item in items:
        begin = datetime.fromisoformat(item["start_at"])
        finish = datetime.fromisoformat(item["end_at"])
        key = (item["doctor_id"] if by == "doctor" else item["room_id"], begin.astimezone(tz).date())
        column = columns_by_key.get(key)
        if column is None:
            continue
        top_min = _minutes(begin, tz)
        end_local = finish.astimezone(tz)
        bottom_min = 24 * 60 if end_local.date() > key[1] else _minutes(finish, tz)
        patient = people.get(uuid.UUID(item["patient_id"])) if item.get("patient_id") else None
        block = Block(item, (top_min - start_min) * PX_PER_MINUTE,
                      max(bottom_min - top_min, 10) * PX_PER_MINUTE, start=begin, end=finish)
        block.patient = patient or {"name": item.get("new_patient_name") or "—", "new": True, "vip": False,
                                    "alert": False, "chart": ""}
        block.color = item.get("status_color") or "#6b7280"
        block.background, block.border = tint(block.color), shade(block.color)
        block.status = status_label(item)
        block.type = option_label("type", item.get("type_code"),
                                  (options.get("type", item["type_code"]).label
                                   if item.get("type_code") and options.get("type", item["type_code"]) else None))
        column.blocks.append(block)
    for column in columns:
        _lanes(column.blocks)
        busy = [(b.top / PX_PER_MINUTE + start_min, (b.top + b.height) / PX_PER_MINUTE + start_min)
                for b in column.blocks if b.item.get("active", True)]
        if column.closed:
            continue
        t = start_min
        while t + step <= end_min:
            inside = any(s <= t and t + step <= e for s, e in column.work)
            taken = any(s < t + step and t < e for s, e in busy)
            if inside and not taken:
                label = time(t // 60, t % 60)
                column.slots.append(((t - start_min) * PX_PER_MINUTE, label.strftime("%H:%M"),
                                     i18n.format_time(label)))
            t += step
        column.work = [((max(s, start_min) - start_min) * PX_PER_MINUTE, (min(e, end_min) - max(s, start_min))
                        * PX_PER_MINUTE) for s, e in column.work if e > start_min and s < end_min]
        column.breaks = [((max(s, start_min) - start_min) * PX_PER_MINUTE, (min(e, end_min) - max(s, start_min))
                          * PX_PER_MINUTE) for s, e in column.breaks if e > start_min and s < end_min]
    hours = [((m - start_min) * PX_PER_MINUTE, i18n.format_time(time(m // 60, 0)))
             for m in range(start_min, end_min, 60)]
    now_local = datetime.now(UTC).astimezone(tz)
    now_min = now_local.hour * 60 + now_local.minute
    now_top = (now_min - start_min) * PX_PER_MINUTE if first <= now_local.date() <= last and \
        start_min <= now_min <= end_min else None
    return Grid(view, by, day, first, last, step, start_min, end_min, columns, hours,
                (end_min - start_min) * PX_PER_MINUTE, now_top)


# --- the page ------------------------------------------------------------------------------------------------


@dataclass
class BookState:
    day: date
    view: str = "day"
    by: str = "doctor"
    step: int = 15
    doctor: int | None = None
    room: int | None = None

    def url(self, base: str, **changes: Any) -> str:
        values = {"day": self.day.isoformat(), "view": self.view, "by": self.by, "step": self.step,
                  "doctor": self.doctor, "room": self.room}
        values.update(changes)
        if isinstance(values["day"], date):
            values["day"] = values["day"].isoformat()
        return base + "?" + urlencode({k: v for k, v in values.items() if v not in (None, "")})

    @property
    def query(self) -> str:
        return self.url("")[1:]


def _state(page: Page, day: str, view: str, by: str, step: int, doctor: str, room: str) -> BookState:
    try:
        chosen = date.fromisoformat(day) if day else clinic_today(page)
    except ValueError:
        chosen = clinic_today(page)
    return BookState(chosen, view if view in ("day", "week") else "day", by if by in ("doctor", "room") else "doctor",
                     step if step in STEPS else 15, int(doctor) if doctor.isdigit() else None,
                     int(room) if room.isdigit() else None)


def _page_values(page: Page, state: BookState, res: Resources, options: Options) -> dict[str, Any]:
    grid = build_grid(page, res, options, view=state.view, by=state.by, day=state.day, step=state.step,
                      doctor=state.doctor, room=state.room)
    base = f"/clinics/{page.clinic_id}/book"
    if state.view == "week":
        previous, following = state.day - timedelta(days=7), state.day + timedelta(days=7)
    else:
        previous, following = state.day - timedelta(days=1), state.day + timedelta(days=1)
    statuses = [o for o in options.lists["status"] if o.active and o.role not in ("cancelled", "no_show")]
    return {"grid": grid, "state": state, "res": res, "base": base, "previous": previous, "following": following,
            "today": clinic_today(page), "statuses": [(o.code, option_label("status", o.code, o.label), o.color)
                                                      for o in statuses],
            "legend": [(option_label("status", o.code, o.label), o.color) for o in options.lists["status"]
                       if o.active],
            "steps": STEPS, "durations": DURATIONS, "can_edit": page.can("appointments.edit"),
            "px": PX_PER_MINUTE}


@router.get("")
def book_page(clinic_id: int, day: str = Query("", max_length=10), view: str = Query("day", max_length=4),
              by: str = Query("doctor", max_length=6), step: int = Query(15, ge=5, le=60),
              doctor: str = Query("", max_length=12), room: str = Query("", max_length=12),
              patient: str = Query("", max_length=36), open_: str = Query("", alias="open", max_length=12),
              partial: str = Query("", max_length=10),
              page: Page = Depends(clinic_page("appointments.view"))) -> Response:
    state = _state(page, day, view, by, step, doctor, room)
    with Session(page.praxis.engine) as session:
        res = resources(session, clinic_id)
    options = options_of(page)
    with i18n.using(page.locale):
        values = _page_values(page, state, res, options)
    values["open_id"] = int(open_) if open_.isdigit() else None
    values["patient_param"] = patient if _is_uuid(patient) else ""
    if partial == "grid":
        return render(page, "book/index.html", values, block="grid")
    if partial == "panels":
        values.update(_panels(page, state, res))
        return render(page, "book/index.html", values, block="panels")
    values.update(_panels(page, state, res))
    return render(page, "book/index.html", values)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _panels(page: Page, state: BookState, res: Resources) -> dict[str, Any]:
    """The side panels: waitlist (for the day), pinboard and trash (of the days shown)."""
    assert page.clinic_id is not None
    tz = clinic_zone(page)
    first, last = (week_start(state.day), week_start(state.day) + timedelta(days=6)) if state.view == "week" \
        else (state.day, state.day)
    start, end = ap.local_range(tz, first, last)
    waiting = waitlist.listing(page.praxis, page.clinic_id, day=state.day if state.view == "day" else None)["items"]
    pinned = ap.pinboard(page.praxis, page.clinic_id)
    trashed = ap.trash(page.praxis, page.clinic_id, start=start, end=end, limit=50)["items"]
    with Session(page.praxis.engine) as session:
        ids = {uuid.UUID(x["patient_id"]) for x in [*waiting, *pinned, *trashed] if x.get("patient_id")}
        people = patients_of(session, ids)
    for item in [*waiting, *pinned, *trashed]:
        pid = uuid.UUID(item["patient_id"]) if item.get("patient_id") else None
        item["who"] = people[pid]["name"] if pid in people else (item.get("new_patient_name") or "—")
        if "start_at" in item:
            item["start"] = datetime.fromisoformat(item["start_at"])
            item["end"] = datetime.fromisoformat(item["end_at"])
        item["doctor_name"] = res.doctor_name(item.get("doctor_id")) if item.get("doctor_id") else ""
    options = options_of(page)
    for item in trashed:
        if item.get("deleted_at"):
            item["why"] = item.get("delete_reason") or ""
        else:
            reason = item.get("cancel_reason")
            option = options.get("cancel_reason", reason) if reason else None
            item["why"] = option_label("cancel_reason", reason, option.label if option else None)
    return {"waiting": waiting, "pinned": pinned, "trashed": trashed}


# --- dialogs -------------------------------------------------------------------------------------------------


def _dialog(page: Page, values: dict[str, Any], *, status: int = 200) -> Response:
    """A dialog: for htmx its body (swapped into the page's <dialog>), otherwise a page of its own."""
    assert page.clinic_id is not None
    values.setdefault("errors", {})
    values.setdefault("base", f"/clinics/{page.clinic_id}/book")
    values.setdefault("back", _back(page))
    if page.is_htmx:
        body = render_text(page, "book/dialog.html", values, block="dialog")
        return htmx_response(page, body, status=status)
    return render(page, "book/dialog.html", values, status=status)


def _back(page: Page) -> str:
    raw = page.request.query_params.get("back") or ""
    if raw.startswith(f"/clinics/{page.clinic_id}/book") and "\n" not in raw and "//" not in raw:
        return raw
    return f"/clinics/{page.clinic_id}/book"


def _done(page: Page, message: str, back: str) -> Response:
    """After a change: htmx reloads the grid and panels (event), a plain post returns to the grid."""
    page.flash(message)
    if page.is_htmx:
        return htmx_response(page, "", trigger=TRIGGER)
    return redirect_with_flash(page, back)


def _form_back(page: Page, form: dict[str, Any]) -> str:
    raw = text(form, "back")
    if raw.startswith(f"/clinics/{page.clinic_id}/book") and "//" not in raw:
        return raw
    return f"/clinics/{page.clinic_id}/book"


def _scheduling_errors(page: Page, exc: Exception, fields: set[str]) -> tuple[Errors, list[dict[str, Any]]]:
    """Messages for a refused change, and the appointments in the way when the time is taken."""
    with i18n.using(page.locale):
        if isinstance(exc, ValidationFailed):
            renamed = field_error_map(exc, rename=lambda f: {"start_at": "time", "end_at": "duration",
                                                             "duration_minutes": "duration"}.get(f, f),
                                      known=fields | DIALOG_FIELDS)
            return renamed, []
        if isinstance(exc, Conflict):
            return {FORM: [_("The time is taken.")]}, list(exc.details.get("conflicts") or [])
        if isinstance(exc, VersionConflict):
            return {FORM: [_("Someone else changed this appointment meanwhile; it is shown as it is now.")]}, []
        if isinstance(exc, Forbidden):
            return {FORM: [_("Overbooking needs the permission to overbook.")]}, []
        if isinstance(exc, NotFound):
            raise PageError(404, "not_found")
        return {FORM: [str(exc)]}, []


def _conflict_lines(page: Page, conflicts: list[dict[str, Any]]) -> list[str]:
    """Readable descriptions of the appointments in the way."""
    assert page.clinic_id is not None
    out = []
    for c in conflicts:
        try:
            item = ap.get(page.praxis, page.clinic_id, int(c.get("id") or c.get("appointment_id") or 0))
        except SchedulingError:
            continue
        begin, finish = datetime.fromisoformat(item["start_at"]), datetime.fromisoformat(item["end_at"])
        with Session(page.praxis.engine) as session:
            who = patients_of(session, {uuid.UUID(item["patient_id"])}) if item.get("patient_id") else {}
        name = next(iter(who.values()))["name"] if who else (item.get("new_patient_name") or "")
        out.append(f"{i18n.format_time(begin)}–{i18n.format_time(finish)} {name}")
    return out


def _new_values(page: Page, res: Resources, options: Options, form: dict[str, Any]) -> dict[str, Any]:
    return {"mode": "new", "form": form, "res": res, "durations": DURATIONS,
            "types": option_choices(options, "type"), "sources": option_choices(options, "source"),
            "can_overbook": page.can("appointments.overbook"), "can_search": page.can("patients.view")}


@router.get("/new")
def new_dialog(clinic_id: int, day: str = Query("", max_length=10), at: str = Query("", max_length=5),
               doctor: str = Query("", max_length=12), room: str = Query("", max_length=12),
               patient: str = Query("", max_length=36), duration: str = Query("", max_length=4),
               page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    with Session(page.praxis.engine) as session:
        res = resources(session, clinic_id)
        chosen = None
        if _is_uuid(patient):
            chosen = patients_of(session, {uuid.UUID(patient)}).get(uuid.UUID(patient))
    form = {"date": day or clinic_today(page).isoformat(), "time": at, "doctor_id": doctor, "room_id": room,
            "patient_id": patient if chosen else "", "patient_name": chosen["name"] if chosen else "",
            "duration": duration if duration.isdigit() else "30", "type_code": "", "source_code": "phone",
            "notes": "", "new_patient_name": "", "new_patient_phone": "", "q": ""}
    if not form["doctor_id"] and room.isdigit():
        form["doctor_id"] = ""
    with i18n.using(page.locale):
        values = _new_values(page, res, options_of(page), form)
    return _dialog(page, values)


@router.post("/new")
async def create_appointment(clinic_id: int, page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    errors: Errors = {}
    with i18n.using(page.locale):
        day = parse_date(text(form, "date"), "date", errors, required=True)
        at = parse_time(text(form, "time"), "time", errors, required=True)
        doctor = optional_int(form, "doctor_id", errors)
        room = optional_int(form, "room_id", errors)
        duration = optional_int(form, "duration", errors) or 30
        if doctor is None:
            errors.setdefault("doctor_id", []).append(_("Choose a doctor."))
        start = local_instant(day, at, clinic_zone(page), "time", errors) if day and at else None
    values: dict[str, Any] = {"doctor_id": doctor, "type_code": text(form, "type_code") or None,
                              "source_code": text(form, "source_code") or None, "notes": text(form, "notes")}
    if room is not None:
        values["room_id"] = room
    patient = text(form, "patient_id")
    if _is_uuid(patient):
        values["patient_id"] = uuid.UUID(patient)
    else:
        values["new_patient_name"] = text(form, "new_patient_name") or None
        values["new_patient_phone"] = text(form, "new_patient_phone") or None
    conflicts: list[str] = []
    if not errors and start is not None:
        values["start_at"], values["end_at"] = start, start + timedelta(minutes=duration)
        try:
            made = await call(page, ap.create, page.praxis, clinic_id, {k: v for k, v in values.items()},
                              caller(page), overbook=flag(form, "overbook"))
        except (ValidationFailed, SchedulingError) as exc:
            errors, found = _scheduling_errors(page, exc, set(form) | {"time", "duration", "patient_id"})
            conflicts = await call(page, _conflict_lines, page, found)
        else:
            with i18n.using(page.locale):
                message = _("Booked for %(time)s.") % {"time": i18n.format_datetime(
                    datetime.fromisoformat(made["start_at"]), "medium")}
            return _done(page, message, _form_back(page, form))
    with Session(page.praxis.engine) as session:
        res = resources(session, clinic_id)
        if _is_uuid(patient):
            chosen = patients_of(session, {uuid.UUID(patient)}).get(uuid.UUID(patient))
            form["patient_name"] = chosen["name"] if chosen else ""
    form.setdefault("patient_name", "")
    for key in ("q", "time", "date", "doctor_id", "room_id", "duration", "type_code", "source_code", "notes",
                "new_patient_name", "new_patient_phone", "patient_id"):
        form.setdefault(key, "")
    with i18n.using(page.locale):
        values_out = _new_values(page, res, options_of(page), form)
    values_out.update(errors=errors, conflicts=conflicts)
    return _dialog(page, values_out, status=409 if conflicts else 422)


def _appointment_values(page: Page, appointment_id: int, *, panel: str = "") -> dict[str, Any]:
    assert page.clinic_id is not None
    try:
        item = ap.get(page.praxis, page.clinic_id, appointment_id)
    except NotFound:
        raise PageError(404, "not_found") from None
    options = options_of(page)
    with Session(page.praxis.engine) as session:
        res = resources(session, page.clinic_id)
        person = patients_of(session, {uuid.UUID(item["patient_id"])}) if item.get("patient_id") else {}
    tz = clinic_zone(page)
    item["start"] = datetime.fromisoformat(item["start_at"])
    item["end"] = datetime.fromisoformat(item["end_at"])
    item["who"] = next(iter(person.values())) if person else {"name": item.get("new_patient_name") or "—",
                                                              "new": True}
    item["status_text"] = status_label(item)
    item["type_text"] = option_label("type", item.get("type_code"), (options.get("type", item["type_code"]).label
                                     if item.get("type_code") and options.get("type", item["type_code"]) else None))
    local = item["start"].astimezone(tz)
    statuses = [(o.code, option_label("status", o.code, o.label), o.color) for o in options.lists["status"]
                if o.active and o.role not in ("cancelled", "no_show")]
    return {"mode": "appointment", "a": item, "res": res, "panel": panel, "statuses": statuses,
            "cancel_reasons": option_choices(options, "cancel_reason"),
            "no_show_reasons": option_choices(options, "no_show_reason"),
            "move": {"date": local.date().isoformat(), "time": local.strftime("%H:%M"),
                     "doctor_id": str(item["doctor_id"]), "room_id": str(item.get("room_id") or "")},
            "durations": DURATIONS, "can_edit": page.can("appointments.edit"),
            "can_overbook": page.can("appointments.overbook"), "history": [], "form": {},
            "lab_warnings": _lab_warnings(page, appointment_id),
            "panels": plugin_panels(page, "visit", appointment_id=str(appointment_id),
                                    **({"patient_id": str(item["patient_id"])} if item.get("patient_id") else {}))}


def _lab_warnings(page: Page, appointment_id: int) -> list[dict[str, Any]]:
    """The appointment's dental lab cases that will not be back in time (shown to those who may see lab work)."""
    if page.clinic_id is None or not page.can("labs.view"):
        return []
    with Session(page.praxis.engine) as session:
        return labs.case_warnings(session, page.clinic_id, appointment_id)


@router.get("/appointments/{appointment_id}")
def appointment_dialog(clinic_id: int, appointment_id: int, panel: str = Query("", max_length=12),
                       page: Page = Depends(clinic_page("appointments.view"))) -> Response:
    with i18n.using(page.locale):
        values = _appointment_values(page, appointment_id, panel=panel)
        if panel == "history":
            values["history"] = _history(page, appointment_id, values["res"])
    return _dialog(page, values)


def _history(page: Page, appointment_id: int, res: Resources) -> list[dict[str, Any]]:
    assert page.clinic_id is not None
    tz = clinic_zone(page)
    out = []
    for entry in reversed(ap.history(page.praxis, page.clinic_id, appointment_id)):
        action = entry["action"]
        changes = []
        for key in sorted(set(entry["before"]) | set(entry["after"])):
            if key not in FIELD_TITLES:
                continue
            changes.append((i18n.gettext(FIELD_TITLES[key]), _show(key, entry["before"].get(key), res, tz),
                            _show(key, entry["after"].get(key), res, tz)))
        out.append({"at": datetime.fromisoformat(entry["at"]), "who": entry["actor_name"],
                    "what": i18n.gettext(ACTION_TITLES[action]) if action in ACTION_TITLES else action,
                    "changes": changes})
    return out


def _show(key: str, value: Any, res: Resources, tz: Any) -> str:
    if value in (None, ""):
        return "—"
    if key in ("start_at", "end_at", "pinned_at"):
        return i18n.format_datetime(datetime.fromisoformat(value), "short")
    if key == "doctor_id":
        return res.doctor_name(value)
    if key == "room_id":
        return res.room_name(value) or str(value)
    if key == "status":
        return option_label("status", value)
    if key == "type_code":
        return option_label("type", value)
    if key == "cancel_reason":
        return option_label("cancel_reason", value)
    if key == "no_show_reason":
        return option_label("no_show_reason", value)
    return str(value)


async def _change(page: Page, appointment_id: int, fn: Any, message: str, *, panel: str,
                  **kwargs: Any) -> Response:
    """Run one scheduling operation on an appointment; on refusal show its dialog with the errors."""
    form = kwargs.pop("form")
    try:
        await call(page, fn, page.praxis, page.clinic_id, appointment_id, caller(page), **kwargs)
    except (ValidationFailed, SchedulingError) as exc:
        errors, found = _scheduling_errors(page, exc, set(form) | {"time", "duration", "reason"})
        lines = await call(page, _conflict_lines, page, found)
        with i18n.using(page.locale):
            values = _appointment_values(page, appointment_id, panel=panel)
        values.update(errors=errors, conflicts=lines, form=form)
        if panel == "move":
            values["move"] = {k: text(form, k) or values["move"][k] for k in values["move"]}
        return _dialog(page, values, status=409 if lines else 422)
    return _done(page, message, _form_back(page, form))


def _version(form: dict[str, Any]) -> int | None:
    raw = text(form, "version")
    return int(raw) if raw.isdigit() else None


@router.post("/appointments/{appointment_id}/move")
async def move(clinic_id: int, appointment_id: int, page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    errors: Errors = {}
    with i18n.using(page.locale):
        day = parse_date(text(form, "date"), "date", errors, required=True)
        at = parse_time(text(form, "time"), "time", errors, required=True)
        doctor = optional_int(form, "doctor_id", errors)
        start = local_instant(day, at, clinic_zone(page), "time", errors) if day and at else None
    room: int | None | bool = False
    if "room_id" in form:
        room = optional_int(form, "room_id", errors)
    if errors or start is None:
        with i18n.using(page.locale):
            values = _appointment_values(page, appointment_id, panel="move")
        values.update(errors=errors, conflicts=[], form=form)
        return _dialog(page, values, status=422)
    with i18n.using(page.locale):
        message = _("Moved to %(time)s.") % {"time": i18n.format_datetime(start, "medium")}
    mode = text(form, "mode")
    if mode == "copy":
        with i18n.using(page.locale):
            message = _("Copied to %(time)s.") % {"time": i18n.format_datetime(start, "medium")}
        return await _change(page, appointment_id, ap.copy, message, panel="move", form=form, start_at=start,
                             doctor_id=doctor, room_id=room, overbook=flag(form, "overbook"))
    if mode == "restore":
        with i18n.using(page.locale):
            message = _("Restored at %(time)s.") % {"time": i18n.format_datetime(start, "medium")}
        return await _change(page, appointment_id, ap.restore, message, panel="move", form=form, start_at=start,
                             doctor_id=doctor, room_id=room, overbook=flag(form, "overbook"))
    return await _change(page, appointment_id, ap.move, message, panel="move", form=form, start_at=start,
                         doctor_id=doctor, room_id=room, version=_version(form), overbook=flag(form, "overbook"))


@router.post("/appointments/{appointment_id}/shift")
async def shift(clinic_id: int, appointment_id: int,
                page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    """The keyboard and button alternative to dragging: earlier/later by minutes, or longer/shorter."""
    form = await form_of(page)
    try:
        minutes = int(text(form, "minutes") or "0")
    except ValueError:
        minutes = 0
    item = await call(page, _get_or_404, page, appointment_id)
    begin, finish = datetime.fromisoformat(item["start_at"]), datetime.fromisoformat(item["end_at"])
    delta = timedelta(minutes=max(-240, min(240, minutes)))
    if text(form, "what") == "length":
        with i18n.using(page.locale):
            message = _("Now ends at %(time)s.") % {"time": i18n.format_time(finish + delta)}
        return await _change(page, appointment_id, ap.resize, message, panel="move", form=form, end_at=finish + delta,
                             version=_version(form), overbook=flag(form, "overbook"))
    with i18n.using(page.locale):
        message = _("Moved to %(time)s.") % {"time": i18n.format_datetime(begin + delta, "medium")}
    return await _change(page, appointment_id, ap.move, message, panel="move", form=form, start_at=begin + delta,
                         version=_version(form), overbook=flag(form, "overbook"))


def _get_or_404(page: Page, appointment_id: int) -> dict[str, Any]:
    assert page.clinic_id is not None
    try:
        return ap.get(page.praxis, page.clinic_id, appointment_id)
    except NotFound:
        raise PageError(404, "not_found") from None


@router.post("/appointments/{appointment_id}/resize")
async def resize(clinic_id: int, appointment_id: int,
                 page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    item = await call(page, _get_or_404, page, appointment_id)
    errors: Errors = {}
    with i18n.using(page.locale):
        minutes = optional_int(form, "duration", errors)
    if errors or minutes is None:
        minutes = 0
    begin = datetime.fromisoformat(item["start_at"])
    end = begin + timedelta(minutes=max(5, minutes))
    with i18n.using(page.locale):
        message = _("Now ends at %(time)s.") % {"time": i18n.format_time(end)}
    return await _change(page, appointment_id, ap.resize, message, panel="move", form=form, end_at=end,
                         version=_version(form), overbook=flag(form, "overbook"))


@router.post("/appointments/{appointment_id}/status")
async def set_status(clinic_id: int, appointment_id: int,
                     page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    code = text(form, "status")
    with i18n.using(page.locale):
        message = _("Status: %(status)s.") % {"status": option_label("status", code,
                                                                       _label(page, "status", code))}
    return await _change(page, appointment_id, ap.set_status, message, panel="", form=form, status=code,
                         version=_version(form))


def _label(page: Page, kind: str, code: str) -> str | None:
    option = options_of(page).get(kind, code)
    return option.label if option else None


@router.post("/appointments/{appointment_id}/cancel")
async def cancel(clinic_id: int, appointment_id: int,
                 page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    if not text(form, "reason"):
        return await _missing_reason(page, appointment_id, "cancel", form)
    with i18n.using(page.locale):
        message = _("The appointment is cancelled; it can be restored from the trash.")
    return await _change(page, appointment_id, ap.cancel, message, panel="cancel", form=form,
                         reason=text(form, "reason"), note=text(form, "note"), version=_version(form))


@router.post("/appointments/{appointment_id}/no-show")
async def no_show(clinic_id: int, appointment_id: int,
                  page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    if not text(form, "reason"):
        return await _missing_reason(page, appointment_id, "no_show", form)
    with i18n.using(page.locale):
        message = _("Marked as a no-show.")
    return await _change(page, appointment_id, ap.no_show, message, panel="no_show", form=form,
                         reason=text(form, "reason"), version=_version(form))


async def _missing_reason(page: Page, appointment_id: int, panel: str, form: dict[str, Any]) -> Response:
    def build() -> dict[str, Any]:
        with i18n.using(page.locale):
            values = _appointment_values(page, appointment_id, panel=panel)
            values.update(errors={"reason": [_("Give a reason.")]}, conflicts=[], form=form)
        return values

    return _dialog(page, await call(page, build), status=422)


@router.post("/appointments/{appointment_id}/delete")
async def delete(clinic_id: int, appointment_id: int,
                 page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    if not text(form, "reason"):
        return await _missing_reason(page, appointment_id, "delete", form)
    with i18n.using(page.locale):
        message = _("The appointment is in the trash; it can be restored from there.")
    return await _change(page, appointment_id, ap.delete, message, panel="delete", form=form,
                         reason=text(form, "reason"), version=_version(form))


@router.post("/appointments/{appointment_id}/restore")
async def restore(clinic_id: int, appointment_id: int,
                  page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    with i18n.using(page.locale):
        message = _("The appointment is restored.")
    return await _change(page, appointment_id, ap.restore, message, panel="move", form=form,
                         overbook=flag(form, "overbook"))


@router.post("/appointments/{appointment_id}/pin")
async def pin(clinic_id: int, appointment_id: int, page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    with i18n.using(page.locale):
        message = _("The appointment is on the pinboard; place it again from there.")
    return await _change(page, appointment_id, ap.pin, message, panel="", form=form, note=text(form, "note"),
                         version=_version(form))


@router.post("/appointments/{appointment_id}/to-waitlist")
async def to_waitlist(clinic_id: int, appointment_id: int,
                      page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    errors: Errors = {}
    with i18n.using(page.locale):
        desired = parse_date(text(form, "desired_date"), "desired_date", errors)
        message = _("The patient is on the waitlist; the appointment went to the trash.")
    return await _change(page, appointment_id, waitlist.from_appointment, message, panel="waitlist", form=form,
                         desired_date=desired)


# --- free-slot finder ------------------------------------------------------------------------------------------


@router.get("/slots")
def find_slots(clinic_id: int, doctor: str = Query("", max_length=12), duration: int = Query(30, ge=5, le=1440),
               start: str = Query("", alias="from", max_length=10), days: int = Query(7, ge=1, le=62),
               page: Page = Depends(clinic_page("appointments.view"))) -> Response:
    with Session(page.praxis.engine) as session:
        res = resources(session, clinic_id)
    errors: Errors = {}
    with i18n.using(page.locale):
        first = parse_date(start, "from", errors) or clinic_today(page)
    doctors = [int(doctor)] if doctor.isdigit() else [i for i, _ in res.doctors]
    found: dict[date, list[dict[str, Any]]] = {}
    truncated = False
    if doctors and not errors:
        try:
            result = free_slots.search(page.praxis, clinic_id, doctors, duration, first,
                                       first + timedelta(days=days - 1), step_minutes=15, limit=300)
        except ValidationFailed as exc:
            with i18n.using(page.locale):
                errors = field_error_map(exc)
        else:
            truncated = result["truncated"]
            for slot in result["slots"]:
                local = datetime.fromisoformat(slot["start_local"])
                slot["start"] = datetime.fromisoformat(slot["start_at"])
                slot["doctor_name"] = res.doctor_name(slot["doctor_id"])
                slot["time"] = local.strftime("%H:%M")
                found.setdefault(local.date(), []).append(slot)
    values = {"mode": "slots", "res": res, "found": found, "truncated": truncated, "durations": DURATIONS,
              "form": {"doctor": doctor, "duration": duration, "from": first.isoformat(), "days": days},
              "errors": errors}
    return _dialog(page, values)


# --- waitlist ----------------------------------------------------------------------------------------------------


def _waitlist_values(page: Page, res: Resources, options: Options, form: dict[str, Any]) -> dict[str, Any]:
    return {"mode": "waitlist_new", "form": form, "res": res, "durations": DURATIONS,
            "types": option_choices(options, "type"), "can_search": page.can("patients.view")}


@router.get("/waitlist/new")
def waitlist_dialog(clinic_id: int, day: str = Query("", max_length=10), patient: str = Query("", max_length=36),
                    page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    with Session(page.praxis.engine) as session:
        res = resources(session, clinic_id)
    form = {"desired_date": day, "window_start": "", "window_end": "", "doctor_id": "", "duration": "30",
            "type_code": "", "notes": "", "new_patient_name": "", "new_patient_phone": "", "q": "",
            "patient_id": patient if _is_uuid(patient) else "", "patient_name": ""}
    with i18n.using(page.locale):
        values = _waitlist_values(page, res, options_of(page), form)
    return _dialog(page, values)


@router.post("/waitlist/new")
async def waitlist_add(clinic_id: int, page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    errors: Errors = {}
    with i18n.using(page.locale):
        values: dict[str, Any] = {
            "desired_date": parse_date(text(form, "desired_date"), "desired_date", errors),
            "window_start": parse_time(text(form, "window_start"), "window_start", errors),
            "window_end": parse_time(text(form, "window_end"), "window_end", errors),
            "doctor_id": optional_int(form, "doctor_id", errors),
            "duration_minutes": optional_int(form, "duration", errors) or 30,
            "type_code": text(form, "type_code") or None, "notes": text(form, "notes"),
        }
    patient = text(form, "patient_id")
    if _is_uuid(patient):
        values["patient_id"] = uuid.UUID(patient)
    else:
        values["new_patient_name"] = text(form, "new_patient_name") or None
        values["new_patient_phone"] = text(form, "new_patient_phone") or None
    if not errors:
        try:
            await call(page, waitlist.create, page.praxis, clinic_id,
                       {k: v for k, v in values.items() if v is not None}, page.principal.actor)
        except (ValidationFailed, SchedulingError) as exc:
            errors, _found = _scheduling_errors(page, exc, set(form) | {"duration", "window_start", "window_end"})
        else:
            with i18n.using(page.locale):
                message = _("Added to the waitlist.")
            return _done(page, message, _form_back(page, form))
    with Session(page.praxis.engine) as session:
        res = resources(session, clinic_id)
    for key in ("desired_date", "window_start", "window_end", "doctor_id", "duration", "type_code", "notes",
                "new_patient_name", "new_patient_phone", "q", "patient_id"):
        form.setdefault(key, "")
    form["patient_name"] = ""
    with i18n.using(page.locale):
        values_out = _waitlist_values(page, res, options_of(page), form)
    values_out["errors"] = errors
    return _dialog(page, values_out, status=422)


@router.post("/waitlist/{entry_id}/remove")
async def waitlist_remove(clinic_id: int, entry_id: int,
                          page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    try:
        await call(page, waitlist.remove, page.praxis, clinic_id, entry_id, page.principal.actor)
    except NotFound:
        raise PageError(404, "not_found") from None
    except (ValidationFailed, SchedulingError):
        with i18n.using(page.locale):
            page.flash(_("This waitlist entry is no longer waiting."), "error")
        return _done_error(page, _form_back(page, form))
    with i18n.using(page.locale):
        message = _("Removed from the waitlist.")
    return _done(page, message, _form_back(page, form))


def _done_error(page: Page, back: str) -> Response:
    if page.is_htmx:
        return htmx_response(page, "", trigger=TRIGGER)
    return redirect_with_flash(page, back)


@router.get("/waitlist/{entry_id}/book")
def waitlist_book_dialog(clinic_id: int, entry_id: int, day: str = Query("", max_length=10),
                         page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    entry = _entry(page, entry_id)
    with Session(page.praxis.engine) as session:
        res = resources(session, clinic_id)
    form = {"date": entry.get("desired_date") or day or clinic_today(page).isoformat(),
            "time": entry.get("window_start") or "", "doctor_id": str(entry.get("doctor_id") or ""), "room_id": ""}
    return _dialog(page, {"mode": "waitlist_book", "entry": entry, "form": form, "res": res,
                          "can_overbook": page.can("appointments.overbook")})


def _entry(page: Page, entry_id: int) -> dict[str, Any]:
    assert page.clinic_id is not None
    for state in ("waiting",):
        for item in waitlist.listing(page.praxis, page.clinic_id, state=state, limit=1000)["items"]:
            if item["id"] == entry_id:
                with Session(page.praxis.engine) as session:
                    pid = uuid.UUID(item["patient_id"]) if item.get("patient_id") else None
                    people = patients_of(session, {pid}) if pid else {}
                item["who"] = people[pid]["name"] if pid in people else (item.get("new_patient_name") or "—")
                return item
    raise PageError(404, "not_found")


@router.post("/waitlist/{entry_id}/book")
async def waitlist_book(clinic_id: int, entry_id: int,
                        page: Page = Depends(clinic_page("appointments.edit"))) -> Response:
    form = await form_of(page)
    errors: Errors = {}
    with i18n.using(page.locale):
        day = parse_date(text(form, "date"), "date", errors, required=True)
        at = parse_time(text(form, "time"), "time", errors, required=True)
        doctor = optional_int(form, "doctor_id", errors)
        room = optional_int(form, "room_id", errors)
        start = local_instant(day, at, clinic_zone(page), "time", errors) if day and at else None
    conflicts: list[str] = []
    if not errors and start is not None:
        try:
            await call(page, waitlist.book, page.praxis, clinic_id, entry_id, caller(page), start_at=start,
                       doctor_id=doctor, room_id=room, overbook=flag(form, "overbook"))
        except (ValidationFailed, SchedulingError) as exc:
            if isinstance(exc, NotFound):
                raise PageError(404, "not_found") from None
            errors, found = _scheduling_errors(page, exc, set(form) | {"time"})
            conflicts = await call(page, _conflict_lines, page, found)
        else:
            with i18n.using(page.locale):
                message = _("Booked for %(time)s.") % {"time": i18n.format_datetime(start, "medium")}
            return _done(page, message, _form_back(page, form))
    entry = await call(page, _entry, page, entry_id)
    with Session(page.praxis.engine) as session:
        res = resources(session, clinic_id)
    return _dialog(page, {"mode": "waitlist_book", "entry": entry, "form": form, "res": res, "errors": errors,
                          "conflicts": conflicts, "can_overbook": page.can("appointments.overbook")},
                   status=409 if conflicts else 422)
