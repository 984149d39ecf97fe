"""The plugin's own tables (created by its migration ``lab_hl7_0001``):

``lab_hl7_order``
    One row per order (and per cancel) the lab acknowledged: the listener accepts results only for placer order
    numbers found here, and remembers the filler number the lab gave.
``lab_hl7_inbox``
    One row per result message received (by the listener, or in answer to a query), stored whole with its parsed
    results. ``fetch_results`` hands rows out (``handed_at``) and hands them out again if the core has not confirmed
    them within ``HAND_OUT_LEASE`` (the core failed in between); ``confirm_results`` sets ``confirmed_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

HAND_OUT_LEASE = timedelta(minutes=10)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

orders = Table(
    "lab_hl7_order", metadata,
    Column("id", Integer, primary_key=True),
    Column("clinic_id", Integer, ForeignKey("core_clinic.id"), nullable=False),
    Column("placer_order_number", String(60), nullable=False),
    Column("action", String(10), nullable=False),
    Column("control_id", String(20), nullable=False),
    Column("filler_order_number", String(60)),
    Column("ack_code", String(4), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=False),
    UniqueConstraint("clinic_id", "placer_order_number", "action", name="ux_lab_hl7_order_placer"),
)

inbox = Table(
    "lab_hl7_inbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("clinic_id", Integer, ForeignKey("core_clinic.id"), nullable=False),
    Column("control_id", String(60), nullable=False),
    Column("via", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("results", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("handed_at", UtcDateTime()),
    Column("confirmed_at", UtcDateTime()),
    UniqueConstraint("clinic_id", "control_id", name="ux_lab_hl7_inbox_control"),
)


def record_order(session: Session, clinic_id: int, placer: str, action: str, control: str, filler: str | None,
                 ack_code: str, at: datetime) -> None:
    row = session.execute(select(orders.c.id).where(orders.c.clinic_id == clinic_id,
                                                    orders.c.placer_order_number == placer,
                                                    orders.c.action == action)).first()
    values = {"control_id": control, "filler_order_number": filler, "ack_code": ack_code, "sent_at": at}
    if row is None:
        session.execute(insert(orders).values(clinic_id=clinic_id, placer_order_number=placer, action=action,
                                              **values))
    else:
        session.execute(update(orders).where(orders.c.id == row[0]).values(**values))


def known_order(session: Session, clinic_id: int, placer: str | None, filler: str | None) -> bool:
    """Whether the lab acknowledged an order with this placer number (or, when the lab sends only its own number,
    this filler number) for the clinic."""
    if placer:
        condition = orders.c.placer_order_number == placer
    elif filler:
        condition = orders.c.filler_order_number == filler
    else:
        return False
    query = select(orders.c.id).where(orders.c.clinic_id == clinic_id, orders.c.action == "new", condition)
    return session.execute(query.limit(1)).first() is not None


def add_message(session: Session, clinic_id: int, control: str, via: str, message: str,
                groups: list[dict[str, Any]], at: datetime) -> int | None:
    """Store a received message whole; None if a message with this control id was stored before (a resend)."""
    exists = session.execute(select(inbox.c.id).where(inbox.c.clinic_id == clinic_id,
                                                      inbox.c.control_id == control)).first()
    if exists is not None:
        return None
    savepoint = session.begin_nested()
    try:
        row_id = session.execute(insert(inbox).values(
            clinic_id=clinic_id, control_id=control, via=via, message=message, results=groups, received_at=at,
        ).returning(inbox.c.id)).scalar_one()
    except IntegrityError:  # the same resend arrived on another connection at the same moment
        savepoint.rollback()
        return None
    savepoint.commit()
    return int(row_id)


def hand_out(session: Session, clinic_id: int, at: datetime) -> list[dict[str, Any]]:
    """Rows not confirmed and not handed out within the lease; marks them handed out now."""
    due = and_(inbox.c.clinic_id == clinic_id, inbox.c.confirmed_at.is_(None),
               or_(inbox.c.handed_at.is_(None), inbox.c.handed_at < at - HAND_OUT_LEASE))
    rows = [dict(r._mapping) for r in session.execute(
        select(inbox.c.id, inbox.c.results).where(due).order_by(inbox.c.id).limit(500).with_for_update())]
    if rows:
        session.execute(update(inbox).where(inbox.c.id.in_([r["id"] for r in rows])).values(handed_at=at))
    return rows


def pending_count(session: Session, clinic_id: int) -> int:
    return len(session.execute(select(inbox.c.id).where(inbox.c.clinic_id == clinic_id,
                                                        inbox.c.confirmed_at.is_(None))).all())


def confirm(session: Session, clinic_id: int, ids: list[int], at: datetime) -> None:
    if ids:
        session.execute(update(inbox).where(inbox.c.clinic_id == clinic_id, inbox.c.id.in_(ids))
                        .values(confirmed_at=at))
