"""A start on a database at head answers from the revision files read as text, without Alembic; anything the
text reading is unsure of goes through Alembic as before."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

from core import schema
from core.audit import Actor
from tests.conftest import add_clinic
from tests.migrations.conftest import NOTES
from tests.migrations.plugins import notes_plugin


def test_the_text_reading_gives_alembics_graph_for_the_core_and_every_installed_plugin(make_praxis):
    praxis = make_praxis(list(entry_points(group="praxis.plugins")))
    dirs = schema.plugin_migration_dirs(praxis.runtime)
    assert dirs  # the first-party plugins with tables
    graph, plan = schema.quick_graph(dirs), schema.build_plan(dirs)
    assert graph is not None and not plan.problems
    assert graph.owner == plan.owner
    for branch in plan.branches():
        assert graph.branch_heads(branch) == plan.branch_heads(branch)
    some_heads = [plan.branch_heads(b)[-1] for b in plan.branches()]
    assert graph.applied(some_heads) == plan.applied(some_heads)


def test_a_start_at_head_does_not_import_alembic(make_settings):
    settings = make_settings()
    code = textwrap.dedent("""
        import sys
        from core.app_context import bootstrap
        from core.config import Settings
        bootstrap(Settings(**%r))
        print("alembic" in sys.modules)
    """) % {k: str(v) for k, v in settings.model_dump().items() if v is not None and k in (
        "data_dir", "database_url", "plugins_file", "master_key")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "False", out.stderr


def test_unsure_reading_falls_back_to_alembic_and_still_upgrades(notes_praxis, tmp_path, monkeypatch):
    folder = tmp_path / "notes_versions"
    shutil.copytree(notes_plugin.praxis_migrations_dir(), folder)
    monkeypatch.setattr(schema, "plugin_migration_dirs", lambda runtime, **kw: {NOTES: folder})
    clinic = add_clinic(notes_praxis)
    notes_praxis.plugins.enable(clinic, NOTES, Actor.system("test"))
    schema.clear_caches()
    assert schema.quick_graph({NOTES: folder}) is not None
    (folder / "notes_plugin_0002_multi.py").write_text("\n".join([
        "import sqlalchemy as sa",
        "from alembic import op",
        "revision = 'notes_plugin_0002'",
        "down_revision = (",  # spread over lines: the text reading gives up
        "    'notes_plugin_0001',",
        ")",
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
    assert schema.quick_graph({NOTES: folder}) is None
    assert schema.upgrade_core(notes_praxis.engine, notes_praxis.runtime) == ["notes_plugin_0002"]
    assert schema.upgrade_core(notes_praxis.engine, notes_praxis.runtime) == []
