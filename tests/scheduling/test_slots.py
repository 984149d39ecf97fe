"""Free-slot search: templates, breaks, clinic hours, holidays (Hungary, Korea), make-up workdays, clinic
days off and the appointments already booked."""

from __future__ import annotations

from datetime import date, time

import pytest

from core.scheduling import appointments as ap
from core.scheduling import schedules, slots
from plugin_sdk.errors import ValidationFailed
from tests.scheduling.conftest import ACTOR, DESK, ClinicSetup, build_clinic


def day_slots(result: dict, day: date, doctor: int | None = None) -> list[str]:
    return [s["start_local"][11:16] for s in result["slots"]
            if s["start_local"].startswith(day.isoformat()) and (doctor is None or s["doctor_id"] == doctor)]


def test_breaks_bookings_and_grid(budapest: ClinicSetup) -> None:
    b = budapest
    tue = date(2026, 3, 3)
    ap.create(b.praxis, b.clinic_id, b.values(tue, 10, minutes=45), DESK)
    result = slots.search(b.praxis, b.clinic_id, [b.doctors[0]], 30, tue, tue, step_minutes=30, limit=1000)
    assert day_slots(result, tue) == ["09:00", "09:30", "11:00", "11:30",  # 10:00-10:45 booked, 12-13 lunch
                                      "13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30"]
    first = result["slots"][0]
    assert first["start_at"] == "2026-03-03T08:00:00+00:00" and first["room_id"] == b.rooms[0]


def test_room_taken_by_another_doctor_is_not_free(budapest: ClinicSetup) -> None:
    b = budapest
    tue = date(2026, 3, 3)
    ap.create(b.praxis, b.clinic_id, b.values(tue, 9, doctor=1, room_id=b.rooms[0]), DESK)
    result = slots.search(b.praxis, b.clinic_id, [b.doctors[0]], 30, tue, tue, step_minutes=30)
    assert "09:00" not in day_slots(result, tue)


def test_hungarian_holidays_makeup_saturday_and_days_off(budapest: ClinicSetup) -> None:
    b = budapest
    result = slots.search(b.praxis, b.clinic_id, [b.doctors[0]], 60, date(2026, 1, 1), date(2026, 1, 10),
                          step_minutes=60, limit=1000, include_past=True)
    days = sorted({s["start_local"][:10] for s in result["slots"]})
    # 1 Jan holiday, 2 Jan bridge day off, weekend, then 5-9 Jan, and Saturday 10 Jan is worked as a Friday
    assert days == ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08", "2026-01-09", "2026-01-10"]
    assert day_slots(result, date(2026, 1, 10)) == ["09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00"]
    schedules.add_day(b.praxis.engine, b.clinic_id, date(2026, 1, 7), True, "staff training", ACTOR)
    schedules.add_day(b.praxis.engine, b.clinic_id, date(2026, 1, 1), False, "emergency service", ACTOR)
    result = slots.search(b.praxis, b.clinic_id, [b.doctors[0]], 60, date(2026, 1, 1), date(2026, 1, 10),
                          step_minutes=60, limit=1000, include_past=True)
    days = sorted({s["start_local"][:10] for s in result["slots"]})
    assert "2026-01-07" not in days and "2026-01-01" in days
    easter = slots.search(b.praxis, b.clinic_id, b.doctors, 30, date(2026, 4, 3), date(2026, 4, 6))
    assert easter["total"] == 0  # Good Friday, weekend, Easter Monday


def test_korean_holidays_and_exceptions(seoul: ClinicSetup) -> None:
    s = seoul
    result = slots.search(s.praxis, s.clinic_id, s.doctors, 30, date(2026, 3, 2), date(2026, 3, 3), limit=5000)
    assert day_slots(result, date(2026, 3, 2)) == []  # 삼일절 대체 휴일
    assert day_slots(result, date(2026, 3, 3), s.doctors[0])[0] == "09:00"
    assert result["slots"][0]["start_at"] == "2026-03-03T00:00:00+00:00"
    seollal = slots.search(s.praxis, s.clinic_id, s.doctors, 30, date(2026, 2, 16), date(2026, 2, 18),
                           include_past=True)
    assert seollal["total"] == 0
    schedules.add_exception(s.praxis.engine, s.clinic_id, s.doctors[0], {"day": date(2026, 3, 4), "kind": "off"},
                            ACTOR)
    schedules.add_exception(s.praxis.engine, s.clinic_id, s.doctors[1],
                            {"day": date(2026, 3, 4), "kind": "hours", "start_time": time(14),
                             "end_time": time(20)}, ACTOR)
    wed = slots.search(s.praxis, s.clinic_id, s.doctors, 60, date(2026, 3, 4), date(2026, 3, 4), step_minutes=60)
    assert day_slots(wed, date(2026, 3, 4), s.doctors[0]) == []
    # other hours, cut by the clinic's closing at 18:00; the weekly lunch break does not fall in them
    assert day_slots(wed, date(2026, 3, 4), s.doctors[1]) == ["14:00", "15:00", "16:00", "17:00"]


def test_only_future_slots_and_validation(budapest: ClinicSetup) -> None:
    b = budapest
    past = slots.search(b.praxis, b.clinic_id, b.doctors, 30, date(2026, 2, 23), date(2026, 2, 27))
    assert past["total"] == 0
    with pytest.raises(ValidationFailed) as caught:
        slots.search(b.praxis, b.clinic_id, [], 3, date(2026, 3, 5), date(2026, 3, 1))
    assert {e.field for e in caught.value.errors} == {"doctor_id", "duration", "to"}


def test_twenty_doctors_thirty_days_counts_every_slot_and_pages(praxis) -> None:  # noqa: ANN001
    # Speed is measured by bench/free_slots.py, not here: this checks the large search is complete and paged.
    big = build_clinic(praxis, name="Big", country="HU", tz="Europe/Budapest", locale="hu", doctors=20, rooms=10)
    first, last = date(2026, 3, 2), date(2026, 3, 31)
    result = slots.search(praxis, big.clinic_id, big.doctors, 30, first, last, limit=100)
    assert result["total"] > 10000
    assert len(result["slots"] if "slots" in result else result["items"]) == 100
