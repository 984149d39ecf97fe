"""The patient access log: who opened which patient, when.

Each entry also goes into the hash-chained audit journal, so a removed access-log row is still
provable from the journal; the access-log table is the fast index for "who saw this patient".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

from core import audit
from core.models.auth import AccessLog

if TYPE_CHECKING:
    from core.auth.deps import Principal

ACTIONS = frozenset({"view", "print", "export", "view_identifiers"})


def log_access(session: Session, principal: Principal | audit.Actor, clinic_id: int, patient_id: object,
               action: str = "view") -> AccessLog:
    """Record in the caller's transaction that ``principal`` did ``action`` on a patient's record."""
    if action not in ACTIONS:
        raise ValueError(f"unknown access action {action!r}; one of {', '.join(sorted(ACTIONS))}")
    actor = principal if isinstance(principal, audit.Actor) else principal.actor
    row = AccessLog(user_id=actor.id, user_name=actor.name[:200], clinic_id=clinic_id,
                    patient_id=str(patient_id)[:64], action=action)
    session.add(row)
    session.flush()
    audit.record(session, actor, f"patient.access.{action}", clinic_id=clinic_id, target=f"patient:{patient_id}")
    return row
