"""The audit journal is hash-chained: edits, insertions and deletions are reported."""

from __future__ import annotations

import os

from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import Session

from core import audit
from core.cli.main import cli
from core.db import transaction


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


def test_deleted_and_inserted_entries_are_named(make_praxis):
    praxis = make_praxis()
    _fill(praxis, 6)
    with praxis.engine.begin() as connection:
        connection.execute(text("DELETE FROM core_audit WHERE seq = 2"))
    with Session(praxis.engine) as session:
        problems = {(p.seq, p.problem.split(" ")[0]) for p in audit.verify(session)}
    assert (2, "entries") in problems and (3, "does") in problems
    with praxis.engine.begin() as connection:
        connection.execute(text("DELETE FROM core_audit WHERE seq = 6"))
    with Session(praxis.engine) as session:
        assert any("tip" in p.problem for p in audit.verify(session))


def test_concurrent_writers_keep_one_valid_chain(make_praxis):
    from concurrent.futures import ThreadPoolExecutor

    praxis = make_praxis()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: _fill(praxis, 1), range(40)))
    with Session(praxis.engine) as session:
        assert audit.verify(session) == []
        assert session.exec(text("SELECT COUNT(*) FROM core_audit")).one()[0] == 40
    assert os.environ.get("PRAXIS_TEST_DATABASE_URL") or praxis.settings.is_sqlite
