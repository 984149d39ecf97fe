"""What an admin (API or CLI) does with the outbox: look, retry dead letters, decide unknown outcomes.

Each change is one transaction with its audit entry. Retention: ``purge`` removes ``done`` items older
than the retention period and job-run rows nobody needs any more; ``dead`` and ``unknown`` items stay until
a person acts on them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from core import audit
from core.clock import now
from core.db import transaction
from core.models.outbox import JobRun, OutboxItem, OutboxStatus

STATUSES = tuple(s.value for s in OutboxStatus)


class OutboxError(Exception):
    """A refused outbox operation; ``code`` is stable for API clients."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Page:
    items: list[OutboxItem]
    total: int


def parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip())
    except ValueError as exc:
        raise OutboxError("invalid_id", f"{raw!r} is not an outbox item id (a UUID)", 422) from exc


def list_items(session: Session, clinic_id: int | None, *, status: str | None = None, plugin: str | None = None,
               limit: int = 50, offset: int = 0) -> Page:
    """Items newest first, optionally of one clinic, status or plugin."""
    conditions = []
    if clinic_id is not None:
        conditions.append(OutboxItem.clinic_id == clinic_id)
    if status is not None:
        if status not in STATUSES:
            raise OutboxError("invalid_status", f"status must be one of {', '.join(STATUSES)}", 422)
        conditions.append(OutboxItem.status == status)
    if plugin is not None:
        conditions.append(OutboxItem.plugin == plugin)
    total = session.execute(select(func.count()).select_from(OutboxItem).where(*conditions)).scalar_one()
    rows = session.execute(
        select(OutboxItem).where(*conditions)
        .order_by(col(OutboxItem.created_at).desc(), col(OutboxItem.id)).limit(limit).offset(offset)
    ).scalars().all()
    return Page(list(rows), total)


def summary(session: Session, clinic_id: int) -> dict[str, Any]:
    """Counts per plugin and status, and the oldest item still waiting per plugin."""
    counts = session.execute(
        select(OutboxItem.plugin, OutboxItem.status, func.count())
        .where(OutboxItem.clinic_id == clinic_id)
        .group_by(OutboxItem.plugin, OutboxItem.status)
    ).all()
    oldest = dict(session.execute(
        select(OutboxItem.plugin, func.min(OutboxItem.created_at))
        .where(OutboxItem.clinic_id == clinic_id, OutboxItem.status == OutboxStatus.pending)
        .group_by(OutboxItem.plugin)
    ).tuples().all())
    plugins: dict[str, dict[str, Any]] = {}
    totals = dict.fromkeys(STATUSES, 0)
    for plugin, status, count in counts:
        entry = plugins.setdefault(plugin, {**dict.fromkeys(STATUSES, 0), "oldest_pending_at": None})
        entry[status] = count
        totals[status] = totals.get(status, 0) + count
    for plugin, at in oldest.items():
        plugins[plugin]["oldest_pending_at"] = at
    return {"plugins": plugins, "totals": totals}


def get_item(session: Session, item_id: uuid.UUID, clinic_id: int | None = None) -> OutboxItem:
    item = session.get(OutboxItem, item_id)
    if item is None or (clinic_id is not None and item.clinic_id != clinic_id):
        raise OutboxError("not_found", f"no outbox item {item_id}" + (f" in clinic {clinic_id}" if clinic_id else ""),
                          404)
    return item


def retry(engine: Engine, item_id: uuid.UUID, actor: audit.Actor, *, clinic_id: int | None = None) -> OutboxItem:
    """Send a ``dead`` or ``unknown`` item again: back to ``pending`` with its attempts reset."""
    with transaction(engine) as session:
        item = _locked(session, item_id, clinic_id)
        if item.status not in (OutboxStatus.dead, OutboxStatus.unknown):
            raise OutboxError("not_retryable", f"only dead or unknown items can be retried; this one is {item.status}")
        before = item.status
        item.status, item.attempts, item.available_at = OutboxStatus.pending, 0, now()
        item.locked_by, item.locked_until, item.finished_at = None, None, None
        session.add(item)
        audit.record(session, actor, "outbox.retried", clinic_id=item.clinic_id, target=f"outbox:{item.id}",
                     data={"plugin": item.plugin, "topic": item.topic, "from_status": before,
                           "last_error": item.last_error})
        session.flush()
        return item


def resolve(engine: Engine, item_id: uuid.UUID, outcome: str, actor: audit.Actor, *, note: str | None = None,
            clinic_id: int | None = None) -> OutboxItem:
    """A person's decision on an ``unknown`` item: the vendor did act (``done``) or did not (``dead``)."""
    if outcome not in (OutboxStatus.done, OutboxStatus.dead):
        raise OutboxError("invalid_outcome", "outcome must be 'done' or 'dead'", 422)
    with transaction(engine) as session:
        item = _locked(session, item_id, clinic_id)
        if item.status != OutboxStatus.unknown:
            raise OutboxError("not_unknown", f"only items with an unknown outcome can be resolved; this one is "
                                             f"{item.status}")
        item.status, item.finished_at = outcome, now()
        decision = {"resolved_by": actor.name, "resolved_as": outcome, "note": note}
        item.result = {**(item.result or {}), "resolution": decision}
        session.add(item)
        audit.record(session, actor, "outbox.resolved", clinic_id=item.clinic_id, target=f"outbox:{item.id}",
                     data={"plugin": item.plugin, "topic": item.topic, "outcome": outcome, "note": note})
        session.flush()
        return item


def _locked(session: Session, item_id: uuid.UUID, clinic_id: int | None) -> OutboxItem:
    item = session.execute(select(OutboxItem).where(OutboxItem.id == item_id).with_for_update()).scalar_one_or_none()
    if item is None or (clinic_id is not None and item.clinic_id != clinic_id):
        raise OutboxError("not_found", f"no outbox item {item_id}" + (f" in clinic {clinic_id}" if clinic_id else ""),
                          404)
    return item


def purge(engine: Engine, *, keep_done: timedelta, at: datetime | None = None, chunk: int = 1000) -> tuple[int, int]:
    """Delete ``done`` items finished before ``at - keep_done``, and old job runs that a newer run of the
    same job and clinic supersedes (the newest must stay: it stops its slot from running again).
    Works in short transactions of ``chunk`` rows. Returns (items removed, job runs removed)."""
    cutoff = (at or now()) - keep_done
    items = _delete_in_chunks(engine, select(OutboxItem.id).where(
        OutboxItem.status == OutboxStatus.done, col(OutboxItem.finished_at) < cutoff), OutboxItem, chunk)
    newer = aliased(JobRun)
    superseded = exists().where(newer.job == JobRun.job, newer.clinic_id == JobRun.clinic_id, newer.slot > JobRun.slot)
    runs = _delete_in_chunks(engine, select(JobRun.id).where(JobRun.started_at < cutoff, superseded), JobRun, chunk)
    return items, runs


def _delete_in_chunks(engine: Engine, ids: Any, model: Any, chunk: int) -> int:
    removed = 0
    while True:
        with transaction(engine) as session:
            batch = list(session.execute(ids.limit(chunk)).scalars())
            if batch:
                session.execute(delete(model).where(model.id.in_(batch)).execution_options(synchronize_session=False))
        removed += len(batch)
        if len(batch) < chunk:
            return removed


def item_dict(item: OutboxItem, *, with_payload: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(item.id), "clinic_id": item.clinic_id, "plugin": item.plugin, "topic": item.topic,
        "status": item.status, "attempts": item.attempts, "max_attempts": item.max_attempts,
        "available_at": item.available_at, "created_at": item.created_at, "finished_at": item.finished_at,
        "locked_by": item.locked_by, "locked_until": item.locked_until, "last_error": item.last_error,
        "result": item.result, "dedupe_key": item.dedupe_key,
    }
    if with_payload:
        data["payload"] = item.payload
    return data


__all__ = ["OutboxError", "Page", "get_item", "item_dict", "list_items", "parse_id", "purge", "resolve", "retry",
           "summary"]
