"""Benchmark: concurrent booking on PostgreSQL through the scheduling service.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/booking.py \
        [--clients 50] [--attempts 3000] [--doctors 20] [--timeout 60]

Creates a scratch database (dropped afterwards), a clinic with 20 doctors (Mon-Sat 08:00-20:00, lunch
break) and 10 chairs (one per two doctors, so room conflicts happen too). ``--clients`` threads, released
together, each book 30-minute appointments at random grid times (15-minute steps, so many attempts
overlap) over the next 20 working days until ``--attempts`` is reached or ``--timeout`` passes. Every
attempt is one full transaction: validation, working-hours check, per-doctor/per-room lock, overlap query,
insert, history row, audit entry. Prints bookings/s, attempts/s, p50/p95/p99 latency of an attempt and
double bookings found afterwards by a self-join (must be 0). With ``--hot`` every client books the same
doctor (worst-case contention).
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from _scheduling_setup import build, percentile, scratch_praxis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=3000)
    parser.add_argument("--doctors", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--hot", action="store_true", help="all clients book one doctor")
    args = parser.parse_args()

    from sqlalchemy import text

    from core.audit import Actor
    from core.scheduling import appointments as ap
    from core.scheduling.errors import Conflict

    with scratch_praxis(args.url) as praxis:
        praxis.engine.dispose()
        from core.db import make_engine

        praxis.engine = make_engine(str(praxis.engine.url.render_as_string(hide_password=False)),
                                    pool_size=args.clients, max_overflow=10)
        setup = build(praxis, args.doctors, max(1, args.doctors // 2))
        tz = ZoneInfo("Europe/Budapest")
        start_day = date(2030, 1, 7)  # a Monday, far from holidays
        days = [start_day + timedelta(days=i) for i in range(28) if (start_day + timedelta(days=i)).weekday() < 6]
        grid = [(h, m) for h in list(range(8, 12)) + list(range(13, 20)) for m in (0, 15, 30, 45)
                if not (h == 11 and m == 45) and not (h == 19 and m == 45)]
        caller = ap.Caller(Actor(None, "bench"))
        latencies: list[float] = []
        counts = {"booked": 0, "conflict": 0, "error": 0}
        lock = threading.Lock()
        issued = 0
        deadline = time.monotonic() + args.timeout
        barrier = threading.Barrier(args.clients + 1)

        def client(seed: int) -> None:
            nonlocal issued
            rnd = random.Random(seed)
            barrier.wait()
            while time.monotonic() < deadline:
                with lock:
                    if issued >= args.attempts:
                        return
                    issued += 1
                doctor = setup.doctors[0] if args.hot else rnd.choice(setup.doctors)
                day = rnd.choice(days[:5] if args.hot else days)
                hh, mm = rnd.choice(grid)
                start = datetime(day.year, day.month, day.day, hh, mm, tzinfo=tz).astimezone(UTC)
                values = {"doctor_id": doctor, "start_at": start, "end_at": start + timedelta(minutes=30),
                          "new_patient_name": "Bench Patient", "new_patient_phone": "+36301234567"}
                began = time.perf_counter()
                try:
                    ap.create(praxis, setup.clinic_id, values, caller)
                    outcome = "booked"
                except Conflict:
                    outcome = "conflict"
                except Exception as exc:  # noqa: BLE001  (counted and shown, never hidden)
                    outcome = "error"
                    print("error:", type(exc).__name__, exc)
                elapsed = time.perf_counter() - began
                with lock:
                    counts[outcome] += 1
                    latencies.append(elapsed)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        barrier.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        with praxis.engine.connect() as conn:
            doubles = conn.execute(text(
                "SELECT count(*) FROM core_appointment a JOIN core_appointment b ON a.id < b.id "
                "AND a.clinic_id = b.clinic_id AND a.active AND b.active "
                "AND (a.doctor_id = b.doctor_id OR a.room_id = b.room_id) "
                "AND a.start_at < b.end_at AND b.start_at < a.end_at")).scalar_one()
            stored = conn.execute(text("SELECT count(*) FROM core_appointment")).scalar_one()
        attempts = sum(counts.values())
        print(f"database: {praxis.engine.dialect.name}, clients: {args.clients}, doctors: {args.doctors}"
              f"{' (hot: one doctor)' if args.hot else ''}")
        print(f"attempts: {attempts} in {wall:.2f} s -> {attempts / wall:.0f} attempts/s")
        print(f"booked: {counts['booked']} ({counts['booked'] / wall:.0f} bookings/s), conflicts (409): "
              f"{counts['conflict']}, errors: {counts['error']}, rows stored: {stored}")
        print(f"latency per attempt: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
              f"p95 {percentile(latencies, 95) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms")
        print(f"double bookings: {doubles}")


if __name__ == "__main__":
    main()
