"""The plugin's own tables (migration ``lab_fhir_0001``):

``lab_fhir_cursor``
    Per clinic, the ``meta.lastUpdated`` of the newest DiagnosticReport fetched: the next poll asks for reports
    updated after it.
``lab_fhir_inbox``
    One row per report version fetched (``<id>/<versionId>``), with its results. Rows are handed out to the core and
    handed out again if not confirmed within ``HAND_OUT_LEASE``; the cursor and the rows are written in one
    transaction, so a report is never skipped.
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
    TypeDecorator,
    UniqueConstraint,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlmodel import Session

HAND_OUT_LEASE = timedelta(minutes=10)


class UtcDateTime(TypeDecorator[datetime]):
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

cursors = Table(
    "lab_fhir_cursor", metadata,
    Column("clinic_id", Integer, ForeignKey("core_clinic.id"), primary_key=True),
    Column("since", String(40), nullable=False),
)

inbox = Table(
    "lab_fhir_inbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("clinic_id", Integer, ForeignKey("core_clinic.id"), nullable=False),
    Column("report_key", String(200), nullable=False),
    Column("results", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("handed_at", UtcDateTime()),
    Column("confirmed_at", UtcDateTime()),
    UniqueConstraint("clinic_id", "report_key", name="ux_lab_fhir_inbox_report"),
)


def get_cursor(session: Session, clinic_id: int) -> str | None:
    row = session.execute(select(cursors.c.since).where(cursors.c.clinic_id == clinic_id)).first()
    return row[0] if row else None


def set_cursor(session: Session, clinic_id: int, since: str) -> None:
    if get_cursor(session, clinic_id) is None:
        session.execute(insert(cursors).values(clinic_id=clinic_id, since=since))
    else:
        session.execute(update(cursors).where(cursors.c.clinic_id == clinic_id).values(since=since))


def add_report(session: Session, clinic_id: int, key: str, results: dict[str, Any], at: datetime) -> bool:
    exists = session.execute(select(inbox.c.id).where(inbox.c.clinic_id == clinic_id,
                                                      inbox.c.report_key == key)).first()
    if exists is not None:
        return False
    session.execute(insert(inbox).values(clinic_id=clinic_id, report_key=key, results=results, received_at=at))
    return True


def hand_out(session: Session, clinic_id: int, at: datetime) -> list[dict[str, Any]]:
    due = and_(inbox.c.clinic_id == clinic_id, inbox.c.confirmed_at.is_(None),
               or_(inbox.c.handed_at.is_(None), inbox.c.handed_at < at - HAND_OUT_LEASE))
    rows = [dict(r._mapping) for r in session.execute(
        select(inbox.c.id, inbox.c.results).where(due).order_by(inbox.c.id).limit(500).with_for_update())]
    if rows:
        session.execute(update(inbox).where(inbox.c.id.in_([r["id"] for r in rows])).values(handed_at=at))
    return rows


def confirm(session: Session, clinic_id: int, ids: list[int], at: datetime) -> None:
    if ids:
        session.execute(update(inbox).where(inbox.c.clinic_id == clinic_id, inbox.c.id.in_(ids))
                        .values(confirmed_at=at))
