"""Benchmark: concurrent booking on PostgreSQL through the scheduling service.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/booking.py \\
        [--clients 50] [--procs 4] [--attempts 3000] [--doctors 20] [--timeout 60] [--hot]

Creates a scratch database (dropped afterwards), a clinic with 20 doctors (Mon-Sat 08:00-20:00, lunch
break) and 10 chairs (one per two doctors, so room conflicts happen too). ``--clients`` clients, spread
over ``--procs`` worker processes (threads inside each; one process alone is capped by the GIL and
measured its own client side, see stack.md 7c) and released together, each book 30-minute appointments
at random grid times (15-minute steps, so many attempts overlap) over the next 20 working days until
``--attempts`` is reached or ``--timeout`` passes. Every attempt is one full transaction through
``core.scheduling.appointments.create``: validation, working-hours check, per-doctor/per-room lock,
overlap query, insert, history row, audit entry, event and message planning. Prints bookings/s,
attempts/s, p50/p95/p99 latency of an attempt and double bookings found afterwards by a self-join
(must be 0). With ``--hot`` every client books the same doctor (worst-case contention).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from _scheduling_setup import attach_praxis, build, percentile, scratch_praxis


def _worker(index: int, clients: int, job: dict[str, Any], counter: Any, barrier: Any, results: Any) -> None:
    """One process: ``clients`` threads booking until the shared attempt counter or the deadline runs out."""
    from core.audit import Actor
    from core.scheduling import appointments as ap
    from core.scheduling.errors import Conflict

    praxis = attach_praxis(**job["praxis"], pool_size=clients, max_overflow=2)
    tz = ZoneInfo("Europe/Budapest")
    start_day = date(2030, 1, 7)  # a Monday, far from holidays
    days = [start_day + timedelta(days=i) for i in range(28) if (start_day + timedelta(days=i)).weekday() < 6]
    grid = [(h, m) for h in list(range(8, 12)) + list(range(13, 20)) for m in (0, 15, 30, 45)
            if not (h == 11 and m == 45) and not (h == 19 and m == 45)]
    caller = ap.Caller(Actor(None, "bench"))
    doctors, hot = job["doctors"], job["hot"]
    latencies: list[float] = []
    counts = {"booked": 0, "conflict": 0, "error": 0}
    lock = threading.Lock()
    # warm this process (connections, set-up cache) on a day outside the measured range
    warm = datetime(2030, 3, 4, 8, 0, tzinfo=tz).astimezone(UTC)
    for i, doctor in enumerate(doctors[:2]):
        try:
            ap.create(praxis, job["clinic_id"], {"doctor_id": doctor, "start_at": warm + timedelta(days=7 * index + i),
                                                 "end_at": warm + timedelta(days=7 * index + i, minutes=30),
                                                 "new_patient_name": "Warm", "new_patient_phone": "+36301234567"},
                      caller)
        except Conflict:
            pass
    local_barrier = threading.Barrier(clients + 1)

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        local_barrier.wait()
        while time.time() < job["deadline_after_start"] + job_start[0]:
            with counter.get_lock():
                if counter.value >= job["attempts"]:
                    return
                counter.value += 1
            doctor = doctors[0] if hot else rnd.choice(doctors)
            day = rnd.choice(days[:5] if hot else days)
            hh, mm = rnd.choice(grid)
            start = datetime(day.year, day.month, day.day, hh, mm, tzinfo=tz).astimezone(UTC)
            values = {"doctor_id": doctor, "start_at": start, "end_at": start + timedelta(minutes=30),
                      "new_patient_name": "Bench Patient", "new_patient_phone": "+36301234567"}
            began = time.perf_counter()
            try:
                ap.create(praxis, job["clinic_id"], values, caller)
                outcome = "booked"
            except Conflict:
                outcome = "conflict"
            except Exception as exc:  # noqa: BLE001  (counted and shown, never hidden)
                outcome = "error"
                print("error:", type(exc).__name__, exc, flush=True)
            elapsed = time.perf_counter() - began
            with lock:
                counts[outcome] += 1
                latencies.append(elapsed)

    job_start = [0.0]
    threads = [threading.Thread(target=client, args=(index * 1000 + i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()  # every process ready
    job_start[0] = time.time()
    local_barrier.wait()
    for t in threads:
        t.join()
    results.put((latencies, counts))
    praxis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--procs", type=int, default=4, help="worker processes sharing the clients")
    parser.add_argument("--attempts", type=int, default=3000)
    parser.add_argument("--doctors", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--hot", action="store_true", help="all clients book one doctor")
    args = parser.parse_args()

    from sqlalchemy import text

    with scratch_praxis(args.url) as praxis:
        setup = build(praxis, args.doctors, max(1, args.doctors // 2))
        procs = max(1, min(args.procs, args.clients))
        ctx = mp.get_context("spawn")
        counter = ctx.Value("i", 0)
        barrier = ctx.Barrier(procs + 1)
        results = ctx.Queue()
        job = {"praxis": praxis.bench_settings, "clinic_id": setup.clinic_id, "doctors": setup.doctors,
               "hot": args.hot, "attempts": args.attempts, "deadline_after_start": args.timeout}
        shares = [args.clients // procs + (1 if i < args.clients % procs else 0) for i in range(procs)]
        workers = [ctx.Process(target=_worker, args=(i, shares[i], job, counter, barrier, results))
                   for i in range(procs)]
        for w in workers:
            w.start()
        barrier.wait()
        began = time.perf_counter()
        latencies: list[float] = []
        counts = {"booked": 0, "conflict": 0, "error": 0}
        for _ in workers:
            got, part = results.get()
            latencies.extend(got)
            for key, value in part.items():
                counts[key] += value
        wall = time.perf_counter() - began
        for w in workers:
            w.join()
        with praxis.engine.connect() as conn:
            doubles = conn.execute(text(
                "SELECT count(*) FROM core_appointment a JOIN core_appointment b ON a.id < b.id "
                "AND a.clinic_id = b.clinic_id AND a.active AND b.active "
                "AND (a.doctor_id = b.doctor_id OR a.room_id = b.room_id) "
                "AND a.start_at < b.end_at AND b.start_at < a.end_at")).scalar_one()
            stored = conn.execute(text("SELECT count(*) FROM core_appointment WHERE new_patient_name = 'Bench Patient'"
                                       )).scalar_one()
        attempts = sum(counts.values())
        print(f"database: {praxis.engine.dialect.name}, clients: {args.clients} in {procs} processes, "
              f"doctors: {args.doctors}{' (hot: one doctor)' if args.hot else ''}")
        print(f"attempts: {attempts} in {wall:.2f} s -> {attempts / wall:.0f} attempts/s")
        print(f"booked: {counts['booked']} ({counts['booked'] / wall:.0f} bookings/s), conflicts (409): "
              f"{counts['conflict']}, errors: {counts['error']}, rows stored: {stored}")
        print(f"latency per attempt: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
              f"p95 {percentile(latencies, 95) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms")
        print(f"double bookings: {doubles}")


if __name__ == "__main__":
    main()
