"""Benchmark: free-slot search for 20 doctors over 30 days.

    .venv/bin/python bench/free_slots.py [--url postgresql://postgres@127.0.0.1:5432/postgres] [--runs 50]

Builds a clinic with 20 doctors (Mon-Sat 08:00-20:00 with a lunch break, a room each per two doctors),
about 12 appointments per doctor per working day, a few days off and exceptions, then times
``core.scheduling.slots.search`` (first page of 100, database reads included: the clinic with its set-up
generation, then the busy intervals) and the in-memory part of it separately (working time, free pieces,
count and first page, page rendered). Prints min, median and p95 over ``--runs`` runs, with the process CPU
time of the search (the machine is shared: CPU time varies less than wall time under load), and the number
of slots found. SQLite by default; on PostgreSQL the tables are analysed after loading, as autovacuum would.
"""

from __future__ import annotations

import argparse
import random
import time as timer
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from _scheduling_setup import build, percentile, scratch_praxis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument("--doctors", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    from core.audit import Actor
    from core.clock import set_clock
    from core.db import transaction
    from core.models.appointment import Appointment
    from core.scheduling import schedules, slots
    from core.scheduling.calendar import ClinicCalendar

    first = date(2030, 1, 7)
    last = first + timedelta(days=args.days - 1)
    set_clock(lambda: datetime(2030, 1, 6, tzinfo=UTC))
    with scratch_praxis(args.url) as praxis:
        setup = build(praxis, args.doctors, max(1, args.doctors // 2))
        tz = ZoneInfo("Europe/Budapest")
        rnd = random.Random(7)
        actor = Actor(None, "bench")
        schedules.add_day(praxis.engine, setup.clinic_id, first + timedelta(days=10), True, "training", actor)
        for doctor in setup.doctors[:5]:
            schedules.add_exception(praxis.engine, setup.clinic_id, doctor,
                                    {"day": first + timedelta(days=3), "kind": "off"}, actor)
        # ~12 appointments per doctor per working day, written directly (the booking path is bench/booking.py)
        rows = 0
        with transaction(praxis.engine) as session:
            for doctor in setup.doctors:
                for i in range(args.days):
                    day = first + timedelta(days=i)
                    if day.weekday() == 6:
                        continue
                    for slot in sorted(rnd.sample(range(22), 12)):  # 22 half hours from 08:00 to 20:00 minus lunch
                        hh, mm = divmod(8 * 60 + slot * 30 + (60 if slot >= 8 else 0), 60)
                        if hh >= 20:
                            continue
                        start = datetime.combine(day, time(hh, mm), tzinfo=tz).astimezone(UTC)
                        session.add(Appointment(clinic_id=setup.clinic_id, doctor_id=doctor, start_at=start,
                                                end_at=start + timedelta(minutes=30), new_patient_name="Bench",
                                                new_patient_phone="+36301234567", is_new_patient=True))
                        rows += 1
        if praxis.engine.dialect.name == "postgresql":
            with praxis.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        for _ in range(3):
            slots.search(praxis, setup.clinic_id, setup.doctors, 30, first, last, limit=100)
        full, cpu, compute = [], [], []
        found = 0
        for _ in range(args.runs):
            began, began_cpu = timer.perf_counter(), timer.process_time()
            result = slots.search(praxis, setup.clinic_id, setup.doctors, 30, first, last, limit=100)
            full.append(timer.perf_counter() - began)
            cpu.append(timer.process_time() - began_cpu)
            found = result["total"]
        with transaction(praxis.engine) as session:
            from core.models.clinic import Clinic

            clinic = session.get(Clinic, setup.clinic_id)
            calendar = ClinicCalendar.load(session, clinic, setup.doctors, first, last)
            taken = slots.busy(session, setup.clinic_id, setup.doctors,
                               datetime.combine(first, time(), tzinfo=tz), datetime.combine(last, time(23), tzinfo=tz))
        by_doctor: dict[int, list] = {}
        for doctor_id, _room, start_at, end_at in taken:
            by_doctor.setdefault(doctor_id, []).append((start_at, end_at))
        for _ in range(args.runs):
            began = timer.perf_counter()
            fresh = ClinicCalendar(calendar.clinic, calendar.tz, calendar.hours, calendar.days, calendar.templates,
                                   calendar.exceptions, calendar.weekly_breaks, calendar.dated_breaks)
            total, page = slots.find(fresh, {d: slots._Busy(v) for d, v in by_doctor.items()}, {}, setup.doctors,
                                     1800, first, last, 900, 0, None, 100)
            slots.render(page, calendar.tz)
            compute.append(timer.perf_counter() - began)
            assert total == found
        print(f"database: {praxis.engine.dialect.name}; {args.doctors} doctors x {args.days} days, "
              f"{rows} appointments; {found} free 30-minute slots (15-minute grid)")
        for label, values in (("search (queries + compute)", full), ("  its CPU time", cpu),
                              ("in-memory compute only", compute)):
            print(f"{label:27} min {min(values) * 1000:.1f} ms, median {percentile(values, 50) * 1000:.1f} ms, "
                  f"p95 {percentile(values, 95) * 1000:.1f} ms")
    set_clock(None)


if __name__ == "__main__":
    main()
