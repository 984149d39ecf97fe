"""Queue outgoing work inside the caller's transaction."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core.clock import now
from core.models.outbox import OutboxItem


def enqueue(
    session: Session,
    *,
    plugin: str,
    topic: str,
    payload: dict[str, Any],
    clinic_id: int | None,
    dedupe_key: str | None = None,
    available_at: datetime | None = None,
    max_attempts: int = 12,
) -> uuid.UUID:
    """Add one item to the outbox in ``session``'s transaction and return its id (the idempotency key).

    With a ``dedupe_key`` already queued, nothing is added and the existing item's id is returned. This
    holds under concurrency too: the insert is ``ON CONFLICT (dedupe_key) DO NOTHING``, so two
    transactions queuing the same key never abort each other. Raises ``ValueError`` naming the field for
    values the table cannot hold.
    """
    _check(plugin=plugin, topic=topic, payload=payload, dedupe_key=dedupe_key, available_at=available_at,
           max_attempts=max_attempts)
    values = {
        "id": uuid.uuid4(),
        "plugin": plugin,
        "topic": topic,
        "payload": payload,
        "clinic_id": clinic_id,
        "dedupe_key": dedupe_key,
        "status": "pending",
        "available_at": available_at or now(),
        "attempts": 0,
        "max_attempts": max_attempts,
        "created_at": now(),
    }
    if dedupe_key is None:
        session.execute(insert(OutboxItem).values(**values))  # ORM-enabled: autoflushes the caller's rows
        return values["id"]
    dialect = session.get_bind().dialect.name
    build = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        build(OutboxItem).values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(col(OutboxItem.id))
    )
    inserted = session.execute(statement).scalar_one_or_none()
    if inserted is not None:
        return inserted
    existing = session.exec(select(OutboxItem.id).where(OutboxItem.dedupe_key == dedupe_key)).first()
    if existing is None:  # the conflicting row was deleted between the two statements
        raise RuntimeError(f"dedupe_key {dedupe_key!r} conflicted with an item that no longer exists; try again")
    return existing


def enqueue_many(session: Session, items: list[dict[str, Any]]) -> None:
    """Add several items in one statement, in ``session``'s transaction: each item is a dict of
    ``enqueue``'s keyword arguments and must have a ``dedupe_key``; an item whose key is already queued
    is skipped, as with ``enqueue``. Used to fan one event out to every subscribed plugin."""
    rows = []
    checked: set[int] = set()
    for item in items:
        payload, max_attempts = item["payload"], item.get("max_attempts", 12)
        if item.get("dedupe_key") is None:
            raise ValueError("dedupe_key: must be a non-empty string")
        # one event's items share its payload: serialised once to check it
        _check(plugin=item["plugin"], topic=item["topic"], payload={} if id(payload) in checked else payload,
               dedupe_key=item["dedupe_key"], available_at=item.get("available_at"), max_attempts=max_attempts)
        checked.add(id(payload))
        at = now()
        rows.append({"id": uuid.uuid4(), "plugin": item["plugin"], "topic": item["topic"], "payload": payload,
                     "clinic_id": item["clinic_id"], "dedupe_key": item["dedupe_key"], "status": "pending",
                     "available_at": item.get("available_at") or at, "attempts": 0, "max_attempts": max_attempts,
                     "created_at": at})
    if not rows:
        return
    build = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # ORM-enabled, like ``enqueue``: autoflushes the caller's rows first
    session.execute(build(OutboxItem).values(rows).on_conflict_do_nothing(index_elements=["dedupe_key"]))


def _check(*, plugin: str, topic: str, payload: Any, dedupe_key: str | None, available_at: datetime | None,
           max_attempts: int) -> None:
    limits = {"plugin": (plugin, 64), "topic": (topic, 100), "dedupe_key": (dedupe_key, 200)}
    for field, (value, limit) in limits.items():
        if value is None and field == "dedupe_key":
            continue
        if not isinstance(value, str) or not value:
            raise ValueError(f"{field}: must be a non-empty string")
        if len(value) > limit:
            raise ValueError(f"{field}: at most {limit} characters, got {len(value)}")
    if not isinstance(payload, dict):
        raise ValueError(f"payload: must be a dict, got {type(payload).__name__}")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload: must be JSON-serialisable ({exc})") from exc
    if available_at is not None and available_at.tzinfo is None:
        raise ValueError("available_at: must be timezone-aware")
    if max_attempts < 1:
        raise ValueError("max_attempts: must be at least 1")
