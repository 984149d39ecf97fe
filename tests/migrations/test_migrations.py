"""Alembic migrations: the core branch, a plugin's branch, SQLite batch copies, orphans, purge and forget."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, Integer, Table, inspect, text
from sqlmodel import SQLModel

from core import schema
from core.audit import Actor
from core.cli.main import cli
from core.db import make_engine
from tests.conftest import add_clinic, fixture_plugin
from tests.migrations.conftest import NOTES, notes_entry_point
from tests.migrations.plugins import notes_plugin

ADMIN = Actor(7, "admin")


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(bool(os.environ.get("PRAXIS_TEST_DATABASE_URL")), reason=reason)


def tables(praxis) -> set[str]:
    return set(inspect(praxis.engine).get_table_names())


def heads(praxis) -> list[str]:
    with praxis.engine.connect() as conn:
        return schema.read_heads(conn)


def add_note(praxis, clinic_id: int, body: str = "call back") -> None:
    with praxis.engine.begin() as conn:
        conn.execute(text("INSERT INTO notes_plugin_note (clinic_id, text, created_at) VALUES (:c, :t, :at)"),
                     {"c": clinic_id, "t": body, "at": "2026-01-01 10:00:00"})


def count(praxis, table: str) -> int:
    with praxis.engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def audit_actions(praxis) -> list[str]:
    with praxis.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT action FROM core_audit ORDER BY seq"))]


def core_head() -> str:
    return schema.build_plan({}).branch_heads(schema.CORE)[-1]


# --- the core and a plugin branch ----------------------------------------------------------------


def test_a_fresh_database_is_migrated_to_the_core_head_with_every_core_table(make_praxis):
    praxis = make_praxis()
    assert heads(praxis) == schema.build_plan({}).branch_heads(schema.CORE)
    assert set(schema.core_tables()) <= tables(praxis)
    status = {row.branch: row for row in schema.current(praxis.runtime)}
    assert status["core"].state == "up to date"
    # a second start finds nothing to do
    assert schema.upgrade_core(praxis.engine, praxis.runtime) == []


def test_models_and_migrations_do_not_drift(make_praxis):
    """Fails when a core model changed without a migration: run `praxis db revision --core ...`."""
    praxis = make_praxis()
    with praxis.engine.connect() as conn:
        differences = schema.compare_models(conn)
    assert differences == [], "core models differ from the migrations:\n" + "\n".join(map(str, differences))


def test_a_core_table_without_migration_stops_the_start_with_the_fix(tmp_path):
    extra = Table("core_zz_unmigrated", SQLModel.metadata, Column("id", Integer, primary_key=True))
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(schema.ModelsWithoutMigration, match="core_zz_unmigrated.*praxis db revision --core"):
            schema.upgrade_core(engine)
    finally:
        SQLModel.metadata.remove(extra)
        engine.dispose()


def test_enabling_a_plugin_applies_its_branch_once(notes_praxis):
    praxis = notes_praxis
    budapest, wien = add_clinic(praxis, "Budapest"), add_clinic(praxis, "Wien", "AT", "Europe/Vienna", "de")
    assert "notes_plugin_note" not in tables(praxis)
    praxis.plugins.enable(budapest, NOTES, ADMIN)
    assert "notes_plugin_note" in tables(praxis)
    assert heads(praxis) == ["notes_plugin_0001"]  # implies core_0001 through depends_on
    add_note(praxis, budapest)
    assert schema.upgrade_plugin(praxis.runtime, NOTES) == []
    praxis.plugins.enable(wien, NOTES, ADMIN)
    assert count(praxis, "notes_plugin_note") == 1
    status = {row.branch: (row.current, row.state) for row in schema.current(praxis.runtime)}
    assert status[NOTES] == ("notes_plugin_0001", "up to date")
    assert status["core"][1] == "up to date"


def test_a_plugin_without_migrations_is_a_no_op(make_praxis):
    praxis = make_praxis([fixture_plugin("greeter")])
    before = heads(praxis)
    assert schema.upgrade_plugin(praxis.runtime, "greeter") == []
    assert heads(praxis) == before


def test_db_upgrade_and_current_commands(notes_praxis, cli_env, installed_plugins):
    installed_plugins([notes_entry_point()])
    cli_env(notes_praxis)
    runner = CliRunner()
    upgraded = runner.invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert "applied notes_plugin_0001 (notes_plugin): notes" in upgraded.output
    assert "notes_plugin_note" in tables(notes_praxis)
    again = runner.invoke(cli, ["db", "upgrade"])
    assert again.exit_code == 0 and "Everything was up to date" in again.output
    shown = runner.invoke(cli, ["db", "current"])
    assert shown.exit_code == 0, shown.output
    lines = {line.split()[0]: line.split() for line in shown.output.splitlines()[1:]}
    assert lines["core"][1:] == [core_head(), core_head(), "up", "to", "date"]
    assert lines[NOTES][1] == "notes_plugin_0001"


# --- SQLite batch copies and foreign keys ----------------------------------------------------------


def extra_core_revision(folder: Path, revision: str, body: str) -> Path:
    """A test-only core revision on top of the core head, in its own folder."""
    folder.mkdir(exist_ok=True)
    source = "\n".join([
        "import sqlalchemy as sa",
        "from alembic import op",
        f"revision = {revision!r}",
        f"down_revision = {core_head()!r}",
        "branch_labels = None",
        "depends_on = None",
        "",
        "def upgrade():",
        textwrap.indent(textwrap.dedent(body).strip(), "    "),
        "",
        "def downgrade():",
        "    pass",
        "",
    ])
    (folder / f"{revision}_test.py").write_text(source)
    return folder


RECREATE_CLINIC = """
    with op.batch_alter_table("core_clinic", recreate="always") as batch:
        batch.add_column(sa.Column("test_flag", sa.Integer(), nullable=True))
"""


@sqlite_only("batch table copies happen on SQLite only")
def test_a_core_batch_migration_on_sqlite_keeps_plugin_rows(notes_praxis, tmp_path):
    praxis = notes_praxis
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, NOTES, ADMIN)
    add_note(praxis, clinic)
    add_note(praxis, clinic, "second")
    plan = schema.build_plan(schema.plugin_migration_dirs(praxis.runtime),
                             core_dirs=(schema.CORE_VERSIONS_DIR, extra_core_revision(tmp_path / "v", "core_9001",
                                                                                      RECREATE_CLINIC)))
    applied = schema._run(praxis.engine, plan, "core@head")
    assert applied == ["core_9001"]
    assert "test_flag" in {c["name"] for c in inspect(praxis.engine).get_columns("core_clinic")}
    assert count(praxis, "notes_plugin_note") == 2
    with praxis.engine.connect() as conn:  # foreign keys are back on for the app's connections
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1


@sqlite_only("the hazard exists on SQLite only")
def test_the_same_batch_copy_with_foreign_keys_on_would_delete_plugin_rows(notes_praxis):
    """The control for the test above: why migrations turn foreign keys off on SQLite."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    praxis = notes_praxis
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, NOTES, ADMIN)
    add_note(praxis, clinic)
    with praxis.engine.begin() as conn:  # leave the note as the only row pointing at the clinic
        conn.execute(text("DELETE FROM core_plugin_state"))
        conn.execute(text("DELETE FROM core_plugin_health"))
    with praxis.engine.begin() as conn:
        with Operations(MigrationContext.configure(conn)).batch_alter_table("core_clinic", recreate="always") as b:
            b.add_column(Column("test_flag", Integer, nullable=True))
    assert count(praxis, "notes_plugin_note") == 0


@sqlite_only("PostgreSQL checks foreign keys itself")
def test_a_migration_leaving_broken_foreign_keys_is_rolled_back_and_listed(make_praxis, tmp_path):
    praxis = make_praxis()
    before = heads(praxis)
    folder = extra_core_revision(tmp_path / "v", "core_9002", """
        op.execute("INSERT INTO core_plugin_state (clinic_id, plugin, enabled, settings, secrets, updated_at) "
                   "VALUES (999, 'ghost', 0, '{}', '{}', '2026-01-01 00:00:00')")
    """)
    plan = schema.build_plan({}, core_dirs=(schema.CORE_VERSIONS_DIR, folder))
    with pytest.raises(schema.ForeignKeyViolations, match="core_plugin_state row 1 -> core_clinic"):
        schema._run(praxis.engine, plan, "core@head")
    assert heads(praxis) == before
    assert count(praxis, "core_plugin_state") == 0


# --- concurrent start-up --------------------------------------------------------------------------


def _upgrade_in_child(url: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    try:
        barrier.wait(timeout=30)
        schema.upgrade_core(engine)
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()


def test_four_processes_migrating_a_fresh_database_at_once_all_succeed(fresh_db_url):
    db_url = fresh_db_url
    """On PostgreSQL the advisory lock serialises them (without it, some fail with UniqueViolation)."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    children = [ctx.Process(target=_upgrade_in_child, args=(db_url, barrier, results)) for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
    outcomes = [results.get(timeout=5) for _ in children]
    assert outcomes == ["ok"] * 4
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert schema.read_heads(conn) == schema.build_plan({}).branch_heads(schema.CORE)
    finally:
        engine.dispose()


# --- a plugin whose code is gone -------------------------------------------------------------------


@pytest.fixture
def orphaned(notes_praxis, reopen):
    """The notes plugin was enabled, had data, and was uninstalled without purging."""
    clinic = add_clinic(notes_praxis)
    notes_praxis.plugins.enable(clinic, NOTES, ADMIN)
    add_note(notes_praxis, clinic)
    notes_praxis.close()
    return reopen([])


def test_the_guard_names_the_uninstalled_plugin_and_both_ways_out(orphaned, make_praxis):
    with pytest.raises(schema.OrphanedRevisions) as raised:
        make_praxis()
    message = str(raised.value)
    assert "plugin 'notes_plugin' (revision notes_plugin_0001)" in message
    assert "no longer installed" in message
    assert "praxis plugins forget notes_plugin" in message and "reinstall" in message
    assert raised.value.plugins == {NOTES: ["notes_plugin_0001"]}
    with pytest.raises(schema.OrphanedRevisions):
        schema.upgrade_all(orphaned.runtime)
    status = {row.branch: row.state for row in schema.current(orphaned.runtime)}
    assert status[NOTES] == "code missing"


def test_forget_keeps_the_data_and_lets_upgrades_run_again(orphaned, make_praxis):
    assert schema.forget_plugin(orphaned.runtime, NOTES, ADMIN) == ["notes_plugin_0001"]
    # the core's position, implied by the plugin's revision until now, is kept
    assert heads(orphaned) == [core_head()]
    assert count(orphaned, "notes_plugin_note") == 1
    assert "plugin.migrations_forgotten" in audit_actions(orphaned)
    praxis = make_praxis()  # starts (and migrates) again
    assert schema.upgrade_all(praxis.runtime).failed == {}
    with pytest.raises(schema.SchemaError, match="no migrations of plugin 'notes_plugin'"):
        schema.forget_plugin(praxis.runtime, NOTES, ADMIN)


def test_forget_and_db_current_through_the_cli(orphaned, cli_env, installed_plugins):
    installed_plugins([])
    cli_env(orphaned)
    runner = CliRunner()
    shown = runner.invoke(cli, ["db", "current"])
    assert shown.exit_code == 1 and "code missing" in shown.output and "praxis plugins forget" in shown.output
    forgot = runner.invoke(cli, ["plugins", "forget", NOTES])
    assert forgot.exit_code == 0, forgot.output
    assert "its tables and data are kept" in forgot.output
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0


def test_forget_refuses_a_plugin_whose_code_is_installed(notes_praxis):
    clinic = add_clinic(notes_praxis)
    notes_praxis.plugins.enable(clinic, NOTES, ADMIN)
    with pytest.raises(schema.SchemaError, match="is installed.*praxis plugins purge notes_plugin"):
        schema.forget_plugin(notes_praxis.runtime, NOTES, ADMIN)


# --- purge ------------------------------------------------------------------------------------------


def test_purge_lists_then_drops_the_plugin_tables_and_state(notes_praxis, cli_env, installed_plugins):
    praxis = notes_praxis
    clinic = add_clinic(praxis, "Budapest")
    praxis.plugins.enable(clinic, NOTES, ADMIN)
    add_note(praxis, clinic)
    add_note(praxis, clinic, "another")
    installed_plugins([notes_entry_point()])
    cli_env(praxis)
    runner = CliRunner()

    refused = runner.invoke(cli, ["plugins", "purge", NOTES, "--yes"])
    assert refused.exit_code == 1 and f"enabled in Budapest ({clinic})" in refused.output

    praxis.plugins.disable(clinic, NOTES, ADMIN)
    dry = runner.invoke(cli, ["plugins", "purge", NOTES, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "drop table notes_plugin_note  2 row(s)" in dry.output and "notes_plugin_0001" in dry.output
    assert "Dry run" in dry.output and "notes_plugin_note" in tables(praxis)

    purged = runner.invoke(cli, ["plugins", "purge", NOTES, "--yes"])
    assert purged.exit_code == 0, purged.output
    assert "reverted notes_plugin_0001" in purged.output
    assert "notes_plugin_note" not in tables(praxis)
    assert heads(praxis) == [core_head()]
    assert count(praxis, "core_plugin_state WHERE plugin = 'notes_plugin'") == 0
    assert audit_actions(praxis)[-1] == "plugin.purged"

    # enabling again starts from an empty table (the "already at head" cache was dropped)
    praxis.runtime.state.invalidate()
    praxis.plugins.enable(clinic, NOTES, ADMIN)
    assert count(praxis, "notes_plugin_note") == 0


def test_purge_needs_the_plugin_code(orphaned):
    with pytest.raises(schema.SchemaError, match="needs its code installed.*praxis plugins forget notes_plugin"):
        schema.purge_plan(orphaned.runtime, NOTES)


# --- writing revisions -------------------------------------------------------------------------------


def test_autogenerate_writes_a_plugin_base_revision_with_only_its_own_tables(tmp_path):
    folder = tmp_path / "versions"
    folder.mkdir()
    path = schema.write_revision(NOTES, "notes", plugin_dirs={NOTES: folder})
    source = path.read_text()
    assert path.name == "notes_plugin_0001_notes.py"
    assert "branch_labels: str | Sequence[str] | None = ('notes_plugin',)" in source.replace('"', "'")
    assert f"depends_on: str | Sequence[str] | None = '{core_head()}'" in source.replace('"', "'")
    assert "import sqlmodel" in source
    assert re.findall(r'create_table\(\s*"(\w+)"', source) == ["notes_plugin_note"]


def test_an_updated_plugin_gets_its_new_revisions_at_the_next_start(notes_praxis, tmp_path, monkeypatch):
    praxis = notes_praxis
    folder = tmp_path / "notes_versions"
    shutil.copytree(notes_plugin.praxis_migrations_dir(), folder)
    monkeypatch.setattr(schema, "plugin_migration_dirs", lambda runtime, **kw: {NOTES: folder})
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, NOTES, ADMIN)
    assert schema.upgrade_core(praxis.engine, praxis.runtime) == []
    (folder / "notes_plugin_0002_pinned.py").write_text("\n".join([
        "import sqlalchemy as sa",
        "from alembic import op",
        "revision = 'notes_plugin_0002'",
        "down_revision = 'notes_plugin_0001'",
        "branch_labels = None",
        "depends_on = None",
        "def upgrade():",
        "    with op.batch_alter_table('notes_plugin_note') as batch:",
        "        batch.add_column(sa.Column('pinned', sa.Boolean(), nullable=True))",
        "def downgrade():",
        "    with op.batch_alter_table('notes_plugin_note') as batch:",
        "        batch.drop_column('pinned')",
        "",
    ]))
    schema.clear_caches()
    assert schema.upgrade_core(praxis.engine, praxis.runtime) == ["notes_plugin_0002"]
    assert "pinned" in {c["name"] for c in inspect(praxis.engine).get_columns("notes_plugin_note")}
    assert heads(praxis) == ["notes_plugin_0002"]


def test_purge_refuses_tables_whose_migrations_were_forgotten(orphaned, reopen):
    schema.forget_plugin(orphaned.runtime, NOTES, ADMIN)
    reinstalled = reopen([notes_entry_point()])
    with reinstalled.engine.connect() as conn:
        clinic = conn.execute(text("SELECT id FROM core_clinic")).scalar_one()
    reinstalled.plugins.disable(clinic, NOTES, ADMIN)
    assert schema.purge_plan(reinstalled.runtime, NOTES).tables == {"notes_plugin_note": 1}
    with pytest.raises(schema.SchemaError, match="none of its migrations is recorded"):
        schema.purge_plugin(reinstalled.runtime, NOTES, ADMIN)
    assert count(reinstalled, "notes_plugin_note") == 1
