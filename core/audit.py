"""Write to and verify the hash-chained audit journal.

Each entry's hash covers the previous entry's hash and the entry's canonical JSON, so editing,
inserting or deleting an entry breaks the chain at that point. Entries are written inside the
business transaction: no change without its audit entry, and no entry for a change rolled back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from core.clock import now
from core.models.audit import AuditEntry, AuditHead

GENESIS = "0" * 64


@dataclass(frozen=True)
class Actor:
    id: int | None
    name: str

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(None, name)


def canonical(entry: AuditEntry) -> bytes:
    """The frozen byte form an entry's hash is computed over. Changing it breaks old chains."""
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    body = {
        "seq": entry.seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "clinic_id": entry.clinic_id,
        "action": entry.action,
        "target": entry.target,
        "data": entry.data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def chain_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(entry)).hexdigest()


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    clinic_id: int | None = None,
    target: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction."""
    head = _locked_head(session)
    entry = AuditEntry(
        seq=head.seq + 1,
        at=now(),
        actor_id=actor.id,
        actor_name=actor.name,
        clinic_id=clinic_id,
        action=action,
        target=target,
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=head.hash,
        hash="",
    )
    entry.hash = chain_hash(head.hash, entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.add(entry)
    session.add(head)
    session.flush()
    return entry


def _locked_head(session: Session) -> AuditHead:
    """The chain's tip, locked for this transaction; created on first use without racing other writers."""
    query = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = session.exec(query).first()
    if head is None:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.exec(insert(AuditHead).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
        head = session.exec(query.execution_options(populate_existing=True)).one()
    return head


@dataclass(frozen=True)
class Break:
    seq: int
    problem: str


def verify(session: Session, batch: int = 5000) -> list[Break]:
    """Walk the whole chain and report every entry that was edited, inserted or deleted."""
    problems: list[Break] = []
    prev_hash, expected_seq, last = GENESIS, 1, 0
    while True:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(col(AuditEntry.seq)).limit(batch)
        ).all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                problems.append(Break(expected_seq, f"entries {expected_seq}..{entry.seq - 1} are missing"))
            if entry.prev_hash != prev_hash:
                problems.append(Break(entry.seq, "does not follow the previous entry (inserted or reordered)"))
            if chain_hash(entry.prev_hash, entry) != entry.hash:
                problems.append(Break(entry.seq, "content does not match its hash (edited)"))
            prev_hash, expected_seq, last = entry.hash, entry.seq + 1, entry.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last or head.hash != prev_hash):
        problems.append(Break(head.seq, "the journal's tip does not match its last entry (entries removed at the end)"))
    return problems

