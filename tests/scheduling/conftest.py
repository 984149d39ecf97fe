"""Fixtures for the appointment book: a Budapest and a Seoul clinic, doctors, rooms, weekly schedules,
and a fixed clock (Monday 2026-03-02 05:00 UTC) so "free slots from now on" is deterministic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from importlib.metadata import EntryPoint
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.app_context import Praxis
from core.audit import Actor
from core.clock import set_clock
from core.scheduling import schedules
from core.scheduling.appointments import Caller
from tests.auth_helpers import create_user
from tests.conftest import add_clinic

NOW = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
ACTOR = Actor(None, "test")
DESK = Caller(ACTOR)
BOSS = Caller(ACTOR, can_overbook=True)


@dataclass
class ClinicSetup:
    praxis: Praxis
    clinic_id: int
    tz: ZoneInfo
    doctors: list[int]
    rooms: list[int]

    def at(self, day: date, hh: int, mm: int = 0) -> datetime:
        """A clinic-local wall time as an aware UTC instant."""
        return datetime.combine(day, time(hh, mm), tzinfo=self.tz).astimezone(UTC)

    def values(self, day: date, hh: int, mm: int = 0, minutes: int = 30, doctor: int = 0, **extra: Any) -> dict:
        start = self.at(day, hh, mm)
        from datetime import timedelta

        base = {"doctor_id": self.doctors[doctor], "start_at": start, "end_at": start + timedelta(minutes=minutes),
                "new_patient_name": "Kovács Anna", "new_patient_phone": "+36 30 123 4567"}
        base.update(extra)
        return base


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    set_clock(lambda: NOW)
    yield
    set_clock(None)


def build_clinic(praxis: Praxis, *, name: str, country: str, tz: str, locale: str, doctors: int = 2,
                 rooms: int = 2, lunch: bool = True, weekdays: range = range(5)) -> ClinicSetup:
    clinic_id = add_clinic(praxis, name=name, country=country, timezone=tz, locale=locale)
    doctor_ids = [create_user(praxis, [clinic_id], role="doctor", name=f"Doctor {i + 1}") for i in range(doctors)]
    room_ids = [schedules.create_room(praxis.engine, clinic_id, {"name": f"Chair {i + 1}", "kind": "chair"},
                                      ACTOR)["id"] for i in range(rooms)]
    schedules.set_hours(praxis.engine, clinic_id, [
        {"weekday": d, "start_time": time(8), "end_time": time(18)} for d in range(6)], ACTOR)
    for i, doctor in enumerate(doctor_ids):
        room = room_ids[i % rooms] if rooms else None
        schedules.set_templates(praxis.engine, clinic_id, doctor, [
            {"weekday": d, "start_time": time(9), "end_time": time(17), "room_id": room} for d in weekdays], ACTOR)
        if lunch:
            for d in weekdays:
                schedules.add_break(praxis.engine, clinic_id, doctor,
                                    {"weekday": d, "start_time": time(12), "end_time": time(13), "label": "lunch"},
                                    ACTOR)
    return ClinicSetup(praxis, clinic_id, ZoneInfo(tz), doctor_ids, room_ids)


BOOKWATCH = EntryPoint(name="bookwatch", value="tests.scheduling.plugins.bookwatch", group="praxis.plugins")


@pytest.fixture
def praxis(make_praxis: Callable[..., Praxis]) -> Praxis:
    """Installs the ``bookwatch`` fixture plugin (event listener + veto); enable it per clinic to use it."""
    from tests.scheduling.plugins import bookwatch

    bookwatch.VETO_CALLS.clear()
    return make_praxis([BOOKWATCH])


@pytest.fixture
def budapest(praxis: Praxis) -> ClinicSetup:
    return build_clinic(praxis, name="Budapest", country="HU", tz="Europe/Budapest", locale="hu")


@pytest.fixture
def seoul(praxis: Praxis) -> ClinicSetup:
    return build_clinic(praxis, name="Seoul", country="KR", tz="Asia/Seoul", locale="ko")
