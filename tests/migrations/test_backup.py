"""`praxis backup` / `praxis restore` of the embedded SQLite database (these run in both CI passes: they
always use an SQLite file of their own)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import Session, select

from core import audit, backup
from core.audit import Actor
from core.cli.main import cli
from core.config import Settings
from core.db import make_engine, transaction
from core.models.audit import AuditEntry
from core.models.clinic import Clinic
from tests.conftest import add_clinic


@pytest.fixture
def embedded(make_praxis):
    """A Praxis on its default SQLite file in the data directory, with one clinic."""
    praxis = make_praxis(database_url=None)
    add_clinic(praxis, "Budapest")
    return praxis


def clinic_names(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM core_clinic ORDER BY id")]
    finally:
        conn.close()


def add_clinic_audited(praxis, name: str) -> None:
    """One transaction: a clinic and its audit entry."""
    with transaction(praxis.engine) as session:
        clinic = Clinic(name=name, country="HU", timezone="Europe/Budapest", locale="hu")
        session.add(clinic)
        session.flush()
        audit.record(session, Actor(None, "test"), "clinic.created", target=f"clinic:{clinic.id}")


def test_backup_is_consistent_while_the_app_writes(embedded):
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        while not stop.is_set():
            written.append(f"Clinic {len(written)}")
            add_clinic_audited(embedded, written[-1])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 3:
            stop.wait(0.01)
        steps: list[tuple[int, int]] = []
        result = backup.backup(embedded.settings, progress=lambda remaining, total: steps.append((remaining, total)))
    finally:
        stop.set()
        thread.join()
    assert result.path.parent == embedded.settings.data_dir / "backups"
    assert steps and steps[-1][0] == 0
    copy = make_engine(f"sqlite:///{result.path}")
    try:
        with Session(copy) as session:
            clinics = session.exec(select(Clinic)).all()
            audited = {e.target for e in session.exec(select(AuditEntry)).all()}
            assert audit.verify(session) == []  # the hash chain is whole: no half-copied transaction
    finally:
        copy.dispose()
    assert len(clinics) >= 3
    assert {f"clinic:{c.id}" for c in clinics if c.name != "Budapest"} <= audited
    assert result.clinics == len(clinics) and result.revisions


def test_restore_refuses_files_that_are_not_praxis_databases(embedded, tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    with pytest.raises(backup.BackupError, match="not a Praxis database \\(not an SQLite file\\)"):
        backup.restore(embedded.settings, text_file)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(backup.BackupError, match=r"not a Praxis database \(no alembic_version, core_audit, core_"):
        backup.restore(embedded.settings, other)
    assert clinic_names(backup.database_path(embedded.settings)) == ["Budapest"]


def test_restore_keeps_a_copy_of_the_current_database_and_brings_back_the_backup(embedded):
    saved = backup.backup(embedded.settings).path
    add_clinic(embedded, "Wien", "AT", "Europe/Vienna", "de")
    result = backup.restore(embedded.settings, saved)
    assert result.previous is not None and result.previous.name.startswith("pre-restore-")
    assert clinic_names(result.previous) == ["Budapest", "Wien"]
    assert clinic_names(backup.database_path(embedded.settings)) == ["Budapest"]
    with embedded.engine.connect() as conn:  # the running engine sees the restored content
        assert conn.execute(text("SELECT COUNT(*) FROM core_clinic")).scalar_one() == 1


def test_backup_and_restore_commands_show_progress(embedded, cli_env, tmp_path):
    cli_env(embedded)
    runner = CliRunner()
    target = tmp_path / "copy.db"
    made = runner.invoke(cli, ["backup", "--output", str(target)])
    assert made.exit_code == 0, made.output
    assert "Backing up" in made.output and f"Backup written to {target}" in made.output
    again = runner.invoke(cli, ["backup", "--output", str(target)])
    assert again.exit_code == 1 and "exists already" in again.output
    restored = runner.invoke(cli, ["restore", str(target), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert "Restoring" in restored.output and "previous database was saved to" in restored.output
    refused = runner.invoke(cli, ["restore", str(target)], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output


def test_on_postgresql_both_commands_point_to_pg_dump(monkeypatch, tmp_path):
    from core.config import get_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://praxis:secret@db.example:5432/praxis")
    monkeypatch.setenv("PRAXIS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        dumped = runner.invoke(cli, ["backup"])
        assert dumped.exit_code == 2 and "pg_dump --format=custom" in dumped.output
        assert "secret" not in dumped.output
        (tmp_path / "x.db").write_bytes(b"")
        restored = runner.invoke(cli, ["restore", str(tmp_path / "x.db"), "--yes"])
        assert restored.exit_code == 2 and "pg_restore" in restored.output
    finally:
        get_settings.cache_clear()
    assert not Settings(database_url="postgresql://x@y/z").is_sqlite
