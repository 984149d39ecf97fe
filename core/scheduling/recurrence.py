"""Recurring series: an RFC 5545 RRULE (python-dateutil) expanded in the clinic's local time, so "every
Monday 09:00" stays 09:00 across daylight-saving changes, with a conflict preview before anything is booked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from core import audit
from core.db import transaction
from core.models.appointment import AppointmentSeries
from core.scheduling.appointments import EDITABLE, Book, Caller, _may_overbook, write
from core.scheduling.calendar import ClinicCalendar
from core.scheduling.conflicts import describe, find_conflicts
from core.scheduling.errors import Conflict, FieldErrors, invalid
from plugin_sdk.errors import ValidationFailed
from plugin_sdk.events import EventName

if TYPE_CHECKING:
    from core.app_context import Praxis

MAX_OCCURRENCES = 104


@dataclass(frozen=True)
class Occurrence:
    index: int
    local: datetime  # naive wall time
    start: datetime  # aware UTC
    end: datetime
    shifted: bool  # the wall time does not exist that day (DST gap) and was moved forward


def expand(rule: str, first_local: datetime, duration_minutes: int, tz: ZoneInfo) -> list[Occurrence]:
    """The occurrences of ``rule`` from ``first_local`` (naive, clinic-local). The rule must end (COUNT or
    UNTIL) within ``MAX_OCCURRENCES``."""
    errors = FieldErrors()
    if first_local.tzinfo is not None:
        first_local = first_local.astimezone(tz).replace(tzinfo=None)
    if not 5 <= duration_minutes <= 24 * 60:
        errors.add("duration_minutes", "between 5 and 1440 minutes", "out_of_range")
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    upper = text.upper()
    if "COUNT=" not in upper and "UNTIL=" not in upper:
        errors.add("rrule", "the rule must end: give COUNT or UNTIL", "unbounded")
    errors.raise_if_any()
    try:
        parsed = rrulestr(text, dtstart=first_local)
    except (ValueError, TypeError) as exc:
        raise invalid("rrule", f"not a valid RRULE: {exc}", "invalid_rrule") from exc
    if not isinstance(parsed, rrule):
        raise invalid("rrule", "give a single RRULE", "invalid_rrule")
    out: list[Occurrence] = []
    for i, local in enumerate(parsed):
        if i >= MAX_OCCURRENCES:
            raise invalid("rrule", f"at most {MAX_OCCURRENCES} occurrences", "too_many")
        aware = local.replace(tzinfo=tz)
        start = aware.astimezone(UTC)
        shifted = start.astimezone(tz).replace(tzinfo=None) != local
        out.append(Occurrence(i, local, start, start + timedelta(minutes=duration_minutes), shifted))
    if not out:
        raise invalid("rrule", "the rule gives no occurrence", "empty")
    return out


def _values(template: dict[str, Any]) -> dict[str, Any]:
    unknown = set(template) - set(EDITABLE) - {"start_at", "end_at"}
    if unknown:
        raise invalid(sorted(unknown)[0], "this field cannot be set", "not_allowed")
    if template.get("doctor_id") is None:
        raise invalid("doctor_id", "a doctor is required", "required")
    return {k: v for k, v in template.items() if k not in ("start_at", "end_at")}


def preview(praxis: Praxis, clinic_id: int, template: dict[str, Any], rule: str, first_local: datetime,
            duration_minutes: int) -> dict[str, Any]:
    """Each occurrence with its problems: conflicts (doctor or room) and time outside working hours."""
    values = _values(template)
    with transaction(praxis.engine) as session:
        book = Book(praxis, session, clinic_id, Caller(audit.Actor.system()))
        occurrences = expand(rule, first_local, duration_minutes, book.tz)
        calendar = ClinicCalendar.load(session, book.clinic, [values["doctor_id"]],
                                       occurrences[0].start.astimezone(book.tz).date() - timedelta(days=1),
                                       occurrences[-1].end.astimezone(book.tz).date() + timedelta(days=1))
        items = []
        for occ in occurrences:
            conflicts = find_conflicts(session, clinic_id, occ.start, occ.end, values["doctor_id"],
                                       values.get("room_id"))
            inside = calendar.covers(values["doctor_id"], occ.start, occ.end)
            problems = (["conflict"] if conflicts else []) + ([] if inside else ["outside_working_hours"])
            items.append({"index": occ.index, "start_local": occ.local.isoformat(),
                          "start_at": occ.start.isoformat(), "end_at": occ.end.isoformat(),
                          "shifted_by_dst": occ.shifted, "ok": not problems, "problems": problems,
                          "conflicts": describe(conflicts, values["doctor_id"], values.get("room_id"))})
    return {"count": len(items), "ok": sum(1 for i in items if i["ok"]), "occurrences": items}


def create_series(praxis: Praxis, clinic_id: int, template: dict[str, Any], rule: str, first_local: datetime,
                  duration_minutes: int, caller: Caller, *, skip_conflicts: bool = False,
                  overbook: bool = False) -> dict[str, Any]:
    """Book every occurrence in one transaction. A conflict or a time outside working hours refuses the
    whole series (409 / 422 naming the occurrence) unless ``skip_conflicts`` leaves those out."""
    values = _values(template)
    _may_overbook(caller, overbook)
    with write(praxis) as session:
        book = Book(praxis, session, clinic_id, caller)
        occurrences = expand(rule, first_local, duration_minutes, book.tz)
        series = AppointmentSeries(clinic_id=clinic_id, rrule=rule.strip(),
                                   first_start_local=occurrences[0].start,
                                   duration_minutes=duration_minutes, created_by=caller.actor.id)
        session.add(series)
        session.flush()
        created, skipped = [], []
        for occ in occurrences:
            try:
                appt, placement = book.create({**values, "start_at": occ.start, "end_at": occ.end}, overbook=overbook,
                                              series_id=series.id)
            except Conflict as exc:
                if not skip_conflicts:
                    raise Conflict(f"occurrence {occ.index + 1} ({occ.local.isoformat()}) conflicts",
                                   conflicts=exc.details.get("conflicts", []), occurrence=occ.index) from exc
                skipped.append({"index": occ.index, "start_local": occ.local.isoformat(), "problem": "conflict"})
                continue
            except ValidationFailed as exc:
                hours = [e for e in exc.errors if e.code == "outside_working_hours"]
                if not (skip_conflicts and hours and len(hours) == len(exc.errors)):
                    raise ValidationFailed([type(e)(f"occurrences.{occ.index}.{e.field}", e.message, e.code)
                                            for e in exc.errors], plugin=exc.plugin) from exc
                skipped.append({"index": occ.index, "start_local": occ.local.isoformat(),
                                "problem": "outside_working_hours"})
                continue
            created.append(book.record(appt, "created", EventName.appointment_created, {}, placement,
                                       {"series_id": series.id}))
        if not created:
            raise invalid("rrule", "no occurrence could be booked", "nothing_booked")
        audit.record(session, caller.actor, "appointment_series.created", clinic_id=clinic_id,
                     target=f"appointment_series:{series.id}",
                     data={"rrule": series.rrule, "first_start_local": occurrences[0].local.isoformat(),
                           "created": [a["id"] for a in created], "skipped": skipped})
        return {"series_id": series.id, "created": created, "skipped": skipped}
