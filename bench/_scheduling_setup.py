"""Shared set-up for the scheduling benchmarks: a scratch database, a clinic, doctors with weekly
schedules (Mon-Sat 08:00-20:00, lunch 12:00-13:00) and rooms."""

from __future__ import annotations

import base64
import secrets
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Setup:
    praxis: Any
    clinic_id: int
    doctors: list[int]
    rooms: list[int]


@contextmanager
def scratch_praxis(url: str | None) -> Iterator[Any]:
    """Bootstrap Praxis on a throw-away database: SQLite in a temp dir, or a new PostgreSQL database next to
    the one ``url`` names (dropped afterwards)."""
    from sqlalchemy import create_engine, text

    from core.app_context import bootstrap
    from core.config import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="praxis_bench_"))
    admin = None
    name = None
    if url and url.startswith("postgresql"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        name = f"praxis_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        db_url = f"{url.rsplit('/', 1)[0]}/{name}"
    else:
        db_url = f"sqlite:///{data_dir / 'bench.db'}"
    settings = Settings(database_url=db_url, master_key=f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
                        data_dir=data_dir, plugins_file=data_dir / "plugins.toml", embedded_worker=False,
                        state_refresh_seconds=5.0)
    praxis = bootstrap(settings, entry_points=[])
    praxis.bench_settings = {"database_url": db_url, "master_key": settings.master_key, "data_dir": str(data_dir)}
    try:
        yield praxis
    finally:
        praxis.close()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def attach_praxis(database_url: str, master_key: str, data_dir: str, **engine_kwargs: Any) -> Any:
    """Another process's Praxis on the scratch database ``scratch_praxis`` made (see ``praxis.bench_settings``)."""
    from core.app_context import bootstrap
    from core.config import Settings
    from core.db import make_engine

    settings = Settings(database_url=database_url, master_key=master_key, data_dir=Path(data_dir),
                        plugins_file=Path(data_dir) / "plugins.toml", embedded_worker=False, state_refresh_seconds=5.0)
    return bootstrap(settings, entry_points=[], engine=make_engine(settings.url, **engine_kwargs))


def build(praxis: Any, doctors: int, rooms: int, country: str = "HU", tz: str = "Europe/Budapest") -> Setup:
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from core.audit import Actor
    from core.auth import passwords
    from core.auth.permissions import catalog
    from core.auth.users import MembershipSpec, create_user
    from core.db import transaction
    from core.models.clinic import Clinic
    from core.scheduling import schedules

    passwords.configure_hasher(PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),)))
    actor = Actor(None, "bench")
    with transaction(praxis.engine) as session:
        clinic = Clinic(name="Bench", country=country, timezone=tz, locale="hu")
        session.add(clinic)
        session.flush()
        praxis.plugins.seed(session, clinic)
        clinic_id = clinic.id
    praxis.runtime.state.invalidate()
    doctor_ids = []
    with transaction(praxis.engine) as session:
        cat = catalog(praxis.runtime)
        for i in range(doctors):
            user = create_user(session, cat, actor, login=f"doc{i}_{secrets.token_hex(2)}", name=f"Doctor {i}",
                               password=None, memberships=[MembershipSpec(clinic_id, "doctor", [], [])])
            doctor_ids.append(user.id)
    room_ids = [schedules.create_room(praxis.engine, clinic_id, {"name": f"Chair {i}", "kind": "chair"}, actor)["id"]
                for i in range(rooms)]
    schedules.set_hours(praxis.engine, clinic_id, [{"weekday": d, "start_time": time(7), "end_time": time(21)}
                                                   for d in range(6)], actor)
    for i, doctor in enumerate(doctor_ids):
        schedules.set_templates(praxis.engine, clinic_id, doctor, [
            {"weekday": d, "start_time": time(8), "end_time": time(20), "room_id": room_ids[i % rooms]}
            for d in range(6)], actor)
        for d in range(6):
            schedules.add_break(praxis.engine, clinic_id, doctor,
                                {"weekday": d, "start_time": time(12), "end_time": time(13)}, actor)
    return Setup(praxis, clinic_id, doctor_ids, room_ids)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
