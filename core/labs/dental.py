"""Dental lab cases (기공물): prosthetic work sent to a dental lab and needed back for an appointment.

The appointment book asks ``appointment_status`` for the cases an appointment needs: a warning is raised when
the work will not be back in time (the lab's due date is after the appointment's day, the due date passed without
the work coming back, or the appointment's day came and the work is not in). ``turnaround`` gives, per lab, how
many days work took from sent to received and how often it came back by the due date.
"""

from __future__ import annotations

import statistics
import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import audit
from core.clock import now
from core.db import transaction
from core.labs import catalogue
from core.labs.errors import Conflict, FieldErrors, NotFound, invalid
from core.models.appointment import Appointment
from core.models.clinic import Clinic
from core.models.labs import CaseStatus, DentalLabCase, LabKind
from core.models.patient import Patient

WORK_TYPES = ("crown", "bridge", "denture", "partial_denture", "implant_crown", "implant_bridge", "inlay", "onlay",
              "veneer", "post_core", "night_guard", "orthodontic_appliance", "surgical_guide", "other")
EDITABLE = ("provider_id", "doctor_id", "appointment_id", "work_type", "teeth", "shade", "material", "instructions",
            "due_date", "sent_on", "received_on", "checked_on", "status")
OPEN = (CaseStatus.planned, CaseStatus.sent, CaseStatus.received, CaseStatus.checked)


def _valid_tooth(n: Any) -> bool:
    """FDI notation: permanent 11-48, primary 51-85."""
    if not isinstance(n, int) or isinstance(n, bool):
        return False
    quadrant, tooth = divmod(n, 10)
    return (1 <= quadrant <= 4 and 1 <= tooth <= 8) or (5 <= quadrant <= 8 and 1 <= tooth <= 5)


def case_dict(case: DentalLabCase) -> dict[str, Any]:
    def day(value: date | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": case.id, "patient_id": str(case.patient_id), "provider_id": case.provider_id,
            "doctor_id": case.doctor_id, "appointment_id": case.appointment_id, "work_type": case.work_type,
            "teeth": list(case.teeth or []), "shade": case.shade, "material": case.material,
            "instructions": case.instructions, "due_date": day(case.due_date), "sent_on": day(case.sent_on),
            "received_on": day(case.received_on), "checked_on": day(case.checked_on), "status": case.status,
            "version": case.version, "created_at": case.created_at.isoformat(),
            "updated_at": case.updated_at.isoformat()}


def _derive_status(case: DentalLabCase, explicit: str | None) -> str:
    if explicit in (CaseStatus.cancelled, CaseStatus.fitted):
        return explicit
    if case.checked_on:
        return CaseStatus.checked
    if case.received_on:
        return CaseStatus.received
    if case.sent_on:
        return CaseStatus.sent
    return CaseStatus.planned


def _validate(session: Session, clinic_id: int, case: DentalLabCase, explicit_status: str | None) -> None:
    errors = FieldErrors()
    if case.work_type not in WORK_TYPES:
        errors.add("work_type", f"one of: {', '.join(WORK_TYPES)}")
    teeth = case.teeth or []
    if not isinstance(teeth, list) or not all(_valid_tooth(t) for t in teeth) or len(set(teeth)) != len(teeth):
        errors.add("teeth", "distinct FDI tooth numbers (11-48, 51-85)")
    elif case.work_type in ("crown", "bridge", "implant_crown", "implant_bridge", "inlay", "onlay", "veneer",
                            "post_core") and not teeth:
        errors.add("teeth", f"a {case.work_type.replace('_', ' ')} needs its teeth", "required")
    if case.work_type in ("bridge", "implant_bridge") and len(teeth) < 2:
        errors.add("teeth", "a bridge spans at least two teeth")
    if case.shade is not None and len(case.shade) > 20:
        errors.add("shade", "at most 20 characters")
    if len(case.instructions or "") > 4000:
        errors.add("instructions", "at most 4000 characters")
    if case.received_on and not case.sent_on:
        errors.add("received_on", "the work cannot come back before it was sent", "before_sent")
    if case.received_on and case.sent_on and case.received_on < case.sent_on:
        errors.add("received_on", "is before the day it was sent", "before_sent")
    if case.checked_on and (not case.received_on or case.checked_on < case.received_on):
        errors.add("checked_on", "the work is checked after it came back", "before_received")
    if explicit_status is not None and explicit_status not in {s.value for s in CaseStatus}:
        errors.add("status", f"one of: {', '.join(s.value for s in CaseStatus)}")
    if explicit_status == CaseStatus.fitted and not case.received_on:
        errors.add("status", "work that has not come back cannot be fitted", "not_received")
    provider = session.get(catalogue.LabProvider, case.provider_id) if case.provider_id else None
    if provider is None or provider.clinic_id != clinic_id:
        errors.add("provider_id", "no such lab in this clinic", "unknown_lab")
    elif provider.kind != LabKind.dental:
        errors.add("provider_id", "choose a dental lab", "wrong_kind")
    patient = session.get(Patient, case.patient_id)
    if patient is None or patient.clinic_id != clinic_id:
        errors.add("patient_id", "no such patient in this clinic", "unknown_patient")
    if case.appointment_id is not None:
        appt = session.get(Appointment, case.appointment_id)
        if appt is None or appt.clinic_id != clinic_id or appt.deleted_at is not None:
            errors.add("appointment_id", "no such appointment in this clinic", "unknown_appointment")
        elif appt.patient_id is not None and appt.patient_id != case.patient_id:
            errors.add("appointment_id", "the appointment is another patient's", "other_patient")
    errors.raise_if_any()


def create_case(engine: Engine, clinic_id: int, values: dict[str, Any], actor: audit.Actor) -> dict[str, Any]:
    try:
        patient_id = uuid.UUID(str(values.get("patient_id")))
    except ValueError:
        raise invalid("patient_id", "a patient id", "required") from None
    fields = {k: v for k, v in values.items() if k in EDITABLE and k != "status"}
    explicit = values.get("status")
    with transaction(engine) as session:
        case = DentalLabCase(clinic_id=clinic_id, patient_id=patient_id, created_by=actor.id,
                             **{"provider_id": 0, "work_type": "", **fields})
        _validate(session, clinic_id, case, explicit)
        case.status = _derive_status(case, explicit)
        session.add(case)
        session.flush()
        audit.record(session, actor, "labs.dental_case_created", clinic_id=clinic_id, target=f"dental_case:{case.id}",
                     data=case_dict(case))
        return case_dict(case)


def get_case(session: Session, clinic_id: int, case_id: int) -> DentalLabCase:
    case = session.get(DentalLabCase, case_id)
    if case is None or case.clinic_id != clinic_id:
        raise NotFound(f"dental lab case {case_id} not found in this clinic")
    return case


def update_case(engine: Engine, clinic_id: int, case_id: int, values: dict[str, Any], actor: audit.Actor,
                *, version: int | None = None) -> dict[str, Any]:
    with transaction(engine) as session:
        case = session.exec(select(DentalLabCase).where(DentalLabCase.id == case_id).with_for_update()).first()
        if case is None or case.clinic_id != clinic_id:
            raise NotFound(f"dental lab case {case_id} not found in this clinic")
        if version is not None and version != case.version:
            raise Conflict("someone else changed this case; reload it", current_version=case.version)
        before = case_dict(case)
        explicit = values.get("status")
        if explicit is None and case.status in (CaseStatus.cancelled, CaseStatus.fitted):
            explicit = case.status
        for key, value in values.items():
            if key in EDITABLE and key != "status":
                setattr(case, key, value)
        _validate(session, clinic_id, case, explicit)
        case.status = _derive_status(case, explicit)
        case.version += 1
        case.updated_at = now()
        session.add(case)
        session.flush()
        after = case_dict(case)
        audit.record(session, actor, "labs.dental_case_changed", clinic_id=clinic_id, target=f"dental_case:{case_id}",
                     data={"before": {k: before[k] for k in after if before[k] != after[k] and k != "updated_at"},
                           "after": {k: after[k] for k in after if before[k] != after[k] and k != "updated_at"}})
        return after


def delete_case(engine: Engine, clinic_id: int, case_id: int, actor: audit.Actor) -> None:
    """Only a case never sent may be deleted; later, cancel it (its history stays)."""
    with transaction(engine) as session:
        case = get_case(session, clinic_id, case_id)
        if case.sent_on is not None:
            raise Conflict("the work was sent to the lab; cancel the case instead of deleting it")
        data = case_dict(case)
        session.delete(case)
        audit.record(session, actor, "labs.dental_case_deleted", clinic_id=clinic_id, target=f"dental_case:{case_id}",
                     data=data)


def list_cases(session: Session, clinic_id: int, *, patient_id: uuid.UUID | None = None,
               provider_id: int | None = None, status: str | None = None,
               appointment_id: int | None = None) -> list[dict[str, Any]]:
    query = select(DentalLabCase).where(DentalLabCase.clinic_id == clinic_id)
    if patient_id is not None:
        query = query.where(DentalLabCase.patient_id == patient_id)
    if provider_id is not None:
        query = query.where(DentalLabCase.provider_id == provider_id)
    if status is not None:
        query = query.where(DentalLabCase.status == status)
    if appointment_id is not None:
        query = query.where(DentalLabCase.appointment_id == appointment_id)
    return [case_dict(c) for c in session.exec(query.order_by(col(DentalLabCase.due_date), col(DentalLabCase.id)))]


# --- warnings on the appointment book ----------------------------------------------------------------------


def _zone(session: Session, clinic_id: int) -> ZoneInfo:
    clinic = session.get(Clinic, clinic_id)
    try:
        return ZoneInfo(clinic.timezone if clinic else "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def case_warnings(case: DentalLabCase, appointment_day: date | None, today: date) -> list[dict[str, str]]:
    """Why the work may not be ready for the appointment (empty: on track or not needed any more)."""
    if case.status not in (CaseStatus.planned, CaseStatus.sent):
        return []  # back from the lab (received/checked), fitted or cancelled
    warnings = []
    if appointment_day is not None and case.due_date is not None and case.due_date > appointment_day:
        warnings.append({"code": "due_after_appointment",
                         "message": f"the lab's due date {case.due_date} is after the appointment "
                                    f"on {appointment_day}"})
    if appointment_day is not None and today >= appointment_day:
        warnings.append({"code": "not_received", "message": f"the work is not back and the appointment is on "
                                                            f"{appointment_day}"})
    elif case.due_date is not None and today > case.due_date:
        warnings.append({"code": "overdue", "message": f"the work was due back on {case.due_date}"})
    if case.status == CaseStatus.planned and appointment_day is not None and case.due_date is None:
        warnings.append({"code": "not_sent", "message": "the work has not been sent to the lab yet"})
    return warnings


def appointment_status(session: Session, clinic_id: int, appointment_id: int) -> dict[str, Any]:
    """The lab cases an appointment needs, each with its warnings; ``ok`` when none will be late."""
    appt = session.get(Appointment, appointment_id)
    if appt is None or appt.clinic_id != clinic_id or appt.deleted_at is not None:
        raise NotFound(f"appointment {appointment_id} not found in this clinic")
    return _statuses(session, clinic_id, [appt])[appointment_id]


def _statuses(session: Session, clinic_id: int, appts: list[Appointment]) -> dict[int, dict[str, Any]]:
    zone = _zone(session, clinic_id)
    today = now().astimezone(zone).date()
    ids = [a.id for a in appts if a.id is not None]
    cases: dict[int, list[DentalLabCase]] = {}
    if ids:
        for case in session.exec(select(DentalLabCase).where(DentalLabCase.clinic_id == clinic_id,
                                                             col(DentalLabCase.appointment_id).in_(ids))
                                 .order_by(col(DentalLabCase.id))):
            cases.setdefault(case.appointment_id or 0, []).append(case)
    out = {}
    for appt in appts:
        assert appt.id is not None
        day = appt.start_at.astimezone(zone).date()
        entries = []
        for case in cases.get(appt.id, []):
            entries.append({**case_dict(case), "warnings": case_warnings(case, day, today)})
        open_cases = [e for e in entries if e["status"] in OPEN]
        status = ("none" if not open_cases else "late" if any(e["warnings"] for e in entries)
                  else "ready" if all(e["status"] in (CaseStatus.received, CaseStatus.checked) for e in open_cases)
                  else "in_progress")
        out[appt.id] = {"appointment_id": appt.id, "appointment_day": day.isoformat(), "lab_status": status,
                        "ok": not any(e["warnings"] for e in entries), "cases": entries}
    return out


def warnings_between(session: Session, clinic_id: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Appointments in [start, end) whose lab work will not be back in time (for the appointment book)."""
    waiting = select(DentalLabCase.appointment_id).where(
        DentalLabCase.clinic_id == clinic_id, col(DentalLabCase.status).in_([CaseStatus.planned, CaseStatus.sent]))
    appts = list(session.exec(
        select(Appointment).where(Appointment.clinic_id == clinic_id, col(Appointment.deleted_at).is_(None),
                                  col(Appointment.start_at) >= start, col(Appointment.start_at) < end,
                                  col(Appointment.id).in_(waiting))
        .order_by(col(Appointment.start_at))))
    return [s for s in _statuses(session, clinic_id, appts).values() if not s["ok"]]


# --- turnaround --------------------------------------------------------------------------------------------


def turnaround(session: Session, clinic_id: int, *, since: date | None = None,
               until: date | None = None) -> list[dict[str, Any]]:
    """Per dental lab: cases back, days from sent to received (mean, median, longest), share back by the due
    date, and cases still out."""
    labs = {p.id: p for p in session.exec(select(catalogue.LabProvider).where(
        catalogue.LabProvider.clinic_id == clinic_id, catalogue.LabProvider.kind == LabKind.dental))}
    query = select(DentalLabCase).where(DentalLabCase.clinic_id == clinic_id,
                                        col(DentalLabCase.status) != CaseStatus.cancelled,
                                        col(DentalLabCase.sent_on).is_not(None))
    if since is not None:
        query = query.where(col(DentalLabCase.sent_on) >= since)
    if until is not None:
        query = query.where(col(DentalLabCase.sent_on) <= until)
    per: dict[int, list[DentalLabCase]] = {pid: [] for pid in labs if pid is not None}
    for case in session.exec(query):
        per.setdefault(case.provider_id, []).append(case)
    out = []
    for provider_id, cases in per.items():
        back = [c for c in cases if c.received_on and c.sent_on]
        days = [(c.received_on - c.sent_on).days for c in back]  # type: ignore[operator]
        with_due = [c for c in back if c.due_date]
        on_time = [c for c in with_due if c.received_on <= c.due_date]  # type: ignore[operator]
        provider = labs.get(provider_id)
        out.append({
            "provider_id": provider_id, "name": provider.name if provider else None, "cases_back": len(back),
            "cases_out": len(cases) - len(back),
            "mean_days": round(statistics.fmean(days), 1) if days else None,
            "median_days": statistics.median(days) if days else None, "max_days": max(days) if days else None,
            "on_time_rate": round(len(on_time) / len(with_due), 3) if with_due else None,
        })
    return sorted(out, key=lambda r: (r["name"] or "", r["provider_id"]))
