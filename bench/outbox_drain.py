"""Benchmark: drain K outbox items to a no-op handler with 1 and 4 worker processes on PostgreSQL.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/outbox_drain.py [--items 20000]

Creates a scratch database next to the one DATABASE_URL names (dropped afterwards), queues the items
for one clinic, starts the worker processes, waits until each has bootstrapped, then times from "go"
until the last item is done. Prints items/s per worker count. Bounded: --timeout seconds per run.
This module is also the no-op plugin the workers load (entry point ``bench.outbox_drain``).
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from plugin_sdk import Category, PluginManifest, hookimpl  # noqa: E402

manifest = PluginManifest(name="bench_noop", version="1.0.0", title="Bench", description="No-op outbox handler.",
                          category=Category.other, api=">=1.0,<2")


def _noop(ctx: Any, message: Any) -> None:
    return None


@hookimpl
def praxis_outbox_handlers() -> dict[str, Any]:
    return {"noop": _noop}


def _entry_point() -> Any:
    from importlib.metadata import EntryPoint

    return EntryPoint(name="bench_noop", value="bench.outbox_drain", group="praxis.plugins")


def _settings(url: str, key: str, data_dir: str) -> Any:
    from core.config import Settings

    return Settings(database_url=url, master_key=key, data_dir=Path(data_dir),
                    plugins_file=Path(data_dir) / "plugins.toml", embedded_worker=False, state_refresh_seconds=2.0)


def _worker(url: str, key: str, data_dir: str, name: str, batch: int, ready: Any, go: Any, done: Any) -> None:
    import logging

    from core.app_context import bootstrap
    from core.outbox.worker import Worker

    logging.basicConfig(level=logging.WARNING)
    praxis = bootstrap(_settings(url, key, data_dir), entry_points=[_entry_point()], migrate=False)
    worker = Worker(praxis, name=name, batch_size=batch)
    worker.scheduler.jobs = []  # nothing periodic here: measure delivery only
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
        if time.monotonic() - idle_since > 0.3:  # nothing left for 0.3 s: the queue is drained
            break
    done.put(handled)
    praxis.close()


def _fill(praxis: Any, clinic_id: int, items: int) -> None:
    from sqlalchemy import insert

    from core.clock import now
    from core.db import transaction
    from core.models.outbox import OutboxItem

    at = now()
    rows = [{"id": uuid.uuid4(), "plugin": "bench_noop", "topic": "noop", "payload": {"n": i}, "clinic_id": clinic_id,
             "status": "pending", "available_at": at, "attempts": 0, "max_attempts": 12, "created_at": at}
            for i in range(items)]
    for start in range(0, items, 5000):
        with transaction(praxis.engine) as session:
            session.execute(insert(OutboxItem), rows[start:start + 5000])


def _remaining(praxis: Any) -> int:
    from sqlmodel import Session, func, select

    from core.models.outbox import OutboxItem

    with Session(praxis.engine) as session:
        return session.exec(select(func.count()).select_from(OutboxItem).where(OutboxItem.status != "done")).one()


def run(url: str, items: int, workers: int, batch: int, timeout: float) -> float:
    from core.app_context import bootstrap
    from core.audit import Actor
    from core.db import transaction
    from core.models.clinic import Clinic

    key = f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    with tempfile.TemporaryDirectory() as data_dir:
        praxis = bootstrap(_settings(url, key, data_dir), entry_points=[_entry_point()])
        with transaction(praxis.engine) as session:
            clinic = Clinic(name="Bench", country="HU", timezone="Europe/Budapest", locale="hu")
            session.add(clinic)
            session.flush()
            praxis.plugins.seed(session, clinic)
            clinic_id = clinic.id
        praxis.runtime.state.invalidate()
        praxis.plugins.enable(clinic_id, "bench_noop", Actor(None, "bench"))
        _fill(praxis, clinic_id, items)
        spawn = multiprocessing.get_context("spawn")
        ready, go, done = spawn.Semaphore(0), spawn.Event(), spawn.Queue()
        processes = [spawn.Process(target=_worker, args=(url, key, data_dir, f"bench{i}", batch, ready, go, done))
                     for i in range(workers)]
        for process in processes:
            process.start()
        for _ in processes:
            if not ready.acquire(timeout=60):
                raise SystemExit("a worker did not start within 60 s")
        started = time.perf_counter()
        go.set()
        deadline = time.monotonic() + timeout
        while _remaining(praxis) and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        left = _remaining(praxis)
        shares = sorted((done.get(timeout=30) for _ in processes), reverse=True)
        for process in processes:
            process.join(30)
        praxis.close()
    if left:
        raise SystemExit(f"{left} items not drained within {timeout:g} s")
    print(f"{workers} worker process(es): {items} items in {elapsed:.2f} s = {items / elapsed:,.0f} items/s "
          f"(items per worker: {shares})", flush=True)
    return items / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--batch", type=int, default=100, help="Worker batch size.")
    parser.add_argument("--timeout", type=float, default=120.0, help="Give up a run after this many seconds.")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL") or os.environ.get("PRAXIS_DATABASE_URL")
    if not base or not base.startswith(("postgresql", "postgres:")):
        raise SystemExit("set DATABASE_URL to a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/postgres")
    from sqlalchemy import create_engine, text

    admin_url = "postgresql+psycopg://" + base.split("://", 1)[1]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    for workers in args.workers:
        name = f"praxis_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            run(admin_url.rsplit("/", 1)[0] + f"/{name}", args.items, workers, args.batch, args.timeout)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


if __name__ == "__main__":
    main()
