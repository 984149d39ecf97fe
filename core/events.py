"""Emit domain events: one outbox item per subscribed plugin, in the caller's transaction.

Fanning out at write time means each plugin's delivery is retried on its own: one failing plugin
never makes the others see an event twice. The items of one event are inserted by one statement.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from core.clock import now
from core.outbox.queue import enqueue_many
from plugin_sdk.events import DomainEvent

if TYPE_CHECKING:
    from core.audit import Actor
    from core.plugins.runtime import PluginRuntime

EVENT_TOPIC = "praxis.event"


def emit(
    session: Session,
    runtime: PluginRuntime,
    name: str,
    *,
    clinic_id: int,
    subject_type: str,
    subject_id: str | int,
    data: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> DomainEvent:
    """Queue ``name`` for every plugin enabled in the clinic that implements ``praxis_on_event``."""
    event = DomainEvent(
        id=uuid.uuid4(),
        name=name,
        clinic_id=clinic_id,
        occurred_at=now(),
        actor_id=actor.id if actor else None,
        subject_type=subject_type,
        subject_id=str(subject_id),
        data=data or {},
    )
    subscribers = runtime.implementations("praxis_on_event", runtime.enabled(clinic_id, include_open_circuits=True))
    if subscribers:
        payload = event.model_dump(mode="json")
        enqueue_many(session, [{"plugin": plugin, "topic": EVENT_TOPIC, "payload": payload, "clinic_id": clinic_id,
                                "dedupe_key": f"event:{event.id}:{plugin}"} for plugin, _ in subscribers])
    return event
