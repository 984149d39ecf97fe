"""200 concurrent attempts to book overlapping times for one doctor leave exactly one booking (SQLite with
threads; PostgreSQL with threads when PRAXIS_TEST_DATABASE_URL is set, sharing the engine's pool)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from sqlmodel import Session, func, select

from core.models.appointment import Appointment
from core.scheduling import appointments as ap
from core.scheduling.errors import Conflict
from tests.scheduling.conftest import DESK, ClinicSetup

ATTEMPTS = 200


def test_200_concurrent_overlapping_bookings_leave_one(budapest: ClinicSetup) -> None:
    b = budapest
    day = date(2026, 3, 3)
    barrier = threading.Barrier(40)
    # every attempt overlaps every other: 30-minute bookings starting within 15 minutes of 10:00
    starts = [b.at(day, 10) + timedelta(minutes=i % 15) for i in range(ATTEMPTS)]

    def attempt(i: int) -> str:
        if i < 40:
            barrier.wait()
        values = b.values(day, 10, room_id=b.rooms[i % 2])
        values["start_at"], values["end_at"] = starts[i], starts[i] + timedelta(minutes=30)
        try:
            ap.create(b.praxis, b.clinic_id, values, DESK)
            return "booked"
        except Conflict:
            return "conflict"

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(attempt, range(ATTEMPTS)))
    assert results.count("booked") == 1
    assert results.count("conflict") == ATTEMPTS - 1
    with Session(b.praxis.engine) as session:
        assert session.exec(select(func.count()).select_from(Appointment)).one() == 1
