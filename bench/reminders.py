"""Benchmark: plan reminders for 100,000 appointments, then send 10,000 messages to a fake SMS vendor with 4
worker processes.

    .venv/bin/python bench/reminders.py                      # SQLite in a scratch folder
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/reminders.py
    .venv/bin/python bench/reminders.py --plan-only --profile 30   # planning alone, with its cProfile top 30

1. Planning: one clinic, 20,000 patients with mobile numbers, 100,000 future appointments (bulk-inserted),
   then a "day before at 18:00" rule is created through the messaging service: in one transaction it plans a
   message plus its outbox item for every appointment (recipients and address checks, quiet hours, dedupe keys;
   texts are written when messages go out). Timed: wall clock, and this process's CPU time (on PostgreSQL the
   server's share is the difference, less waiting). ``--no-overlap`` plans PostgreSQL's batches one after the
   other instead of inserting one while building the next.
2. Sending: a manual sending to 10,000 patients (timed: the batch's planning), then 4 worker processes deliver
   them to a fake vendor (``plugin_sdk.testing.FakeServer`` on loopback, in this process) through this module's
   SMS provider. Timed from "go" until every message is recorded as sent; the vendor must have received each
   message exactly once.

On PostgreSQL a scratch database is created next to the one DATABASE_URL names and dropped afterwards. This
module is also the plugin the workers load (entry point ``bench.reminders``). Bounded by --timeout.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import multiprocessing
import os
import pstats
import secrets
import socket
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from plugin_sdk import (  # noqa: E402
    Category,
    PermanentError,
    PluginManifest,
    RetryableError,
    UnknownOutcomeError,
    hookimpl,
)
from plugin_sdk.providers import DeliveryStatus, MessagingProvider, OutgoingMessage, SendResult  # noqa: E402


class BenchSmsSettings(BaseModel):
    endpoint: str = "http://127.0.0.1:9"


manifest = PluginManifest(name="bench_sms", version="1.0.0", title="Bench SMS", description="Fake SMS vendor.",
                          category=Category.messaging, api=">=1.0,<2", settings=BenchSmsSettings)

# Shared by every thread (httpx clients are thread-safe): one SSL context. TCP_NODELAY: httpx writes the headers
# and the body separately, and Nagle + delayed ACK would add 40 ms to every request on loopback.
_http = httpx.Client(timeout=10.0, transport=httpx.HTTPTransport(
    socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]))


class BenchSms(MessagingProvider):
    channel = "sms"
    deduplicates = True

    def send(self, ctx: Any, message: OutgoingMessage) -> SendResult:
        try:
            response = _http.post(f"{ctx.settings.endpoint}/sms", json={"to": message.to, "text": message.body},
                                   headers={"Idempotency-Key": message.idempotency_key})
        except httpx.ConnectError as exc:
            raise RetryableError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UnknownOutcomeError(str(exc)) from exc
        if response.status_code >= 500:
            raise RetryableError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"HTTP {response.status_code}: {response.text[:200]}")
        return SendResult(DeliveryStatus.sent, response.json()["id"])


PROVIDER = BenchSms()


@hookimpl
def praxis_messaging_providers() -> list[MessagingProvider]:
    return [PROVIDER]


def _entry_point() -> Any:
    from importlib.metadata import EntryPoint

    return EntryPoint(name="bench_sms", value="bench.reminders", group="praxis.plugins")


def _vendor() -> Any:
    from plugin_sdk.testing import FakeServer

    class Vendor(FakeServer):
        def __init__(self) -> None:
            self.keys: dict[str, str] = {}
            self.lock = threading.Lock()
            super().__init__()

        def build_app(self) -> Any:
            app = FastAPI()

            @app.post("/sms")
            async def sms(request: Request) -> dict[str, str]:
                key = request.headers.get("idempotency-key", "")
                await request.body()
                with self.lock:
                    if key in self.keys:
                        return {"id": self.keys[key]}
                    self.keys[key] = vendor_id = f"V{len(self.keys) + 1}"
                self.record_effect(key)
                return {"id": vendor_id}

            return app

    return Vendor()


def _no_delay(vendor: Any) -> None:
    """Accepted connections inherit TCP_NODELAY from the listening socket (Linux): uvicorn writes a response's
    head and body separately, and Nagle + delayed ACK would add 40 ms to every answer on loopback."""
    listening = getattr(vendor, "_socket", None)
    if listening is not None:
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _settings(url: str, key: str, data_dir: str) -> Any:
    from core.config import Settings

    return Settings(database_url=url, master_key=key, data_dir=Path(data_dir),
                    plugins_file=Path(data_dir) / "plugins.toml", embedded_worker=False, state_refresh_seconds=2.0)


def _worker(url: str, key: str, data_dir: str, name: str, ready: Any, go: Any, done: Any) -> None:
    import logging

    from core.app_context import bootstrap
    from core.outbox.worker import Worker

    logging.basicConfig(level=logging.ERROR)
    praxis = bootstrap(_settings(url, key, data_dir), entry_points=[_entry_point()], migrate=False)
    worker = Worker(praxis, name=name, batch_size=50)
    worker.scheduler.jobs = []
    worker._next_purge = float("inf")
    ready.release()
    go.wait()
    handled = 0
    idle_since = None
    while True:
        got = worker.run_once()
        handled += got
        if got:
            idle_since = None
            continue
        idle_since = idle_since or time.monotonic()
        if time.monotonic() - idle_since > 0.5:
            break
    done.put(handled)
    praxis.close()


def _fill(praxis: Any, clinic_id: int, doctor_id: int, patients: int, appointments: int) -> list[uuid.UUID]:
    """Bulk-insert patients with mobile numbers and future appointments (the appointment book's own
    checks are not what is measured here)."""
    from datetime import date

    from sqlalchemy import insert

    from core.clock import now
    from core.db import transaction
    from core.models.appointment import Appointment
    from core.models.patient import Patient, PatientPhone

    at = now()
    ids = [uuid.uuid4() for _ in range(patients)]
    people = [{"id": pid, "clinic_id": clinic_id, "chart_number": f"B{i:07d}", "family_name": f"Teszt{i}",
               "given_name": "Anna", "name_key": f"teszt{i} anna", "birth_date": date(1980, 1 + i % 12, 1 + i % 28),
               "sex": "female", "address": "", "preferred_channel": "sms", "vip": False, "notes": "", "tags": [],
               "status": "active", "created_at": at, "updated_at": at, "version": 1}
              for i, pid in enumerate(ids)]
    phones = [{"id": uuid.uuid4(), "clinic_id": clinic_id, "patient_id": pid, "e164": f"+3630{1000000 + i:07d}",
               "kind": "mobile", "digits": f"3630{1000000 + i:07d}", "position": 0} for i, pid in enumerate(ids)]
    start = (at + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    appts = [{"clinic_id": clinic_id, "patient_id": ids[i % patients], "doctor_id": doctor_id,
              "start_at": start + timedelta(minutes=15 * i), "end_at": start + timedelta(minutes=15 * i + 15),
              "services": [], "notes": "", "status": "booked", "status_changed_at": at, "is_new_patient": False,
              "cancel_note": "", "delete_reason": "", "pin_note": "", "overbooked": True, "active": True,
              "version": 1, "created_at": at, "updated_at": at} for i in range(appointments)]
    with transaction(praxis.engine) as session:
        for table, rows in ((Patient, people), (PatientPhone, phones), (Appointment, appts)):
            for offset in range(0, len(rows), 5000):
                session.execute(insert(table), rows[offset:offset + 5000])
    return ids


def _status_counts(praxis: Any) -> dict[str, int]:
    from sqlmodel import Session, func, select

    from core.models.messaging import Message

    with Session(praxis.engine) as session:
        return dict(session.exec(select(Message.status, func.count()).where(Message.batch_id.is_not(None))  # type: ignore[union-attr]
                                 .group_by(Message.status)).all())


def run(url: str, *, patients: int, appointments: int, messages: int, workers: int, timeout: float,
        plan_only: bool = False, profile: int = 0, overlap: bool = True) -> None:
    from core.app_context import bootstrap
    from core.audit import Actor
    from core.db import transaction
    from core.messaging import service
    from core.messaging.schemas import RuleIn, SendIn, TemplateIn
    from core.models.auth import User
    from core.models.clinic import Clinic

    actor = Actor(None, "bench")
    key = f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    with tempfile.TemporaryDirectory() as data_dir, _vendor() as vendor:
        url = url or f"sqlite:///{data_dir}/bench.db"
        _no_delay(vendor)
        praxis = bootstrap(_settings(url, key, data_dir), entry_points=[_entry_point()])
        with transaction(praxis.engine) as session:
            clinic = Clinic(name="Bench", country="HU", timezone="Europe/Budapest", locale="hu")
            session.add(clinic)
            session.flush()
            praxis.plugins.seed(session, clinic)
            doctor = User(login=f"doc{uuid.uuid4().hex[:6]}", name="Dr. Bench")
            session.add(doctor)
            session.flush()
            clinic_id, doctor_id = clinic.id, doctor.id
        praxis.runtime.state.invalidate()
        praxis.plugins.enable(clinic_id, "bench_sms", actor)
        praxis.plugins.configure(clinic_id, "bench_sms", {"endpoint": vendor.base_url}, actor)
        started = time.perf_counter()
        ids = _fill(praxis, clinic_id, doctor_id, patients, appointments)
        print(f"set-up: {patients:,} patients and {appointments:,} appointments inserted in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        service.create_template(praxis, clinic_id, TemplateIn(
            code="reminder", language="hu", body="Kedves {patient_name}! Holnap {time} órakor várjuk: {doctor}, "
                                                 "{clinic}. Lemondás: 2"), actor)
        from core.messaging import planner

        planner.OVERLAP_INSERTS = overlap
        profiler = cProfile.Profile() if profile else None
        started, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        rule = service.create_rule(praxis, clinic_id, RuleIn(name="Day before", kind="days_before",
                                                             params={"days": 1, "at": "18:00"},
                                                             template_code="reminder"), actor)
        if profiler is not None:
            profiler.disable()
        planning, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"planning: {rule['planned']['created']:,} reminders (message + outbox item each) for "
              f"{appointments:,} appointments in {planning:.2f} s = {appointments / planning:,.0f} appointments/s, "
              f"this process's CPU {cpu:.2f} s{' (profiled)' if profile else ''} (goal: 100,000 in <= 10 s)",
              flush=True)
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
        if plan_only:
            praxis.close()
            return

        template = "Kedves {given_name}! Rendelőnk jövő héten zárva tart."
        started = time.perf_counter()
        batch = service.send(praxis, clinic_id, SendIn(patient_ids=ids[:messages], body=template), actor)
        print(f"manual sending: {batch['total']:,} messages queued in {time.perf_counter() - started:.2f} s",
              flush=True)
        spawn = multiprocessing.get_context("spawn")
        ready, go, done = spawn.Semaphore(0), spawn.Event(), spawn.Queue()
        processes = [spawn.Process(target=_worker, args=(url, key, data_dir, f"bench{i}", ready, go, done))
                     for i in range(workers)]
        for process in processes:
            process.start()
        for _ in processes:
            if not ready.acquire(timeout=120):
                raise SystemExit("a worker did not start within 120 s")
        started = time.perf_counter()
        go.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = _status_counts(praxis)
            if counts.get("sent", 0) >= batch["total"]:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        shares = sorted((done.get(timeout=60) for _ in processes), reverse=True)
        for process in processes:
            process.join(30)
        counts = _status_counts(praxis)
        effects = len(vendor.effects)
        requests = len(vendor.requests)
        praxis.close()
    print(f"sending: {counts.get('sent', 0):,} of {batch['total']:,} sent by {workers} worker processes in "
          f"{elapsed:.2f} s = {counts.get('sent', 0) / elapsed:,.0f} messages/s (items per worker: {shares}); "
          f"vendor: {requests:,} requests, {effects:,} messages, duplicates {effects - len(set(vendor.effects))}",
          flush=True)
    if counts.get("sent", 0) != batch["total"] or effects != batch["total"]:
        raise SystemExit(f"not every message was sent exactly once: {counts}, vendor saw {effects}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--appointments", type=int, default=100000)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600.0, help="Give up sending after this many seconds.")
    parser.add_argument("--plan-only", action="store_true", help="Stop after the planning.")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="Profile the planning with cProfile and print its N most expensive calls.")
    parser.add_argument("--no-overlap", action="store_true",
                        help="PostgreSQL: insert each batch before building the next (for comparison).")
    args = parser.parse_args()
    if args.messages > args.patients:
        raise SystemExit("--messages may not exceed --patients (one manual message per patient)")
    base = os.environ.get("DATABASE_URL") or os.environ.get("PRAXIS_DATABASE_URL")
    options = {"patients": args.patients, "appointments": args.appointments, "messages": args.messages,
               "workers": args.workers, "timeout": args.timeout, "plan_only": args.plan_only,
               "profile": args.profile, "overlap": not args.no_overlap}
    if not base or base.startswith("sqlite"):
        print("database: SQLite (scratch file)", flush=True)
        run("", **options)
        return
    from sqlalchemy import create_engine, text

    admin_url = "postgresql+psycopg://" + base.split("://", 1)[1]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"praxis_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    print("database: PostgreSQL (scratch database)", flush=True)
    try:
        run(admin_url.rsplit("/", 1)[0] + f"/{name}", **options)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
