"""Load two living clinics: Budapest and Seoul, five staff, 200 patients and a week of appointments.

Everything goes through the same services the API uses, so the demo data passes the same validation,
plugin vetoes, audit and events as data typed in by a receptionist.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from core import audit
from core.app_context import Praxis
from core.clock import now
from core.db import transaction
from core.demo.names import person
from core.models.clinic import Clinic
from plugin_sdk.errors import ValidationFailed

DEMO_PASSWORD = "praxis-demo-2026"
ACTOR = audit.Actor(None, "demo")


@dataclass(frozen=True)
class ClinicPlan:
    name: str
    country: str
    timezone: str
    locale: str
    address: str
    rooms: tuple[str, ...]
    identifier: str
    doctors: tuple[tuple[str, str, str], ...]  # login, name, speciality


CLINICS = (
    ClinicPlan("Budapest Dental", "HU", "Europe/Budapest", "hu", "1052 Budapest, Váci utca 12.",
               ("1. rendelő", "2. rendelő"), "hu.taj",
               (("dr.kovacs", "Dr. Kovács Anna", "fogszakorvos"), ("dr.nagy", "Dr. Nagy Péter", "szájsebész"))),
    ClinicPlan("서울 치과", "KR", "Asia/Seoul", "ko", "서울특별시 강남구 테헤란로 152",
               ("진료실 1", "진료실 2"), "kr.rrn",
               (("dr.kim", "김서연", "치과의사"),)),
)
STAFF = (("admin", "Praxis Admin", "admin"), ("reception", "Recepció / 접수", "receptionist"))
TYPES = ("first_visit", "follow_up", "consultation", "treatment", "hygiene")
SOURCES = ("phone", "walk_in", "online", "referral")


@dataclass
class DemoResult:
    clinics: list[str]
    logins: list[str]
    patients: int
    appointments: int
    already_loaded: bool = False


def load_demo(praxis: Praxis, *, patients_per_clinic: int = 100, seed: int = 2026,
              progress: Callable[[str, int], None] | None = None) -> DemoResult:
    """Create the demo clinics unless they exist. ``progress(label, steps_done)`` is called as work advances."""
    from core.auth.clinics import create_clinic
    from core.auth.permissions import catalog
    from core.auth.users import MembershipSpec, create_user
    from core.models.auth import User

    tick = progress or (lambda label, n: None)
    logins = [login for login, _, _ in STAFF] + [d[0] for plan in CLINICS for d in plan.doctors]
    with Session(praxis.engine) as session:
        existing = session.exec(select(Clinic).where(Clinic.name == CLINICS[0].name)).first()
    if existing is not None:
        return DemoResult([p.name for p in CLINICS], logins, 0, 0, already_loaded=True)

    rng = random.Random(seed)
    cat = catalog(praxis.runtime)
    clinic_ids: list[int] = []
    doctors: dict[int, list[int]] = {}
    with transaction(praxis.engine) as session:
        for plan in CLINICS:
            clinic = create_clinic(praxis, session, ACTOR, {
                "name": plan.name, "country": plan.country, "timezone": plan.timezone, "locale": plan.locale,
                "address": plan.address})
            assert clinic.id is not None
            clinic_ids.append(clinic.id)
        for login, name, role in STAFF:
            create_user(session, cat, ACTOR, login=login, name=name, password=DEMO_PASSWORD,
                        memberships=[MembershipSpec(cid, role) for cid in clinic_ids])
        for plan, clinic_id in zip(CLINICS, clinic_ids, strict=True):
            doctors[clinic_id] = []
            for login, name, speciality in plan.doctors:
                user = create_user(session, cat, ACTOR, login=login, name=name, password=DEMO_PASSWORD,
                                   speciality=speciality, memberships=[MembershipSpec(clinic_id, "doctor")])
                assert isinstance(user, User) and user.id is not None
                doctors[clinic_id].append(user.id)
    praxis.runtime.state.invalidate()
    tick("clinics and staff", 1)

    for plan, clinic_id in zip(CLINICS, clinic_ids, strict=True):
        _set_up_schedules(praxis, clinic_id, plan, doctors[clinic_id])
    tick("rooms and working hours", 1)

    patient_ids: dict[int, list[Any]] = {}
    for plan, clinic_id in zip(CLINICS, clinic_ids, strict=True):
        patient_ids[clinic_id] = _patients(praxis, clinic_id, plan, patients_per_clinic, rng, tick)

    booked = 0
    for plan, clinic_id in zip(CLINICS, clinic_ids, strict=True):
        booked += _appointments(praxis, clinic_id, plan, doctors[clinic_id], patient_ids[clinic_id], rng, tick)
    return DemoResult([p.name for p in CLINICS], logins, sum(len(v) for v in patient_ids.values()), booked)


def _set_up_schedules(praxis: Praxis, clinic_id: int, plan: ClinicPlan, doctor_ids: list[int]) -> None:
    from core.scheduling import schedules

    rooms = [schedules.create_room(praxis.engine, clinic_id, {"name": name, "kind": "chair", "position": i},
                                   ACTOR)["id"] for i, name in enumerate(plan.rooms)]
    weekdays = [{"weekday": d, "start_time": time(8), "end_time": time(18)} for d in range(5)]
    schedules.set_hours(praxis.engine, clinic_id, weekdays + [{"weekday": 5, "start_time": time(9),
                                                                "end_time": time(13)}], ACTOR)
    for index, doctor_id in enumerate(doctor_ids):
        room = rooms[index % len(rooms)]
        templates = [{"weekday": d, "start_time": time(8), "end_time": time(16), "room_id": room} for d in range(5)]
        schedules.set_templates(praxis.engine, clinic_id, doctor_id, templates, ACTOR)
        for weekday in range(5):
            schedules.add_break(praxis.engine, clinic_id, doctor_id, {
                "weekday": weekday, "start_time": time(12), "end_time": time(12, 30), "note": "lunch"}, ACTOR)


def _patients(praxis: Praxis, clinic_id: int, plan: ClinicPlan, count: int, rng: random.Random,
              tick: Callable[[str, int], None]) -> list[Any]:
    from core.patients.schemas import AlertIn, EmailIn, GuardianIn, PatientCreate, PhoneIn
    from core.patients.service import PatientService

    service = PatientService(praxis)
    known_types = service.identifier_types(clinic_id)
    ids = []
    for _ in range(count):
        p = person(rng, plan.country)
        minor = (now().date() - p.birth_date).days < 18 * 365
        data = PatientCreate(
            family_name=p.family_name, given_name=p.given_name,
            family_name_latin=p.family_name_latin, given_name_latin=p.given_name_latin,
            birth_date=p.birth_date, sex={"M": "male", "F": "female"}[p.sex],
            phones=[PhoneIn(number=p.phone)], emails=[EmailIn(email=p.email)] if rng.random() < 0.6 else [],
            preferred_channel="sms" if rng.random() < 0.8 else "email",
            preferred_language=plan.locale,
            identifiers={plan.identifier: p.national_id} if plan.identifier in known_types and p.national_id else {},
            guardians=[GuardianIn(name=f"{p.family_name} {'(szülő)' if plan.country == 'HU' else '(보호자)'}",
                                  relation="parent", phone=p.phone)] if minor else [],
            alerts=[AlertIn(type="allergy", text=rng.choice(["Penicillin", "Latex", "Lidocaine"]),
                            severity="high")] if rng.random() < 0.08 else [],
            vip=rng.random() < 0.03,
            tags=rng.sample(["orthodontics", "implant", "recall", "child"], k=rng.randrange(0, 2)),
            confirm_duplicate=True,
        )
        try:
            ids.append(service.create(clinic_id, data, ACTOR).id)
        except ValidationFailed:
            continue  # a generated number a plugin refuses: skip that person, as a receptionist would
        tick("patients", 1)
    return ids


def _appointments(praxis: Praxis, clinic_id: int, plan: ClinicPlan, doctor_ids: list[int], patient_ids: list[Any],
                  rng: random.Random, tick: Callable[[str, int], None]) -> int:
    from core.scheduling import appointments
    from core.scheduling.errors import SchedulingError

    tz = ZoneInfo(plan.timezone)
    today = now().astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    caller = appointments.Caller(ACTOR, can_overbook=False)
    booked = 0
    for day in (monday + timedelta(days=i) for i in range(7)):
        for doctor_id in doctor_ids:
            slot = datetime.combine(day, time(8), tz)
            while slot.time() < time(16):
                length = timedelta(minutes=rng.choice((30, 30, 60)))
                if rng.random() < 0.55 and patient_ids:
                    values: dict[str, Any] = {
                        "doctor_id": doctor_id, "start_at": slot, "end_at": slot + length,
                        "type_code": rng.choice(TYPES), "source_code": rng.choice(SOURCES),
                        "patient_id": rng.choice(patient_ids),
                    }
                    try:
                        made = appointments.create(praxis, clinic_id, values, caller)
                        booked += 1
                        tick("appointments", 1)
                        _advance_status(praxis, clinic_id, made, slot, caller, rng)
                    except (SchedulingError, ValidationFailed):
                        pass  # a holiday, a break or a taken chair: the grid keeps the gap
                slot += length
    return booked


def _advance_status(praxis: Praxis, clinic_id: int, made: dict[str, Any], start: datetime, caller: Any,
                    rng: random.Random) -> None:
    """Past appointments are done or missed; today's earlier ones are under way, so the book looks lived in."""
    from core.scheduling import appointments

    appointment_id = made["appointment"]["id"] if "appointment" in made else made["id"]
    if start > now():
        if rng.random() < 0.4:
            appointments.set_status(praxis, clinic_id, appointment_id, caller, status="confirmed")
        return
    if rng.random() < 0.08:
        appointments.no_show(praxis, clinic_id, appointment_id, caller, reason=rng.choice(("forgot", "unreachable")))
        return
    for status in ("arrived", "in_progress", "done"):
        appointments.set_status(praxis, clinic_id, appointment_id, caller, status=status)
