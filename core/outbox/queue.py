"""Queue outgoing work inside the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

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

    With a ``dedupe_key`` already queued, nothing is added and the existing item's id is returned.
    """
    if dedupe_key is not None:
        existing = session.exec(select(OutboxItem.id).where(OutboxItem.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return existing
    item = OutboxItem(
        plugin=plugin,
        topic=topic,
        payload=payload,
        clinic_id=clinic_id,
        dedupe_key=dedupe_key,
        available_at=available_at or now(),
        max_attempts=max_attempts,
    )
    session.add(item)
    session.flush()
    return item.id
