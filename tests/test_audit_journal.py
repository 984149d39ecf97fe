"""The audit journal is hash-chained: edits, insertions and deletions are reported."""

from __future__ import annotations

import os

from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import Session, select

from core import audit
from core.cli.main import cli
from core.db import transaction
from core.models.audit import AuditEntry


def _fill(praxis, n=5):
    for i in range(n):
        with transaction(praxis.engine) as session:
            audit.record(session, audit.Actor(7, "Dr. Kovács"), "patient.updated", clinic_id=1,
                         target=f"patient:{i}", data={"family_name": ["Nagy", "Kiss"]})


def _run_verify(praxis, monkeypatch):
    s = praxis.settings
    for key, value in {"PRAXIS_DATA_DIR": str(s.data_dir), "DATABASE_URL": s.url, "PRAXIS_MASTER_KEY": s.master_key,
                       "PRAXIS_PLUGINS_FILE": str(s.plugins_file)}.items():
        monkeypatch.setenv(key, value)
    from core.config import get_settings
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, ["audit", "verify"])
    finally:
        get_settings.cache_clear()


def test_intact_journal_verifies(make_praxis, monkeypatch):
    praxis = make_praxis()
    _fill(praxis)
    result = _run_verify(praxis, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "5 entries verified" in result.output


def test_edited_entry_is_named(make_praxis, monkeypatch):
    praxis = make_praxis()
    _fill(praxis)
    with praxis.engine.begin() as connection:
        connection.execute(text("UPDATE core_audit SET target = 'patient:99' WHERE seq = 3"))
    result = _run_verify(praxis, monkeypatch)
    assert result.exit_code == 1
    assert "entry 3: content does not match its hash (edited)" in result.output


def _chain_rows(praxis, chain):
    with praxis.engine.connect() as connection:
        return connection.execute(text("SELECT seq, chain_seq FROM core_audit WHERE chain = :c ORDER BY chain_seq"),
                                  {"c": chain}).all()


def test_deleted_and_inserted_entries_are_named(make_praxis):
    praxis = make_praxis()
    for _ in range(3):  # three entries about one patient: one chain, positions 1..3
        with transaction(praxis.engine) as session:
            audit.record(session, audit.Actor(7, "Dr. Kovács"), "patient.viewed", clinic_id=1, target="patient:1")
    _fill(praxis, 6)
    chain = audit.chain_of(1, "patient:1")
    rows = _chain_rows(praxis, chain)
    assert [position for _, position in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 3
    with praxis.engine.begin() as connection:
        connection.execute(text("DELETE FROM core_audit WHERE seq = :s"), {"s": rows[1][0]})
    with Session(praxis.engine) as session:
        problems = {(p.seq, p.chain, p.position, p.problem.split(" ")[0]) for p in audit.verify(session)}
    # the entry after the gap is named twice: entries before it are missing, and it follows another hash
    assert problems == {(rows[2][0], chain, 3, "entries"), (rows[2][0], chain, 3, "does")}
    with praxis.engine.begin() as connection:
        connection.execute(text("DELETE FROM core_audit WHERE seq = :s"), {"s": rows[-1][0]})
    with Session(praxis.engine) as session:
        assert any("tip" in p.problem and p.chain == chain for p in audit.verify(session))


def test_inserted_entry_is_named(make_praxis):
    praxis = make_praxis()
    _fill(praxis, 4)
    with Session(praxis.engine) as session:
        first = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).first()
        forged = {c: getattr(first, c) for c in ("chain", "at", "actor_id", "actor_name", "clinic_id", "action",
                                                 "target", "data", "prev_hash", "hash")}
    with transaction(praxis.engine) as session:
        # a forged entry squeezed in as position 2 of the first entry's chain, the rest moved up by one
        session.execute(text("UPDATE core_audit SET chain_seq = chain_seq + 100 WHERE chain = :c AND chain_seq > 1"),
                        {"c": forged["chain"]})
        session.execute(text("UPDATE core_audit SET chain_seq = chain_seq - 99 WHERE chain = :c AND chain_seq > 100"),
                        {"c": forged["chain"]})
        entry = AuditEntry(**{**forged, "chain_seq": 2, "target": "patient:forged"})
        session.add(entry)
        session.flush()
        forged_seq = entry.seq
    with Session(praxis.engine) as session:
        problems = audit.verify(session)
    assert any(p.seq == forged_seq and "inserted" in p.problem for p in problems)
    assert any(p.seq == forged_seq and "edited" in p.problem for p in problems)


def test_each_clinic_has_its_own_chains(make_praxis, monkeypatch):
    praxis = make_praxis()
    with transaction(praxis.engine) as session:
        for clinic_id in (1, 2, None):
            for i in range(3):
                audit.record(session, audit.Actor(None, "t"), "x.done", clinic_id=clinic_id, target=f"thing:{i}")
    with Session(praxis.engine) as session:
        names = audit.chains(session)
        entries = session.exec(select(AuditEntry)).all()
    assert {e.chain for e in entries} == set(names)
    assert all(e.chain == audit.chain_of(e.clinic_id, e.target) for e in entries)
    assert {n.split("/")[0] for n in names} == {"clinic:1", "clinic:2", "global"}
    # the same target in two clinics goes to two chains that each start at position 1
    assert {e.chain_seq for e in entries if e.target == "thing:0"} == {1}
    result = _run_verify(praxis, monkeypatch)
    assert result.exit_code == 0, result.output
    assert f"9 entries verified in {len(names)} chains" in result.output
    with praxis.engine.begin() as connection:  # moving an entry to another clinic is an edit
        connection.execute(text("UPDATE core_audit SET clinic_id = 2 WHERE clinic_id = 1 AND target = 'thing:1'"))
    result = _run_verify(praxis, monkeypatch)
    assert result.exit_code == 1 and "content does not match its hash (edited)" in result.output


def test_a_chain_emptied_with_its_entries_is_reported(make_praxis):
    praxis = make_praxis()
    _fill(praxis, 2)
    with praxis.engine.begin() as connection:
        connection.execute(text("DELETE FROM core_audit WHERE seq = 1"))
        connection.execute(text("DELETE FROM core_audit WHERE seq = 2"))
    with Session(praxis.engine) as session:
        problems = audit.verify(session)
    assert problems and all(p.seq is None and "entries removed at the end" in p.problem for p in problems)


def test_concurrent_writers_keep_one_valid_chain(make_praxis):
    from concurrent.futures import ThreadPoolExecutor

    praxis = make_praxis()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: _fill(praxis, 1), range(40)))
    with Session(praxis.engine) as session:
        assert audit.verify(session) == []
        assert session.exec(text("SELECT COUNT(*) FROM core_audit")).one()[0] == 40
        positions = session.exec(text("SELECT chain, chain_seq FROM core_audit")).all()
    by_chain: dict[str, list[int]] = {}
    for chain, position in positions:
        by_chain.setdefault(chain, []).append(position)
    assert all(sorted(p) == list(range(1, len(p) + 1)) for p in by_chain.values())
    assert os.environ.get("PRAXIS_TEST_DATABASE_URL") or praxis.settings.is_sqlite


TRICKY = {"name": "Kovács \"Öcsi\" 김민준 Иван 张伟", "nested": {"b": [1, 2.5, None, True], "a": "\\n\t"},
          "empty": {}, "when": "2026-03-02T05:00:00+00:00"}


def test_entries_left_for_the_commit_are_written_after_every_other_commit_hook(make_praxis):
    """``at_commit`` entries are written when the transaction commits, after the other ``before_commit``
    hooks (messaging's planning among them), and chain like any other entry."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session as OrmSession

    praxis = make_praxis()
    seen_by_hook = []

    def count_entries(session):
        seen_by_hook.append(session.connection().execute(text("SELECT COUNT(*) FROM core_audit")).scalar_one())

    event.listen(OrmSession, "before_commit", count_entries)
    try:
        with transaction(praxis.engine) as session:
            written = audit.record(session, audit.Actor(7, "Dr. Kovács"), "appointment.created", clinic_id=1,
                                   target="appointment:1", data=TRICKY, at_commit=True)
            assert written is None
            audit.record(session, audit.Actor(7, "Dr. Kovács"), "appointment.overbooked", clinic_id=1,
                         target="appointment:1", data={"x": 1}, at_commit=True)
            now_written = audit.record(session, audit.Actor(None, "t"), "patient.viewed", clinic_id=1,
                                       target="patient:1", data=TRICKY)
            assert now_written is not None and now_written.chain_seq == 1
    finally:
        event.remove(OrmSession, "before_commit", count_entries)
    assert seen_by_hook == [1]  # only the entry written at once was there when the other hook ran
    with Session(praxis.engine) as session:
        entries = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert audit.verify(session) == []
    assert [e.action for e in entries] == ["patient.viewed", "appointment.created", "appointment.overbooked"]
    assert entries[1].data == TRICKY and entries[1].chain == entries[2].chain
    assert [entries[1].chain_seq, entries[2].chain_seq] == [1, 2]
    assert entries[2].prev_hash == entries[1].hash


def test_entries_left_for_the_commit_of_a_rolled_back_transaction_are_never_written(make_praxis):
    praxis = make_praxis()
    with Session(praxis.engine) as session:
        audit.record(session, audit.Actor(None, "t"), "x.done", clinic_id=1, target="thing:1", at_commit=True)
        session.rollback()
        session.execute(text("SELECT 1"))  # the same session, a new transaction
        audit.record(session, audit.Actor(None, "t"), "y.done", clinic_id=1, target="thing:2", at_commit=True)
        session.commit()
    with Session(praxis.engine) as session:
        assert [e.action for e in session.exec(select(AuditEntry)).all()] == ["y.done"]


def test_an_entry_recorded_in_a_savepoint_goes_with_the_savepoint(make_praxis):
    praxis = make_praxis()
    with transaction(praxis.engine) as session:
        nested = session.begin_nested()
        assert audit.record(session, audit.Actor(None, "t"), "kept.not", clinic_id=1, at_commit=True) is not None
        nested.rollback()
        with session.begin_nested():
            audit.record(session, audit.Actor(None, "t"), "kept", clinic_id=1, at_commit=True)
    with Session(praxis.engine) as session:
        assert [e.action for e in session.exec(select(AuditEntry)).all()] == ["kept"]
        assert audit.verify(session) == []
