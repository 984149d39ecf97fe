"""Write to and verify the hash-chained audit journal.

Each entry's hash covers the previous entry's hash and the entry's canonical JSON, so editing,
inserting or deleting an entry breaks its chain at that point. Entries are written inside the
business transaction: no change without its audit entry, and no entry for a change rolled back.

The journal is a set of chains rather than one: every clinic has its own (entries without a clinic go
to the ``global`` ones), each split into ``LANES`` lanes picked by the entry's target, so all entries
about one patient or appointment stay in one chain, in order. A writer locks only its chain's head row
until it commits; with a single chain every audited write in the installation queued behind the
previous one's commit (a durable commit alone takes 2-5 ms here, which capped bookings far below
300/s). ``seq`` numbers entries across the whole journal in the order they were written; ``chain`` and
``chain_seq`` place an entry in its chain, and only those are covered by the hash.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from core.clock import now
from core.models.audit import AuditEntry, AuditHead

GENESIS = "0" * 64
LANES = 8  # chains per clinic; changing it only affects where new entries go

_entries = AuditEntry.__table__  # type: ignore[attr-defined]
_heads = AuditHead.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Actor:
    id: int | None
    name: str

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(None, name)


def chain_of(clinic_id: int | None, target: str | None) -> str:
    """The chain an entry belongs to: its clinic's (or the global) chain, lane chosen by the target."""
    lane = zlib.crc32(target.encode()) % LANES if target else 0
    return f"clinic:{clinic_id}/{lane}" if clinic_id is not None else f"global/{lane}"


def canonical(entry: AuditEntry) -> bytes:
    """The frozen byte form an entry's hash is computed over. Changing it breaks old chains."""
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    body = {
        "chain": entry.chain,
        "seq": entry.chain_seq,
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
    """Append one entry in the caller's transaction (its chain's head stays locked until the end)."""
    chain = chain_of(clinic_id, target)
    head_seq, head_hash = _locked_head(session, chain)
    entry = AuditEntry(
        chain=chain,
        chain_seq=head_seq + 1,
        at=now(),
        actor_id=actor.id,
        actor_name=actor.name,
        clinic_id=clinic_id,
        action=action,
        target=target,
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=head_hash,
        hash="",
    )
    entry.hash = chain_hash(head_hash, entry)
    values = {c: getattr(entry, c) for c in ("chain", "chain_seq", "at", "actor_id", "actor_name", "clinic_id",
                                             "action", "target", "data", "prev_hash", "hash")}
    move_head = update(_heads).where(_heads.c.chain == chain).values(seq=entry.chain_seq, hash=entry.hash)
    if session.get_bind().dialect.name == "postgresql":
        # one round trip: the entry's insert rides along with the head's update
        added = insert(_entries).values(values).returning(_entries.c.seq).cte("added")
        entry.seq = session.execute(move_head.returning(select(added.c.seq).scalar_subquery())).scalar_one()
    else:
        entry.seq = session.execute(insert(_entries).values(values).returning(_entries.c.seq)).scalar_one()
        session.execute(move_head)
    return entry


def _locked_head(session: Session, chain: str) -> tuple[int, str]:
    """The chain's tip, locked for this transaction; created on first use without racing other writers."""
    query = select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain == chain).with_for_update()
    row = session.execute(query).first()
    if row is None:
        dialect = session.get_bind().dialect.name
        insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(insert_(_heads).values(chain=chain, seq=0, hash=GENESIS).on_conflict_do_nothing())
        row = session.execute(query).one()
    return int(row[0]), str(row[1])


@dataclass(frozen=True)
class Break:
    """A problem found in the journal. ``seq`` is the journal number of the entry that shows it (None when
    no entry does, e.g. a chain whose every entry was removed); ``position`` its place in ``chain``."""

    seq: int | None
    problem: str
    chain: str = ""
    position: int | None = None


def chains(session: Session) -> list[str]:
    """Every chain that has entries or a head."""
    names = set(session.execute(select(_entries.c.chain).distinct()).scalars())
    names |= set(session.execute(select(_heads.c.chain)).scalars())
    return sorted(names)


def verify(session: Session, batch: int = 5000) -> list[Break]:
    """Walk every chain and report each entry that was edited, inserted, reordered or deleted."""
    problems: list[Break] = []
    for chain in chains(session):
        problems.extend(verify_chain(session, chain, batch))
    return problems


def verify_chain(session: Session, chain: str, batch: int = 5000) -> list[Break]:
    problems: list[Break] = []
    prev_hash, expected, last, last_seq = GENESIS, 1, 0, 0
    while True:
        rows = session.exec(
            sm_select(AuditEntry).where(AuditEntry.chain == chain, col(AuditEntry.chain_seq) > last)
            .order_by(col(AuditEntry.chain_seq)).limit(batch)
        ).all()
        if not rows:
            break
        for entry in rows:
            at = (entry.seq, chain, entry.chain_seq)
            if entry.chain_seq != expected:
                problems.append(Break(at[0], f"entries {expected}..{entry.chain_seq - 1} of chain {chain} before it "
                                      "are missing (deleted)", chain, entry.chain_seq))
            if entry.prev_hash != prev_hash:
                problems.append(Break(at[0], "does not follow the previous entry (inserted or reordered)", chain,
                                      entry.chain_seq))
            elif entry.seq is not None and entry.seq < last_seq:
                problems.append(Break(at[0], "is numbered before the previous entry of its chain (renumbered)",
                                      chain, entry.chain_seq))
            if chain_hash(entry.prev_hash, entry) != entry.hash:
                problems.append(Break(at[0], "content does not match its hash (edited)", chain, entry.chain_seq))
            prev_hash, expected, last, last_seq = entry.hash, entry.chain_seq + 1, entry.chain_seq, entry.seq or 0
    head = session.exec(sm_select(AuditHead).where(AuditHead.chain == chain)).first()
    if head is None:
        problems.append(Break(None, f"chain {chain} has entries but no head (its tip was removed)", chain, last))
    elif head.seq != last or head.hash != prev_hash:
        problems.append(Break(None, f"the tip of chain {chain} is entry {head.seq}, the last one found is {last} "
                                    "(entries removed at the end)", chain, head.seq))
    return problems
