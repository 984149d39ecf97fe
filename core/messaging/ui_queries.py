"""Read-only look-ups the messaging screens need besides ``core.messaging.service``: a message's history
(who retried or resolved it, from the audit journal), counts per status for the screens' tabs, and the names
of staff and patients a page of the log refers to. Nothing here writes or decides anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.models.audit import AuditEntry
from core.models.auth import User
from core.models.messaging import Message
from core.models.patient import Patient

if TYPE_CHECKING:
    from core.app_context import Praxis

HISTORY_ACTIONS = ("messaging.message_retried", "messaging.message_resolved")


def message_history(praxis: Praxis, clinic_id: int, message_id: uuid.UUID) -> list[dict[str, Any]]:
    """People's actions on one message (sent again, marked as sent, given up), oldest first."""
    with Session(praxis.engine) as session:
        rows = session.exec(select(AuditEntry).where(
            AuditEntry.clinic_id == clinic_id, AuditEntry.target == f"message:{message_id}",
            col(AuditEntry.action).in_(HISTORY_ACTIONS)).order_by(col(AuditEntry.seq))).all()
        return [{"at": r.at, "action": r.action, "actor_name": r.actor_name, "before": (r.data or {}).get("before"),
                 "outcome": (r.data or {}).get("outcome"), "note": (r.data or {}).get("note") or ""} for r in rows]


def status_counts(praxis: Praxis, clinic_id: int, statuses: Iterable[str], *, channel: str | None = None,
                  start: datetime | None = None, end: datetime | None = None) -> dict[str, int]:
    """How many of the clinic's messages are in each of ``statuses`` (with the log's channel and time filters)."""
    wanted = list(statuses)
    conditions: list[Any] = [Message.clinic_id == clinic_id, col(Message.status).in_(wanted)]
    if channel is not None:
        conditions.append(Message.channel == channel)
    if start is not None:
        conditions.append(col(Message.planned_for) >= start)
    if end is not None:
        conditions.append(col(Message.planned_for) < end)
    with Session(praxis.engine) as session:
        found = dict(session.exec(select(Message.status, func.count()).where(*conditions)
                                  .group_by(col(Message.status))).all())
    return {s: int(found.get(s, 0)) for s in wanted}


def user_names(praxis: Praxis, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    with Session(praxis.engine) as session:
        return {int(uid): name for uid, name in session.exec(select(User.id, User.name)
                                                             .where(col(User.id).in_(wanted))).all()
                if uid is not None}


def patient_names(praxis: Praxis, clinic_id: int, ids: Iterable[uuid.UUID | str | None]) -> dict[str, tuple[str, str]]:
    """``{patient id (str): (family name, given name)}`` of the clinic's patients among ``ids``."""
    wanted = sorted({uuid.UUID(str(i)) for i in ids if i})
    if not wanted:
        return {}
    with Session(praxis.engine) as session:
        rows = session.exec(select(Patient.id, Patient.family_name, Patient.given_name)
                            .where(col(Patient.id).in_(wanted), Patient.clinic_id == clinic_id)).all()
        return {str(pid): (family or "", given or "") for pid, family, given in rows}


def patient_brief(praxis: Praxis, clinic_id: int, patient_id: uuid.UUID) -> dict[str, Any] | None:
    """A patient of the clinic in a few fields (for the messaging section of the card), or None."""
    with Session(praxis.engine) as session:
        patient = session.get(Patient, patient_id)
        if patient is None or patient.clinic_id != clinic_id:
            return None
        return {"id": str(patient.id), "family_name": patient.family_name or "", "given_name": patient.given_name or "",
                "status": str(patient.status), "preferred_channel": patient.preferred_channel}
