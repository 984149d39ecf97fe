"""Helpers shared by the outbox tests (and the worker processes they spawn)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from sqlmodel import Session, func, select

from core.audit import Actor
from core.db import transaction
from core.models.outbox import OutboxItem
from core.outbox.queue import enqueue

ADMIN = Actor(None, "test admin")


def queue(praxis: Any, clinic_id: int | None, mode: str = "ok", *, plugin: str = "courier", topic: str = "send",
          **payload: Any) -> uuid.UUID:
    extra = {k: payload.pop(k) for k in ("dedupe_key", "available_at", "max_attempts") if k in payload}
    with transaction(praxis.engine) as session:
        return enqueue(session, plugin=plugin, topic=topic, payload={"mode": mode, **payload},
                       clinic_id=clinic_id, **extra)


def item(praxis: Any, item_id: uuid.UUID) -> OutboxItem:
    with Session(praxis.engine) as session:
        found = session.get(OutboxItem, item_id)
        assert found is not None
        return found


def count(praxis: Any, *conditions: Any) -> int:
    with Session(praxis.engine) as session:
        return session.exec(select(func.count()).select_from(OutboxItem).where(*conditions)).one()


def drain(worker: Any, *, timeout: float = 60.0) -> None:
    """Run ``worker`` until no item is pending (due or not), e.g. in a thread or another process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.run_once():
            continue
        if count(worker.praxis, OutboxItem.status == "pending") == 0:
            return
        time.sleep(0.02)
    raise TimeoutError("the outbox did not drain in time")


def process_worker(settings: dict[str, Any], plugins: list[str], name: str, lease_seconds: float) -> None:
    """Entry of a spawned worker process: bootstrap like `praxis worker` does, then drain."""
    from core.app_context import bootstrap
    from core.config import Settings
    from core.outbox.worker import Worker
    from tests.outbox.conftest import outbox_plugin

    praxis = bootstrap(Settings(**settings), entry_points=[outbox_plugin(p) for p in plugins], migrate=False)
    worker = Worker(praxis, name=name, batch_size=20, handler_timeout=lease_seconds / 2,
                    lease=timedelta(seconds=lease_seconds))
    drain(worker, timeout=90)
    praxis.close()
