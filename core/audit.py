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

from sqlalchemy import BigInteger, String, bindparam, event, insert, select, text, update
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


@dataclass(frozen=True)
class Written:
    """Where an entry went: its journal number, chain, place in the chain and hash."""

    seq: int
    chain: str
    chain_seq: int
    hash: str


@dataclass
class _Entry:
    """An entry not yet placed in its chain: everything but its position and hashes."""

    values: dict[str, Any]  # the columns other than chain_seq, prev_hash and hash
    prefix: str  # canonical JSON up to the chain position...
    suffix: str  # ...and after it


def _prepare(actor: Actor, action: str, clinic_id: int | None, target: str | None,
             data: dict[str, Any] | None) -> _Entry:
    chain = chain_of(clinic_id, target)
    at = now()
    plain = json.loads(json.dumps(data or {}, default=str))
    values = {"chain": chain, "at": at, "actor_id": actor.id, "actor_name": actor.name, "clinic_id": clinic_id,
              "action": action, "target": target, "data": plain}
    # ``canonical`` split around "seq" (keys are sorted: action, actor_id, actor_name, at, chain, clinic_id,
    # data | seq | target), so the position can be filled in where the chain's head is read
    at_utc = at if at.tzinfo else at.replace(tzinfo=UTC)
    first = json.dumps({"chain": chain, "at": at_utc.astimezone(UTC).isoformat(timespec="microseconds"),
                        "actor_id": actor.id, "actor_name": actor.name, "clinic_id": clinic_id, "action": action,
                        "data": plain}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    last = json.dumps({"target": target}, separators=(",", ":"), ensure_ascii=False)
    return _Entry(values, first[:-1] + ',"seq":', "," + last[1:])


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    clinic_id: int | None = None,
    target: str | None = None,
    data: dict[str, Any] | None = None,
    at_commit: bool = False,
) -> Written | None:
    """Append one entry in the caller's transaction (its chain's head stays locked until the end).

    With ``at_commit`` the entry is written when the transaction commits, after every other
    ``before_commit`` hook (messaging's planning included), so the chain's head is locked only for the
    last statement and the commit; a rolled-back transaction writes nothing. The entry keeps the time of
    this call. Inside a savepoint the entry is written at once (the savepoint may still roll back alone).
    Returns where the entry went, or None when it is left for the commit.
    """
    entry = _prepare(actor, action, clinic_id, target, data)
    if at_commit and session.get_nested_transaction() is None:
        root = session.get_transaction() or session.begin()
        pending = session.info.get(_PENDING)
        if pending is None or pending[0] is not root:
            pending = session.info[_PENDING] = (root, [])
        pending[1].append(entry)
        if not session.info.get(_LISTENING):
            # an instance's listeners run after the class-level ones, so these entries go last
            event.listen(session, "before_commit", _write_pending)
            session.info[_LISTENING] = True
        return None
    return _write(session, entry)


_PENDING = "praxis.audit.pending"
_LISTENING = "praxis.audit.listening"


def _write_pending(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint's commit: the outer commit writes them
    pending = session.info.pop(_PENDING, None)
    if pending is None or pending[0] is not session.get_transaction():
        return  # nothing, or left over from a transaction that rolled back
    # chains in a fixed order, so two transactions writing to the same chains cannot deadlock
    for entry in sorted(pending[1], key=lambda e: e.values["chain"]):
        _write(session, entry)


# PostgreSQL: lock the head, insert the entry (its hash computed by the database from the head's hash and
# position) and move the head, in one round trip. ``sha256`` needs PostgreSQL 11.
_PG_APPEND = text("""
WITH added AS (
    INSERT INTO core_audit (chain, chain_seq, at, actor_id, actor_name, clinic_id, action, target, data,
                            prev_hash, hash)
    SELECT h.chain, h.seq + 1, :at, :actor_id, :actor_name, :clinic_id, :action, :target, :data, h.hash,
           encode(sha256(convert_to(h.hash || :prefix || (h.seq + 1)::text || :suffix, 'UTF8')), 'hex')
    FROM core_audit_head h WHERE h.chain = :chain
    FOR UPDATE
    RETURNING seq, chain_seq, hash)
UPDATE core_audit_head SET seq = added.chain_seq, hash = added.hash FROM added
WHERE core_audit_head.chain = :chain
RETURNING added.seq, added.chain_seq, added.hash
""").bindparams(bindparam("at", type_=_entries.c.at.type), bindparam("data", type_=_entries.c.data.type),
                bindparam("prefix", type_=String()), bindparam("suffix", type_=String()),
                bindparam("chain", type_=String()), bindparam("actor_name", type_=String()),
                bindparam("action", type_=String()), bindparam("target", type_=String()),
                bindparam("actor_id", type_=BigInteger()), bindparam("clinic_id", type_=BigInteger()))
_HEAD = select(_heads.c.seq, _heads.c.hash).where(_heads.c.chain == bindparam("chain")).with_for_update()
_INSERT = insert(_entries).returning(_entries.c.seq)
_MOVE = update(_heads).where(_heads.c.chain == bindparam("head")).values(seq=bindparam("seq"), hash=bindparam("hash"))


def _write(session: Session, entry: _Entry) -> Written:
    connection = session.connection()
    chain = entry.values["chain"]
    if connection.dialect.name == "postgresql":
        params = {**entry.values, "prefix": entry.prefix, "suffix": entry.suffix}
        row = connection.execute(_PG_APPEND, params).first()
        if row is None:  # the chain's first entry: make its head, then append
            _create_head(connection, chain)
            row = connection.execute(_PG_APPEND, params).one()
        return Written(int(row[0]), chain, int(row[1]), str(row[2]))
    head = connection.execute(_HEAD, {"chain": chain}).first()
    if head is None:
        _create_head(connection, chain)
        head = connection.execute(_HEAD, {"chain": chain}).one()
    position, prev_hash = int(head[0]) + 1, str(head[1])
    digest = hashlib.sha256(f"{prev_hash}{entry.prefix}{position}{entry.suffix}".encode()).hexdigest()
    seq = connection.execute(_INSERT, {**entry.values, "chain_seq": position, "prev_hash": prev_hash,
                                       "hash": digest}).scalar_one()
    connection.execute(_MOVE, {"head": chain, "seq": position, "hash": digest})
    return Written(int(seq), chain, position, digest)


def _create_head(connection: Any, chain: str) -> None:
    """A chain's head at genesis, made without racing another writer doing the same."""
    insert_ = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(insert_(_heads).values(chain=chain, seq=0, hash=GENESIS).on_conflict_do_nothing())


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
