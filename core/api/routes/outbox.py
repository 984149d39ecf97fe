"""Outbox administration per clinic: what is queued, failed or undecided; retry and resolve."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth.deps import Principal, clinic_permission
from core.auth.errors import ApiError
from core.outbox import admin

router = APIRouter(prefix="/api/clinics/{clinic_id}/outbox", tags=["outbox"])
T = TypeVar("T")


class Status(StrEnum):
    pending = "pending"
    done = "done"
    dead = "dead"
    unknown = "unknown"


class ItemOut(BaseModel):
    id: str = Field(description="Also the idempotency key handed to the vendor.")
    clinic_id: int | None
    plugin: str
    topic: str
    status: Status
    attempts: int
    max_attempts: int
    available_at: datetime = Field(description="When the item is (next) due.")
    created_at: datetime
    finished_at: datetime | None
    locked_by: str | None = Field(description="The worker holding the item right now, if any.")
    locked_until: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    dedupe_key: str | None


class ItemDetail(ItemOut):
    payload: dict[str, Any]


class ItemPage(BaseModel):
    items: list[ItemOut]
    total: int
    limit: int
    offset: int


class PluginCounts(BaseModel):
    pending: int = 0
    done: int = 0
    dead: int = 0
    unknown: int = 0
    oldest_pending_at: datetime | None = None


class SummaryOut(BaseModel):
    plugins: dict[str, PluginCounts]
    totals: dict[str, int]


class Outcome(StrEnum):
    done = "done"
    dead = "dead"


class ResolveIn(BaseModel):
    outcome: Outcome = Field(description="'done': the vendor did act; 'dead': it did not and it will not be resent.")
    note: str | None = Field(None, max_length=2000, description="Why; kept with the item and in the audit journal.")


def _answer(call: Callable[[], T]) -> T:
    try:
        return call()
    except admin.OutboxError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc


@router.get("", response_model=ItemPage)
def list_outbox(
    clinic_id: int,
    status: Status | None = Query(None, description="Only items in this state."),
    plugin: str | None = Query(None, max_length=64, description="Only this plugin's items."),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    praxis: Praxis = Depends(get_praxis),
    _: Principal = Depends(clinic_permission("outbox.view")),
) -> dict[str, Any]:
    """The clinic's outbox items, newest first (payloads only on the single-item route)."""
    with Session(praxis.engine) as session:
        page = admin.list_items(session, clinic_id, status=status.value if status else None, plugin=plugin,
                                limit=limit, offset=offset)
    return {"items": [admin.item_dict(i) for i in page.items], "total": page.total, "limit": limit,
            "offset": offset}


@router.get("/summary", response_model=SummaryOut)
def outbox_summary(clinic_id: int, praxis: Praxis = Depends(get_praxis),
                   _: Principal = Depends(clinic_permission("outbox.view"))) -> dict[str, Any]:
    """Counts per plugin and status, with the oldest item still waiting."""
    with Session(praxis.engine) as session:
        return admin.summary(session, clinic_id)


@router.get("/{item_id}", response_model=ItemDetail)
def get_outbox_item(clinic_id: int, item_id: uuid.UUID, praxis: Praxis = Depends(get_praxis),
                    _: Principal = Depends(clinic_permission("outbox.view"))) -> dict[str, Any]:
    """One item with its payload."""
    with Session(praxis.engine) as session:
        item = _answer(lambda: admin.get_item(session, item_id, clinic_id))
        return admin.item_dict(item, with_payload=True)


@router.post("/{item_id}/retry", response_model=ItemOut)
def retry_outbox_item(clinic_id: int, item_id: uuid.UUID, praxis: Praxis = Depends(get_praxis),
                      who: Principal = Depends(clinic_permission("outbox.manage"))) -> dict[str, Any]:
    """Send a dead or unknown item again from its first attempt (409 for other states)."""
    item = _answer(lambda: admin.retry(praxis.engine, item_id, who.actor, clinic_id=clinic_id))
    return admin.item_dict(item)


@router.post("/{item_id}/resolve", response_model=ItemOut)
def resolve_outbox_item(clinic_id: int, item_id: uuid.UUID, body: ResolveIn, praxis: Praxis = Depends(get_praxis),
                        who: Principal = Depends(clinic_permission("outbox.manage"))) -> dict[str, Any]:
    """Decide an item whose outcome is unknown: 'done' (the vendor acted) or 'dead' (409 for other states)."""
    item = _answer(lambda: admin.resolve(praxis.engine, item_id, body.outcome.value, who.actor, note=body.note,
                                         clinic_id=clinic_id))
    return admin.item_dict(item)
