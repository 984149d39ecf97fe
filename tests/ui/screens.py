"""Helpers for the tests of the desk, appointment-book and admin screens: a clinic with a doctor, a room,
working hours and a break, patients, and appointments in every state; and a walk over every screen (each
template and each dialog of those screens) for the every-template-in-every-language test."""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from core.audit import Actor
from core.db import transaction
from core.models.clinic import Clinic
from core.patients.schemas import AlertIn, PatientCreate, PhoneIn
from core.patients.service import PatientService
from core.scheduling import appointments as ap
from core.scheduling import schedules, waitlist
from tests.auth_helpers import create_user
from tests.ui.helpers import csrf_of

ACTOR = Actor(None, "test")
HTMX = {"HX-Request": "true"}
# A Wednesday well in the future: nothing of the test clock interferes, no public holiday in HU or KR.
DAY = date(2031, 3, 5)


@dataclass
class Book:
    clinic: int
    doctor: int
    room: int
    patient: str
    other_patient: str
    booked: int
    cancelled: int
    pinned: int
    waiting: int
    receptionist: int


def set_up_book(praxis: Any, clinic: int, *, doctor_name: str = "Dr. Kovács Anna") -> Book:
    """A doctor working 9:00-17:00 every day with a lunch break 12:00-13:00, a chair, three patients and
    appointments: one booked, one cancelled, one on the pinboard; one waitlist entry."""
    existing = getattr(praxis, "_ui_screens_book", {}).get(clinic)
    if existing is not None:
        return existing
    doctor = create_user(praxis, [clinic], role="doctor", name=doctor_name)
    receptionist = create_user(praxis, [clinic], role="receptionist", name="Recepció Rita")
    room = schedules.create_room(praxis.engine, clinic, {"name": "Chair 1", "kind": "chair"}, ACTOR)["id"]
    schedules.set_templates(praxis.engine, clinic, doctor, [
        {"weekday": d, "start_time": time(9), "end_time": time(17), "room_id": room} for d in range(7)], ACTOR)
    for weekday in range(7):
        schedules.add_break(praxis.engine, clinic, doctor,
                            {"weekday": weekday, "start_time": time(12), "end_time": time(13)}, ACTOR)
    service = PatientService(praxis)
    patient = service.create(clinic, PatientCreate(
        family_name="Kovács", given_name="Anna", birth_date=date(1980, 1, 2), phones=[PhoneIn(number="+36301234567")],
        alerts=[AlertIn(type="allergy", text="Penicillin", severity="high")], tags=["implant"], vip=True), ACTOR)
    other = service.create(clinic, PatientCreate(family_name="Nagy", given_name="Béla",
                                                 phones=[PhoneIn(number="+36301112222")]), ACTOR)
    with transaction(praxis.engine) as session:
        clinic_row = session.get(Clinic, clinic)
        assert clinic_row is not None
        tz = ZoneInfo(clinic_row.timezone)
    caller = ap.Caller(ACTOR, can_overbook=True)

    def at(hour: int, minute: int = 0) -> datetime:
        return datetime.combine(DAY, time(hour, minute), tzinfo=tz)

    booked = ap.create(praxis, clinic, {"doctor_id": doctor, "patient_id": patient.id, "start_at": at(9),
                                        "end_at": at(9, 30), "type_code": "follow_up"}, caller)["id"]
    cancelled = ap.create(praxis, clinic, {"doctor_id": doctor, "patient_id": other.id, "start_at": at(10),
                                           "end_at": at(10, 30)}, caller)["id"]
    ap.cancel(praxis, clinic, cancelled, caller, reason="patient_ill")
    pinned = ap.create(praxis, clinic, {"doctor_id": doctor, "new_patient_name": "Kim Minji",
                                        "new_patient_phone": "+36301239999", "start_at": at(14),
                                        "end_at": at(14, 30)}, caller)["id"]
    ap.pin(praxis, clinic, pinned, caller, note="call back")
    waiting = waitlist.create(praxis, clinic, {"patient_id": other.id, "duration_minutes": 30, "notes": "mornings"},
                              ACTOR)["id"]
    made = Book(clinic, doctor, room, str(patient.id), str(other.id), booked, cancelled, pinned, waiting,
                receptionist)
    if not hasattr(praxis, "_ui_screens_book"):
        praxis._ui_screens_book = {}
    praxis._ui_screens_book[clinic] = made
    return made


def visit_screens(client: Any, praxis: Any, clinic: int) -> list[Any]:
    """GET and POST every screen of the desk, the book and the admin area as an administrator; returns the
    responses (200, or 409/422 for the refused forms that show errors)."""
    b = set_up_book(praxis, clinic)
    desk, book, admin = f"/clinics/{clinic}/desk", f"/clinics/{clinic}/book", f"/clinics/{clinic}/admin"
    pages = [client.get(desk), client.get(f"{desk}?q=kov", headers={**HTMX, "HX-Target": "results"}),
             client.get(f"{desk}/new"), client.get(f"{desk}/{b.patient}"),
             client.get(f"{desk}/{b.patient}?reveal=1", headers=HTMX), client.get(f"{desk}/{b.patient}/edit"),
             client.get(f"{desk}/{b.patient}/merge?q=nagy"),
             client.get(f"{desk}/{b.patient}/merge?q=nagy", headers={**HTMX, "HX-Target": "merge-results"}),
             client.get(f"{desk}/{b.patient}/merge?other={b.other_patient}"), client.get(f"{desk}/trash"),
             client.get(f"{desk}/lookup/patients?q=kov", headers=HTMX)]
    token = csrf_of(pages[0].text)
    pages.append(client.post(f"{desk}/new", data={"csrf_token": token, "family_name": "", "birth_date": "2999-01-01"}))
    pages.append(client.post(f"{desk}/new", data={"csrf_token": token, "family_name": "Kovács", "given_name": "Anna",
                                                  "birth_date": "1980-01-02"}))
    pages += [client.get(f"{book}?day={DAY}"), client.get(f"{book}?day={DAY}&view=week&by=room"),
              client.get(f"{book}?day={DAY}&partial=grid"), client.get(f"{book}?day={DAY}&partial=panels"),
              client.get(f"{book}/new?day={DAY}&at=11:00&doctor={b.doctor}", headers=HTMX),
              client.get(f"{book}/new?day={DAY}&at=11:00&doctor={b.doctor}&patient={b.patient}"),
              client.get(f"{book}/slots?from={DAY}", headers=HTMX), client.get(f"{book}/waitlist/new", headers=HTMX),
              client.get(f"{book}/waitlist/{b.waiting}/book?day={DAY}", headers=HTMX),
              client.get(f"{book}/appointments/{b.cancelled}", headers=HTMX)]
    for panel in ("", "move", "cancel", "no_show", "delete", "waitlist", "history"):
        pages.append(client.get(f"{book}/appointments/{b.booked}?panel={panel}", headers=HTMX))
    pages.append(client.post(f"{book}/new", data={"csrf_token": token, "date": DAY.isoformat(), "time": "09:00",
                                                  "doctor_id": b.doctor, "patient_id": b.other_patient},
                             headers=HTMX))
    pages += [client.get(f"{admin}/staff"), client.get(f"{admin}/staff/new"),
              client.get(f"{admin}/staff/{b.receptionist}"), client.get(f"{admin}/roles"),
              client.get(f"{admin}/audit"), client.get(f"{admin}/audit/access"), client.get(f"{admin}/audit/logins"),
              client.get(f"{admin}/outbox"), client.post(f"{admin}/audit/verify", data={"csrf_token": token})]
    return pages


def field_errors(html: str) -> dict[str, str]:
    """``{input id: error text}`` of the field errors shown in a page."""
    return {m.group(1)[:-len("-error")]: html_lib.unescape(m.group(2).strip())
            for m in re.finditer(r'class="field-error" id="([^"]+)">([^<]*)<', html) if m.group(2).strip()}
