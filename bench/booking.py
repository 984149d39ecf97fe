"""Benchmark: concurrent booking on PostgreSQL through the scheduling service.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/booking.py \\
        [--clients 50] [--procs 4] [--attempts 3000] [--doctors 20] [--timeout 60] [--hot] \\
        [--rate 300 | --cpu [--cprofile FILE]]

Creates a scratch database (dropped afterwards), a clinic with 20 doctors (Mon-Sat 08:00-20:00, lunch
break) and 10 chairs (one per two doctors, so room conflicts happen too). ``--clients`` clients, spread
over ``--procs`` worker processes (threads inside each; one process alone is capped by the GIL and
measured its own client side, see stack.md 7c) and released together, each book 30-minute appointments
at random grid times (15-minute steps, so many attempts overlap) over the next 20 working days until
``--attempts`` is reached or ``--timeout`` passes. Every attempt is one full transaction through
``core.scheduling.appointments.create``: validation, working-hours check, overlap query, insert, history
row, audit entry, event and message planning. Prints attempts/s, bookings/s, p50/p95/p99 latency of an
attempt, double bookings found afterwards by a self-join (must be 0) and the audit journal's verification
(must be intact). With ``--hot`` every client books the same doctor (worst-case contention).

Two ways to load the system:

* **Closed loop** (default): each client starts its next attempt as soon as the previous one ends (no think
  time). This measures the maximum throughput, but by Little's law the mean latency is then simply
  clients / throughput (50 clients at 300 attempts/s wait 167 ms on average), so it cannot show whether
  a latency goal is met at a given load.
* **Open loop** (``--rate R``): the clients issue attempts on a fixed schedule totalling R attempts/s
  (attempt i is due at start + i/R and goes to client i mod clients, so each client has its own timetable).
  A client still busy when its next attempt is due starts it late, and latency is measured from the time
  the attempt was *due*, not from when it started, so queueing counts (no coordinated omission: a stalled
  system cannot hide its backlog by issuing fewer requests). Attempts not started by ``--timeout`` count
  as missed. This is the mode for "p95 at R bookings/s".

``--cpu`` measures instead, in this one process: the process CPU time and the SQL statements per attempt
of ``--attempts`` bookings made by ``--clients`` threads (1: a single client; more: with contention), with
``--cprofile FILE`` writing a cProfile of them (timed in thread CPU time). The machine is shared: CPU time
and statement counts vary far less with other load than wall-clock figures.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from _scheduling_setup import attach_praxis, build, percentile, scratch_praxis

TZ = ZoneInfo("Europe/Budapest")
START_DAY = date(2030, 1, 7)  # a Monday, far from holidays
DAYS = [START_DAY + timedelta(days=i) for i in range(28) if (START_DAY + timedelta(days=i)).weekday() < 6]
GRID = [(h, m) for h in list(range(8, 12)) + list(range(13, 20)) for m in (0, 15, 30, 45)
        if not (h == 11 and m == 45) and not (h == 19 and m == 45)]


def _values(rnd: random.Random, doctors: list[int], hot: bool) -> dict[str, Any]:
    doctor = doctors[0] if hot else rnd.choice(doctors)
    day = rnd.choice(DAYS[:5] if hot else DAYS)
    hh, mm = rnd.choice(GRID)
    start = datetime(day.year, day.month, day.day, hh, mm, tzinfo=TZ).astimezone(UTC)
    return {"doctor_id": doctor, "start_at": start, "end_at": start + timedelta(minutes=30),
            "new_patient_name": "Bench Patient", "new_patient_phone": "+36301234567"}


def _attempt(praxis: Any, clinic_id: int, values: dict[str, Any], caller: Any) -> str:
    from core.scheduling import appointments as ap
    from core.scheduling.errors import Conflict

    try:
        ap.create(praxis, clinic_id, values, caller)
        return "booked"
    except Conflict:
        return "conflict"
    except Exception as exc:  # noqa: BLE001  (counted and shown, never hidden)
        print("error:", type(exc).__name__, exc, flush=True)
        return "error"


def _warm(praxis: Any, clinic_id: int, doctors: list[int], caller: Any, index: int) -> None:
    """Connections and the set-up cache, on a day outside the measured range."""
    warm = datetime(2030, 3, 4, 8, 0, tzinfo=TZ).astimezone(UTC)
    for i, doctor in enumerate(doctors[:2]):
        at = warm + timedelta(days=7 * index + i)
        _attempt(praxis, clinic_id, {"doctor_id": doctor, "start_at": at, "end_at": at + timedelta(minutes=30),
                                     "new_patient_name": "Warm", "new_patient_phone": "+36301234567"}, caller)


def _worker(index: int, clients: int, job: dict[str, Any], counter: Any, barrier: Any, start: Any,
            results: Any) -> None:
    """One process: ``clients`` threads, booking until the attempts or the deadline run out (closed loop),
    or each on its own timetable (open loop, ``job["rate"]``)."""
    from core.audit import Actor
    from core.scheduling import appointments as ap

    praxis = attach_praxis(**job["praxis"], pool_size=clients, max_overflow=2)
    caller = ap.Caller(Actor(None, "bench"))
    doctors, hot, rate, total = job["doctors"], job["hot"], job["rate"], job["attempts"]
    _warm(praxis, job["clinic_id"], doctors, caller, index)
    latencies: list[float] = []
    service: list[float] = []  # open loop: from the actual start (the part the system spent on it)
    counts = {"booked": 0, "conflict": 0, "error": 0, "missed": 0}
    lock = threading.Lock()
    local_barrier = threading.Barrier(clients + 1)

    def finish(outcome: str, latency: float | None, took: float | None = None) -> None:
        with lock:
            counts[outcome] += 1
            if latency is not None:
                latencies.append(latency)
            if took is not None:
                service.append(took)

    def closed(seed: int) -> None:
        rnd = random.Random(seed)
        local_barrier.wait()
        while time.time() < start.value + job["timeout"]:
            with counter.get_lock():
                if counter.value >= total:
                    return
                counter.value += 1
            values = _values(rnd, doctors, hot)
            began = time.perf_counter()
            outcome = _attempt(praxis, job["clinic_id"], values, caller)
            finish(outcome, time.perf_counter() - began)

    def open_loop(seed: int, client: int) -> None:
        rnd = random.Random(seed)
        local_barrier.wait()
        # wall-clock schedule shared by all processes; perf_counter for the waits and the measurements
        origin = time.perf_counter() - (time.time() - start.value)
        for i in range(client, total, job["clients"]):
            due = origin + i / rate
            values = _values(rnd, doctors, hot)
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            if time.perf_counter() > origin + job["timeout"]:
                finish("missed", None)
                continue
            began = time.perf_counter()
            outcome = _attempt(praxis, job["clinic_id"], values, caller)
            ended = time.perf_counter()
            finish(outcome, ended - due, ended - began)

    first = job["first_client"][index]
    threads = [threading.Thread(target=open_loop if rate else closed,
                                args=(index * 1000 + i, first + i) if rate else (index * 1000 + i,))
               for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()  # every process ready
    barrier.wait()  # the start time is set
    local_barrier.wait()
    for t in threads:
        t.join()
    results.put((latencies, service, counts))
    praxis.close()


def _cpu(praxis: Any, clinic_id: int, doctors: list[int], args: argparse.Namespace) -> None:
    """CPU time and statements per attempt in this process (see the module's docstring)."""
    import cProfile
    import pstats

    from sqlalchemy import event

    from core.audit import Actor
    from core.scheduling import appointments as ap

    caller = ap.Caller(Actor(None, "bench"))
    _warm(praxis, clinic_id, doctors, caller, 0)
    statements: Counter[str] = Counter()

    @event.listens_for(praxis.engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements[" ".join(statement.split())[:90]] += 1

    counter = iter(range(args.attempts))
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    profiles: list[cProfile.Profile] = []

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        # one profile per thread (cProfile sees only its own), timed in thread CPU time: waits do not count
        profile = cProfile.Profile(time.thread_time) if args.cprofile else None
        if profile:
            profile.enable()
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            outcome = _attempt(praxis, clinic_id, _values(rnd, doctors, args.hot), caller)
            with lock:
                counts[outcome] += 1
        if profile:
            profile.disable()
            with lock:
                profiles.append(profile)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    cpu, wall = time.process_time(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiles:
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(args.cprofile)
    n, booked = sum(counts.values()), counts["booked"]
    print(f"database: {praxis.engine.dialect.name}, one process, {args.clients} client thread(s), "
          f"load average {os.getloadavg()[0]:.1f}{' (profiled)' if profiles else ''}")
    print(f"attempts: {n} ({booked} booked, {counts['conflict']} conflicts, {counts['error']} errors) in "
          f"{wall:.2f} s")
    print(f"CPU per attempt: {cpu / n * 1000:.2f} ms; statements per attempt: {statements.total() / n:.2f}, "
          f"per booking: {statements.total() / max(booked, 1):.2f} (BEGIN and COMMIT not counted)")
    for statement, count in statements.most_common(12):
        print(f"  {count / n:5.2f}  {statement}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--procs", type=int, default=4, help="worker processes sharing the clients")
    parser.add_argument("--attempts", type=int, default=3000)
    parser.add_argument("--doctors", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--hot", action="store_true", help="all clients book one doctor")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="open loop: attempts per second offered by all clients together")
    parser.add_argument("--cpu", action="store_true", help="CPU and statements per attempt, in one process")
    parser.add_argument("--cprofile", default="", help="with --cpu: write a cProfile of the attempts here")
    args = parser.parse_args()

    from sqlalchemy import text
    from sqlmodel import Session

    from core.audit import verify

    with scratch_praxis(args.url) as praxis:
        setup = build(praxis, args.doctors, max(1, args.doctors // 2))
        if args.cpu:
            _cpu(praxis, setup.clinic_id, setup.doctors, args)
        else:
            _run(praxis, setup, args)
        with praxis.engine.connect() as conn:
            doubles = conn.execute(text(
                "SELECT count(*) FROM core_appointment a JOIN core_appointment b ON a.id < b.id "
                "AND a.clinic_id = b.clinic_id AND a.active AND b.active "
                "AND (a.doctor_id = b.doctor_id OR a.room_id = b.room_id) "
                "AND a.start_at < b.end_at AND b.start_at < a.end_at")).scalar_one()
            stored = conn.execute(text("SELECT count(*) FROM core_appointment WHERE new_patient_name = 'Bench Patient'"
                                       )).scalar_one()
            entries = conn.execute(text("SELECT count(*) FROM core_audit")).scalar_one()
        with Session(praxis.engine) as session:
            breaks = verify(session)
        print(f"rows stored: {stored}; double bookings: {doubles}; audit journal: {entries} entries, "
              f"{'intact' if not breaks else f'{len(breaks)} PROBLEMS, first: {breaks[0]}'}")


def _run(praxis: Any, setup: Any, args: argparse.Namespace) -> None:
    procs = max(1, min(args.procs, args.clients))
    ctx = mp.get_context("spawn")
    counter = ctx.Value("i", 0)
    start = ctx.Value("d", 0.0)
    barrier = ctx.Barrier(procs + 1)
    results = ctx.Queue()
    shares = [args.clients // procs + (1 if i < args.clients % procs else 0) for i in range(procs)]
    job = {"praxis": praxis.bench_settings, "clinic_id": setup.clinic_id, "doctors": setup.doctors,
           "hot": args.hot, "attempts": args.attempts, "timeout": args.timeout, "rate": args.rate,
           "clients": args.clients, "first_client": [sum(shares[:i]) for i in range(procs)]}
    workers = [ctx.Process(target=_worker, args=(i, shares[i], job, counter, barrier, start, results))
               for i in range(procs)]
    for w in workers:
        w.start()
    barrier.wait()
    start.value = time.time() + 0.05
    barrier.wait()
    time.sleep(max(0.0, start.value - time.time()))
    began = time.perf_counter()
    latencies: list[float] = []
    service: list[float] = []
    counts = {"booked": 0, "conflict": 0, "error": 0, "missed": 0}
    for _ in workers:
        got, took, part = results.get()
        latencies.extend(got)
        service.extend(took)
        for key, value in part.items():
            counts[key] += value
    wall = time.perf_counter() - began
    for w in workers:
        w.join()
    attempts = counts["booked"] + counts["conflict"] + counts["error"]
    mode = f"open loop, {args.rate:g} attempts/s offered" if args.rate else "closed loop"
    print(f"database: {praxis.engine.dialect.name}, {mode}, clients: {args.clients} in {procs} processes, "
          f"doctors: {args.doctors}{' (hot: one doctor)' if args.hot else ''}, "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"attempts: {attempts} in {wall:.2f} s -> {attempts / wall:.0f} attempts/s"
          + (f"; missed (not started by --timeout): {counts['missed']}" if args.rate else ""))
    print(f"booked: {counts['booked']} ({counts['booked'] / wall:.0f} bookings/s), conflicts (409): "
          f"{counts['conflict']}, errors: {counts['error']}")
    since = " from the time it was due" if args.rate else ""
    print(f"latency per attempt{since}: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
          f"p95 {percentile(latencies, 95) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms")
    if args.rate:
        print(f"service time (from its actual start): p50 {percentile(service, 50) * 1000:.1f} ms, "
              f"p95 {percentile(service, 95) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
