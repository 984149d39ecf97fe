"""Fixtures for the messaging tests: a Budapest clinic with the ``fakesms`` fixture plugin enabled and pointed
at a loopback fake vendor, a doctor, helpers to register patients, book appointments, write templates and
rules and run the outbox worker, and a frozen clock (Monday 2026-01-05 08:00 UTC = 09:00 in Budapest)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import EntryPoint
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from core.app_context import Praxis
from core.audit import Actor
from core.messaging import service
from core.messaging.schemas import RuleIn, TemplateIn
from core.models.messaging import Message
from core.outbox.worker import Worker
from core.patients.schemas import EmailIn, GuardianIn, PatientCreate, PhoneIn
from core.patients.service import PatientService
from core.scheduling import appointments
from plugin_sdk.testing import PraxisClock
from tests.auth_helpers import create_user
from tests.conftest import add_clinic
from tests.messaging.plugins.fakesms import FakeVendor

FAKESMS = EntryPoint(name="fakesms", value="tests.messaging.plugins.fakesms", group="praxis.plugins")
ACTOR = Actor(None, "test")
BOSS = appointments.Caller(ACTOR, can_overbook=True)
SECRET = "s3cret"


@pytest.fixture(scope="module")
def vendor_server() -> Iterator[FakeVendor]:
    with FakeVendor() as server:
        yield server


@pytest.fixture
def vendor(vendor_server: FakeVendor) -> Iterator[FakeVendor]:
    vendor_server.reset()
    yield vendor_server
    vendor_server.release()
    vendor_server.reset()


@dataclass
class Env:
    praxis: Praxis
    clinic_id: int
    doctor_id: int
    vendor: FakeVendor
    clock: PraxisClock
    tz: ZoneInfo
    worker: Worker = field(init=False)

    def __post_init__(self) -> None:
        self.worker = Worker(self.praxis, name="test", handler_timeout=5.0)

    # --- time ---------------------------------------------------------------------------------------

    def local(self, day: date, hh: int, mm: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hh, mm, tzinfo=self.tz).astimezone(UTC)

    def travel(self, when: datetime) -> None:
        self.clock.set(when)

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))

    # --- data ---------------------------------------------------------------------------------------

    def patient(self, family: str = "Kovács", given: str = "Anna", phone: str | None = "+36 30 123 4567",
                email: str | None = None, birth: date | None = date(1980, 5, 17), channel: str = "sms",
                language: str | None = None, guardians: list[dict[str, Any]] | None = None) -> uuid.UUID:
        data = PatientCreate(family_name=family, given_name=given, birth_date=birth, preferred_channel=channel,
                             preferred_language=language, phones=[PhoneIn(number=phone)] if phone else [],
                             emails=[EmailIn(email=email)] if email else [],
                             guardians=[GuardianIn(**g) for g in guardians or []], confirm_duplicate=True)
        return PatientService(self.praxis).create(self.clinic_id, data, ACTOR).id

    def book(self, start: datetime, patient_id: uuid.UUID | None = None, minutes: int = 30,
             **extra: Any) -> dict[str, Any]:
        values = {"doctor_id": self.doctor_id, "start_at": start, "end_at": start + timedelta(minutes=minutes),
                  **extra}
        if patient_id is not None:
            values["patient_id"] = patient_id
        return appointments.create(self.praxis, self.clinic_id, values, BOSS, overbook=True)

    def template(self, code: str, body: str, language: str = "hu", channel: str = "any",
                 subject: str = "") -> dict[str, Any]:
        return service.create_template(self.praxis, self.clinic_id, TemplateIn(
            code=code, body=body, language=language, channel=channel, subject=subject), ACTOR)

    def rule(self, kind: str, params: dict[str, Any], template_code: str = "reminder", name: str | None = None,
             **extra: Any) -> dict[str, Any]:
        return service.create_rule(self.praxis, self.clinic_id, RuleIn(
            name=name or f"{kind} {uuid.uuid4().hex[:6]}", kind=kind, params=params, template_code=template_code,
            **extra), ACTOR)

    # --- running --------------------------------------------------------------------------------------

    def run(self, rounds: int = 30) -> int:
        """Run the worker until a round finds nothing due; returns the items handled."""
        total = 0
        for _ in range(rounds):
            handled = self.worker.run_once()
            total += handled
            if not handled:
                return total
        raise AssertionError(f"the worker still had work after {rounds} rounds")

    def messages(self, **where: Any) -> list[Message]:
        with Session(self.praxis.engine) as session:
            query = select(Message).where(Message.clinic_id == self.clinic_id)
            for name, value in where.items():
                query = query.where(getattr(Message, name) == value)
            return list(session.exec(query.order_by(col(Message.planned_for), col(Message.id))).all())

    def message(self, message_id: uuid.UUID) -> Message:
        with Session(self.praxis.engine) as session:
            found = session.get(Message, message_id)
            assert found is not None
            return found


@pytest.fixture
def make_env(make_praxis: Callable[..., Praxis], praxis_clock: PraxisClock,
             vendor: FakeVendor) -> Callable[..., Env]:
    def make(entry_points: list[EntryPoint] | None = None, enable: bool = True) -> Env:
        praxis = make_praxis(entry_points or [FAKESMS])
        clinic_id = add_clinic(praxis, "Budapest", country="HU", timezone="Europe/Budapest", locale="hu")
        doctor_id = create_user(praxis, [clinic_id], role="doctor", name="Dr. Nagy Péter")
        if enable:
            praxis.plugins.enable(clinic_id, "fakesms", ACTOR)
            praxis.plugins.configure(clinic_id, "fakesms", {"endpoint": vendor.base_url, "secret": SECRET,
                                                             "timeout_seconds": 1.0}, ACTOR)
        return Env(praxis, clinic_id, doctor_id, vendor, praxis_clock, ZoneInfo("Europe/Budapest"))

    return make


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()
