"""Bring the database schema up to date with Alembic: the core branch and one branch per plugin.

There is no ``alembic.ini``: the configuration is built here, in code. ``script_location`` is
``core/migrations``; ``version_locations`` are the core's ``versions/`` folder plus the folder each
plugin returns from ``praxis_migrations_dir``. Core revisions are ``core_NNNN`` (branch label ``core``);
a plugin's revisions are ``<plugin>_NNNN``, its base revision carries ``branch_labels=("<plugin>",)``
and ``depends_on`` a core revision.

Every migration run:

* on SQLite turns foreign keys off on the connection *before* the transaction (a batch table copy
  would otherwise cascade-delete the rows of plugin tables pointing at the copied table), runs all
  steps in one transaction and refuses to commit if ``PRAGMA foreign_key_check`` finds violations;
* on PostgreSQL holds ``pg_advisory_lock`` so processes starting at once migrate one after another;
* first compares the database's revisions with the known ones and names the plugin whose code is
  gone (``OrphanedRevisions``) instead of Alembic's "Can't locate revision".

``alembic_version`` stores only leaf revisions: a plugin revision implies the core revision it depends
on. So that ``praxis plugins forget`` never loses the core's position, each run also records every
branch's position in ``alembic_branches`` (bookkeeping like ``alembic_version``, not a model).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel

import core.models  # noqa: F401  (registers the core tables)

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

    from core.audit import Actor
    from core.plugins.runtime import PluginRuntime

log = logging.getLogger(__name__)

CORE = "core"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
CORE_VERSIONS_DIR = MIGRATIONS_DIR / "versions"
VERSION_TABLE = "alembic_version"
BRANCH_TABLE = "alembic_branches"
#: Key of the PostgreSQL advisory lock every migration run holds ("praxis" + 1).
LOCK_KEY = 0x707261786973_0001
#: Revision ids longer than Alembic's 32 are allowed: plugin names have up to 41 characters.
MAX_REVISION_LENGTH = 64

Progress = Callable[[str], None]


class SchemaError(RuntimeError):
    """The schema cannot be brought up to date; the message says why and what to do."""


class OrphanedRevisions(SchemaError):
    """The database holds revisions whose code is not installed (``plugins``: name -> revisions)."""

    def __init__(self, message: str, plugins: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.plugins = plugins


class ForeignKeyViolations(SchemaError):
    """A migration left rows pointing at missing rows; it was rolled back."""

    def __init__(self, violations: list[tuple[str, Any, str]]) -> None:
        lines = "\n".join(f"  {table} row {rowid} -> {parent}" for table, rowid, parent in violations[:50])
        more = f"\n  ... and {len(violations) - 50} more" if len(violations) > 50 else ""
        super().__init__(
            f"the migration was rolled back: {len(violations)} foreign key violation(s) "
            f"(table row -> missing parent):\n{lines}{more}"
        )
        self.violations = violations


class ModelsWithoutMigration(SchemaError):
    """Core models define tables or columns that no migration creates."""


# --- which revisions exist -------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The known revisions: the core's plus those of each plugin whose migrations loaded."""

    script: ScriptDirectory
    locations: dict[str, Path]
    owner: dict[str, str]
    problems: dict[str, str] = field(default_factory=dict)
    dirs: tuple[Path, ...] = ()

    def branch_heads(self, branch: str) -> list[str]:
        heads = []
        for rev_id, owner in self.owner.items():
            if owner != branch:
                continue
            rev = self.script.revision_map.get_revision(rev_id)
            assert rev is not None
            if not any(self.owner.get(child) == branch for child in rev.nextrev):
                heads.append(rev_id)
        return sorted(heads)

    def branches(self) -> list[str]:
        return [CORE] + sorted(b for b in self.locations if b != CORE)

    def applied(self, heads: Iterable[str]) -> set[str]:
        """Every known revision the database has, given its ``alembic_version`` rows."""
        known = tuple(h for h in heads if h in self.owner)
        if not known:
            return set()
        revmap = self.script.revision_map
        nodes = revmap._get_ancestor_nodes(revmap.get_revisions(known), check=False, include_dependencies=True)
        return {n.revision for n in nodes if n is not None}

    def positions(self, heads: Iterable[str]) -> dict[str, str]:
        """branch -> its newest applied revision(s), comma-separated, for every known branch applied."""
        applied = self.applied(heads)
        out = {}
        for branch in self.branches():
            mine = {r for r in applied if self.owner.get(r) == branch}
            tips = []
            for rev_id in mine:
                rev = self.script.revision_map.get_revision(rev_id)
                assert rev is not None
                if not any(child in mine for child in rev.nextrev):
                    tips.append(rev_id)
            if tips:
                out[branch] = ",".join(sorted(tips))
        return out


_PLANS: dict[tuple[Any, ...], Plan] = {}
_PLANS_LOCK = threading.Lock()


def _config(locations: Iterable[Path], url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations).replace("%", "%%"))
    cfg.set_main_option("timezone", "UTC")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _load_script(locations: list[Path]) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config(locations))
    script.revision_map.heads  # noqa: B018  (loads every revision file now, so errors surface here)
    return script


def _owner_of(script: Script, dirs: dict[Path, str]) -> str | None:
    return dirs.get(Path(script.path).resolve().parent)


def _validate(branch: str, revisions: list[Script], owner: dict[str, str]) -> str | None:
    for rev in revisions:
        if not rev.revision.startswith(f"{branch}_"):
            return f"revision {rev.revision!r} is not prefixed with '{branch}_'"
        if len(rev.revision) > MAX_REVISION_LENGTH:
            return f"revision {rev.revision!r} is longer than {MAX_REVISION_LENGTH} characters"
        downs = [d for d in (rev._versioned_down_revisions or ())]
        if not downs and branch not in (rev.branch_labels or set()):
            return f"base revision {rev.revision!r} needs branch_labels=({branch!r},)"
        foreign = [d for d in downs if owner.get(d) != branch]
        if foreign:
            return f"revision {rev.revision!r} revises {foreign[0]!r} of another branch (use depends_on)"
        if branch != CORE:
            for dep in rev._resolved_dependencies:
                if owner.get(dep) not in (branch, CORE):
                    return f"revision {rev.revision!r} depends on {dep!r}; plugins may depend on core revisions only"
    return None


def build_plan(plugin_dirs: Mapping[str, Path], core_dirs: Iterable[Path] = (CORE_VERSIONS_DIR,)) -> Plan:
    """Load the revisions of the core and of the given plugins (cached per process).

    A plugin whose folder or revisions are invalid is left out, with the reason in ``problems``.
    """
    core_dirs = tuple(Path(p).resolve() for p in core_dirs)
    wanted = {n: Path(p).resolve() for n, p in plugin_dirs.items()}
    key = (core_dirs, tuple(sorted((n, str(p)) for n, p in wanted.items())))
    with _PLANS_LOCK:
        if key in _PLANS:
            return _PLANS[key]
    problems: dict[str, str] = {}
    for name, path in list(wanted.items()):
        if not path.is_dir():
            problems[name] = f"its migrations folder {path} does not exist"
            del wanted[name]
    try:
        core_script = _load_script(list(core_dirs))
    except Exception as exc:
        raise SchemaError(f"the core migrations cannot be loaded: {exc}") from exc
    core_owner = {s.revision: CORE for s in core_script.walk_revisions()}
    core_problem = _validate(CORE, list(core_script.walk_revisions()), core_owner)
    if core_problem:
        raise SchemaError(f"invalid core migrations: {core_problem}")
    # Load each plugin beside the core on its own first, so one plugin's mistake names that plugin.
    good: dict[str, Path] = {}
    for name, path in sorted(wanted.items()):
        dirs = {**{d: CORE for d in core_dirs}, path: name}
        try:
            script = _load_script([*core_dirs, path])
            owner = {s.revision: _owner_of(s, dirs) or "?" for s in script.walk_revisions()}
            mine = [s for s in script.walk_revisions() if owner[s.revision] == name]
            clash = [r for r in core_owner if owner.get(r) != CORE]
            problem = f"revision {clash[0]!r} clashes with a core revision" if clash else _validate(name, mine, owner)
        except Exception as exc:
            problem = f"its migrations cannot be loaded: {type(exc).__name__}: {exc}"
        if problem:
            problems[name] = problem
            log.error("migrations of plugin %s left out: %s", name, problem)
        else:
            good[name] = path
    dirs = {**{d: CORE for d in core_dirs}, **{p: n for n, p in good.items()}}
    try:
        script = _load_script([*core_dirs, *good.values()])
    except Exception as exc:  # two plugins clash with each other
        raise SchemaError(f"plugin migrations clash: {exc}") from exc
    owner = {}
    for s in script.walk_revisions():
        branch = _owner_of(s, dirs)
        assert branch is not None
        owner[s.revision] = branch
    locations = {CORE: core_dirs[0], **good}
    plan = Plan(script, locations, owner, problems, (*core_dirs, *good.values()))
    with _PLANS_LOCK:
        _PLANS[key] = plan
    return plan


def clear_caches() -> None:
    """Forget loaded revisions and known-current databases (after revision files changed)."""
    with _PLANS_LOCK:
        _PLANS.clear()
        _QUICK.clear()
    _AT_HEAD.clear()


def plugin_migration_dirs(runtime: PluginRuntime, *, include_unavailable: bool = True) -> dict[str, Path]:
    """plugin -> its migrations folder, from the ``praxis_migrations_dir`` hook.

    Available plugins are asked through the runtime. With ``include_unavailable`` plugins that loaded but
    are quarantined or not allowed are asked directly: their revisions stay known (so they are not
    reported as orphaned), although nothing upgrades them.
    """
    dirs: dict[str, Path] = {}
    for result in runtime.collect("praxis_migrations_dir"):
        if result.ok and result.value is not None:
            dirs[result.plugin] = Path(result.value)
    if include_unavailable:
        for name, loaded in runtime.plugins.items():
            hook = getattr(loaded.module, "praxis_migrations_dir", None) if loaded.module else None
            if name in dirs or hook is None or not callable(hook):
                continue
            try:
                value = hook()
            except Exception:
                log.exception("plugin %s failed in praxis_migrations_dir", name)
                continue
            if value is not None:
                dirs[name] = Path(value)
    return dirs


def plan_for(runtime: PluginRuntime) -> Plan:
    return build_plan(plugin_migration_dirs(runtime))


# --- knowing cheaply that nothing needs migrating --------------------------------------------------
#
# Loading the revisions through Alembic imports it (with Mako and Pygments) and executes every revision
# file: about 0.15 s of a start. A start on a database that is already at head needs only the revision
# graph, which the revision files' top-level assignments give. ``quick_graph`` reads them as text and
# gives up (None) on anything it is not sure of; callers then take the Alembic path as before, which also
# reports invalid migrations.

_REV_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")  # what Alembic loads from a versions folder
_ASSIGNMENT = re.compile(r"^(revision|down_revision|depends_on|branch_labels)\b[^=\n]*=(?!=)(.*)$", re.M)


@dataclass(frozen=True)
class QuickGraph:
    """Revision -> branch, and each revision's down revisions plus dependencies."""

    owner: dict[str, str]
    parents: dict[str, tuple[str, ...]]

    def branch_heads(self, branch: str) -> list[str]:
        mine = {r for r, o in self.owner.items() if o == branch}
        below = {p for r in mine for p in self.parents[r] if p in mine}
        return sorted(mine - below)

    def applied(self, heads: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = [h for h in heads if h in self.owner]
        while todo:
            rev = todo.pop()
            if rev not in seen:
                seen.add(rev)
                todo.extend(self.parents[rev])
        return seen

    def at_head(self, heads: list[str], branches: Iterable[str]) -> bool:
        """Every database head is known and each branch given is at its head."""
        if any(h not in self.owner for h in heads):
            return False
        applied = self.applied(heads)
        return all(set(self.branch_heads(b)) <= applied for b in branches)

    def started(self, heads: list[str]) -> set[str]:
        """Branches with at least one revision applied."""
        return {self.owner[r] for r in self.applied(heads)}


def _literal(text_: str) -> Any:
    import ast

    for candidate in (text_, text_.split("#", 1)[0]):
        try:
            return ast.literal_eval(candidate.strip())
        except (ValueError, SyntaxError):
            continue
    raise ValueError(text_)


def _revisions(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(value)


def _read_revision(path: Path) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(revision, down revisions, dependencies, branch labels) from a revision file's assignments."""
    found: dict[str, Any] = {}
    for name, value in _ASSIGNMENT.findall(path.read_text(encoding="utf-8")):
        if name in found:
            raise ValueError(f"{name} assigned twice")
        found[name] = _literal(value)
    revision = found.get("revision")
    if not isinstance(revision, str) or "down_revision" not in found:
        raise ValueError("no revision / down_revision")
    return (revision, _revisions(found["down_revision"]), _revisions(found.get("depends_on")),
            _revisions(found.get("branch_labels")))


_QUICK: dict[tuple[Any, ...], QuickGraph | None] = {}


def quick_graph(plugin_dirs: Mapping[str, Path], core_dirs: Iterable[Path] = (CORE_VERSIONS_DIR,)) -> QuickGraph | None:
    """The revision graph of the core and the given plugins without Alembic, or None when unsure (a file
    it cannot read plainly, or anything ``build_plan`` would reject or leave out)."""
    core_dirs = tuple(Path(p).resolve() for p in core_dirs)
    wanted = {n: Path(p).resolve() for n, p in plugin_dirs.items()}
    key = (core_dirs, tuple(sorted((n, str(p)) for n, p in wanted.items())))
    with _PLANS_LOCK:
        if key in _QUICK:
            return _QUICK[key]
    graph: QuickGraph | None
    try:
        graph = _quick_graph([(CORE, d) for d in core_dirs] + sorted(wanted.items()))
    except (OSError, ValueError, UnicodeDecodeError):
        graph = None
    with _PLANS_LOCK:
        _QUICK[key] = graph
    return graph


def _quick_graph(folders: list[tuple[str, Path]]) -> QuickGraph | None:
    owner: dict[str, str] = {}
    parents: dict[str, tuple[str, ...]] = {}
    downs: dict[str, tuple[str, ...]] = {}
    deps: dict[str, tuple[str, ...]] = {}
    for branch, folder in folders:
        if not folder.is_dir():
            return None
        for path in sorted(folder.iterdir()):
            if not path.is_file() or not _REV_FILE.match(path.name):
                continue
            revision, down, depends, labels = _read_revision(path)
            if revision in owner or not revision.startswith(f"{branch}_") or len(revision) > MAX_REVISION_LENGTH:
                return None
            if not down and branch not in labels:
                return None
            owner[revision] = branch
            downs[revision], deps[revision] = down, depends
            parents[revision] = (*down, *depends)
    for revision, branch in owner.items():
        if any(owner.get(d) != branch for d in downs[revision]):
            return None
        if any(owner.get(d) not in (branch, CORE) for d in deps[revision]):
            return None
    return QuickGraph(owner, parents)


# --- the connection migrations run on --------------------------------------------------------------


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection to migrate on, not in a transaction.

    SQLite: ``PRAGMA foreign_keys=OFF`` issued on the DBAPI connection before any transaction (inside
    one it is silently ignored), restored before the connection goes back to the pool.
    PostgreSQL: holds the migrations advisory lock until the block ends.
    """
    with engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect == "sqlite":
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA foreign_keys=OFF")
            try:
                yield conn
            finally:
                if conn.in_transaction():
                    conn.rollback()
                raw.execute("PRAGMA foreign_keys=ON")
        elif dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                if conn.in_transaction():
                    conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                conn.commit()
        else:
            yield conn


def check_foreign_keys(connection: Connection) -> None:
    """On SQLite, raise ``ForeignKeyViolations`` if any row points at a missing row."""
    if connection.dialect.name != "sqlite":
        return
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if rows:
        raise ForeignKeyViolations([(r[0], r[1], r[2]) for r in rows])


def _ensure_bookkeeping(conn: Connection) -> None:
    # Created before Alembic would: revision ids may be up to 64 characters (Alembic's own is 32).
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version_num VARCHAR({MAX_REVISION_LENGTH}) NOT NULL, "
        f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
    )
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {BRANCH_TABLE} (branch VARCHAR(64) NOT NULL PRIMARY KEY, "
        f"revision VARCHAR(1000) NOT NULL)"
    )
    conn.commit()


def read_heads(conn: Connection) -> list[str]:
    """The rows of ``alembic_version`` (empty for a fresh database)."""
    if not sa_inspect(conn).has_table(VERSION_TABLE):
        return []
    return sorted(r[0] for r in conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}"))


def _recorded_positions(conn: Connection) -> dict[str, str]:
    if not sa_inspect(conn).has_table(BRANCH_TABLE):
        return {}
    return {r[0]: r[1] for r in conn.exec_driver_sql(f"SELECT branch, revision FROM {BRANCH_TABLE}")}


def _record_positions(conn: Connection, plan: Plan) -> None:
    """Store each known branch's position; rows of branches this plan does not know stay as they are."""
    positions = plan.positions(read_heads(conn))
    recorded = _recorded_positions(conn)
    for branch in plan.branches():
        if branch in positions and recorded.get(branch) != positions[branch]:
            conn.execute(text(f"DELETE FROM {BRANCH_TABLE} WHERE branch = :b"), {"b": branch})
            conn.execute(text(f"INSERT INTO {BRANCH_TABLE} (branch, revision) VALUES (:b, :r)"),
                         {"b": branch, "r": positions[branch]})
        elif branch not in positions and branch in recorded:
            conn.execute(text(f"DELETE FROM {BRANCH_TABLE} WHERE branch = :b"), {"b": branch})


# --- the orphan guard ------------------------------------------------------------------------------


def _guess_plugin(revision: str, candidates: Iterable[str]) -> str:
    """The plugin a revision id belongs to: the longest known name it is prefixed with, else the id
    without its ``_NNNN`` suffix."""
    matches = [c for c in candidates if revision.startswith(f"{c}_")]
    if matches:
        return max(matches, key=len)
    m = re.match(r"^(.+?)_\d+(?:_.*)?$", revision)
    return m.group(1) if m else revision


def orphans(plan: Plan, heads: Iterable[str], candidates: Iterable[str] = ()) -> dict[str, list[str]]:
    """plugin -> revisions the database has but no installed code knows."""
    names = set(candidates) | set(plan.locations) | set(plan.problems)
    out: dict[str, list[str]] = {}
    for head in heads:
        if head not in plan.owner:
            out.setdefault(_guess_plugin(head, names), []).append(head)
    return out


def _plugin_names_in_db(conn: Connection) -> set[str]:
    if not sa_inspect(conn).has_table("core_plugin_state"):
        return set()
    return {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT plugin FROM core_plugin_state")}


def guard(plan: Plan, conn: Connection, runtime: PluginRuntime | None = None) -> list[str]:
    """Raise ``OrphanedRevisions`` naming each plugin whose revisions the database has but whose code
    is not installed. Returns the database's heads."""
    heads = read_heads(conn)
    if all(h in plan.owner for h in heads):
        return heads
    installed = runtime.plugins if runtime is not None else {}
    found = orphans(plan, heads, set(installed) | _plugin_names_in_db(conn))
    lines = []
    for name, revisions in sorted(found.items()):
        revs = ", ".join(revisions)
        if name == CORE:
            lines.append(f"- core revision(s) {revs} are unknown: the database was migrated by a newer Praxis; "
                         f"install that version (or restore a backup made before the upgrade).")
            continue
        loaded = installed.get(name)
        if name in plan.problems:
            why = f"plugin {name!r} is installed but its migrations were left out: {plan.problems[name]}"
        elif loaded is not None and loaded.module is None:
            why = f"plugin {name!r} is installed but failed to load: {loaded.quarantine_reason}"
        elif loaded is not None:
            why = f"plugin {name!r} is installed but does not know these revisions (was it downgraded?)"
        else:
            why = f"plugin {name!r} is no longer installed"
        lines.append(
            f"- the database has migrations of plugin {name!r} (revision {revs}), but {why}. Either reinstall "
            f"it (then `praxis plugins purge {name}` can drop its tables), or run `praxis plugins forget {name}` "
            f"to keep its tables and data and stop tracking its migrations."
        )
    raise OrphanedRevisions("the database schema cannot be migrated:\n" + "\n".join(lines), found)


# --- running migrations ----------------------------------------------------------------------------


def _describe(plan: Plan, rev_id: str | None) -> str:
    if rev_id is None:
        return "?"
    rev = plan.script.revision_map.get_revision(rev_id)
    doc = f": {rev.doc}" if rev is not None and rev.doc else ""
    return f"{rev_id} ({plan.owner.get(rev_id, '?')}){doc}"


def _run(
    engine: Engine,
    plan: Plan,
    target: str,
    *,
    downgrade: bool = False,
    progress: Progress | None = None,
    runtime: PluginRuntime | None = None,
    after: Callable[[Connection], None] | None = None,
) -> list[str]:
    """Run one upgrade or downgrade to ``target`` in one transaction; returns the revisions applied."""
    from alembic.runtime.environment import EnvironmentContext

    done: list[str] = []

    def on_apply(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        done.append(step.up_revision_id)
        if progress is not None:
            verb = "applied" if step.is_upgrade else "reverted"
            progress(f"  {verb} {_describe(plan, step.up_revision_id)}")

    def after_migrations(connection: Connection) -> None:
        _record_positions(connection, plan)
        if after is not None:
            after(connection)

    def steps(rev: Any, context: Any) -> Any:
        if downgrade:
            return plan.script._downgrade_revs(target, rev)
        return plan.script._upgrade_revs(target, rev)

    with migration_connection(engine) as conn:
        _ensure_bookkeeping(conn)
        guard(plan, conn, runtime)
        conn.rollback()
        cfg = _config(plan.dirs, engine.url.render_as_string(hide_password=False))
        cfg.attributes.update(connection=conn, on_version_apply=on_apply, after_migrations=after_migrations)
        with EnvironmentContext(cfg, plan.script, fn=steps, destination_rev=target):
            plan.script.run_env()
        if conn.in_transaction():
            conn.commit()
    return done


def _fast_heads(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return read_heads(conn)


_AT_HEAD: set[tuple[Any, ...]] = set()
_CHECKED_MODELS: set[str] = set()


def _engine_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def upgrade_core(
    engine: Engine,
    runtime: PluginRuntime | None = None,
    *,
    progress: Progress | None = None,
    applied_plugins: bool = True,
) -> list[str]:
    """Upgrade the core branch to its head (run at start-up); returns the revisions applied.

    Pass ``runtime`` so the plugins' revisions in the database are recognised; without it, installed
    plugins are looked up through their entry points only if the database has revisions the core
    does not know. With ``runtime`` and ``applied_plugins``, the branches of available plugins that
    were applied before (enabled once) are brought to their head too, so an updated plugin's new
    revisions run at the next start.
    """
    if _quickly_at_head(engine, runtime, applied_plugins):
        check_models_migrated(engine)
        return []
    plan = plan_for(runtime) if runtime is not None else build_plan({})
    heads = _fast_heads(engine)
    if runtime is None and any(h not in plan.owner for h in heads):
        plan = build_plan(_installed_plugin_dirs())
    applied: list[str] = []
    if not set(plan.branch_heads(CORE)) <= plan.applied(heads) or any(h not in plan.owner for h in heads):
        applied = _run(engine, plan, f"{CORE}@head", progress=progress, runtime=runtime)
        heads = _fast_heads(engine)
    check_models_migrated(engine)
    if runtime is not None and applied_plugins:
        available = set(runtime.available())
        started = plan.positions(heads)
        for name in plan.branches():
            if name == CORE or name not in available or name not in started:
                continue
            if not set(plan.branch_heads(name)) <= plan.applied(heads):
                applied += _run(engine, plan, f"{name}@head", progress=progress, runtime=runtime)
    return applied


def _quickly_at_head(engine: Engine, runtime: PluginRuntime | None, applied_plugins: bool) -> bool:
    """True when ``quick_graph`` is sure ``upgrade_core`` has nothing to do (no Alembic needed)."""
    dirs = plugin_migration_dirs(runtime) if runtime is not None else {}
    graph = quick_graph(dirs)
    if graph is None:
        return False
    heads = _fast_heads(engine)
    branches = [CORE]
    if runtime is not None and applied_plugins:
        available, started = set(runtime.available()), graph.started(heads)
        branches += [name for name in dirs if name in available and name in started]
    return graph.at_head(heads, branches)


def _installed_plugin_dirs() -> dict[str, Path]:
    from core.plugins.discovery import installed_entry_points

    dirs = {}
    for ep in installed_entry_points():
        try:
            hook = getattr(ep.load(), "praxis_migrations_dir", None)
            value = hook() if callable(hook) else None
        except Exception:
            log.exception("plugin %s could not be asked for its migrations", ep.name)
            continue
        if value is not None:
            dirs[ep.name] = Path(value)
    return dirs


def upgrade_plugin(runtime: PluginRuntime, name: str, *, progress: Progress | None = None) -> list[str]:
    """Upgrade ``<name>@head`` (and the core revision it depends on). A no-op for plugins without
    migrations, and a cached no-op when the plugin was found at head in this process (the cache is keyed
    on the plugin state generation, which ``purge`` bumps)."""
    dirs = plugin_migration_dirs(runtime)
    graph = quick_graph(dirs)
    if graph is not None:  # sure of the revisions: answer without Alembic when nothing is to be done
        targets = graph.branch_heads(name) if name in dirs else []
        if not targets:
            return []
        key = (_engine_key(runtime.engine), name, tuple(targets), runtime.snapshot().generation)
        if key in _AT_HEAD:
            return []
        if graph.at_head(_fast_heads(runtime.engine), [name]):
            _AT_HEAD.add(key)
            return []
    plan = build_plan(dirs)
    if name in plan.problems:
        raise SchemaError(f"the migrations of plugin {name!r} cannot be used: {plan.problems[name]}")
    if name not in plan.locations:
        return []
    targets = plan.branch_heads(name)
    if not targets:
        return []
    key = (_engine_key(runtime.engine), name, tuple(targets), runtime.snapshot().generation)
    if key in _AT_HEAD:
        return []
    heads = _fast_heads(runtime.engine)
    applied: list[str] = []
    if not set(targets) <= plan.applied(heads) or any(h not in plan.owner for h in heads):
        applied = _run(runtime.engine, plan, f"{name}@head", progress=progress, runtime=runtime)
    _AT_HEAD.add(key)
    return applied


@dataclass
class UpgradeReport:
    applied: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def upgrade_all(runtime: PluginRuntime, *, progress: Progress | None = None) -> UpgradeReport:
    """``praxis db upgrade``: the core, then each available plugin's branch, one transaction each.

    A failing plugin migration is reported and does not stop the others; the core failing stops all.
    """
    plan = plan_for(runtime)
    report = UpgradeReport()
    say = progress or (lambda _m: None)
    say("core:")
    report.applied[CORE] = upgrade_core(runtime.engine, runtime, progress=progress, applied_plugins=False)
    if not report.applied[CORE]:
        say("  up to date")
    available = set(runtime.available())
    for name in sorted(set(plan.locations) | set(plan.problems)):
        if name == CORE:
            continue
        if name in plan.problems:
            report.failed[name] = plan.problems[name]
            say(f"{name}: NOT MIGRATED: {plan.problems[name]}")
            continue
        if name not in available:
            loaded = runtime.get(name)
            reason = loaded.quarantine_reason if loaded and loaded.quarantined else "not allowed by plugins.toml"
            report.skipped[name] = reason or "not available"
            say(f"{name}: skipped ({report.skipped[name]})")
            continue
        say(f"{name}:")
        try:
            report.applied[name] = _run(runtime.engine, plan, f"{name}@head", progress=progress, runtime=runtime)
        except OrphanedRevisions:
            raise
        except Exception as exc:
            report.failed[name] = f"{type(exc).__name__}: {exc}"
            say(f"  FAILED, rolled back: {report.failed[name]}")
            continue
        if not report.applied[name]:
            say("  up to date")
    return report


@dataclass(frozen=True)
class BranchStatus:
    branch: str
    current: str | None
    head: str | None
    state: str  # up to date, behind, not applied, code missing, invalid


def current(runtime: PluginRuntime) -> list[BranchStatus]:
    """Each branch's revision in the database against its newest revision in the code.

    Orphaned revisions are listed with state ``code missing``; call ``guard`` to get the explanation.
    """
    plan = plan_for(runtime)
    with runtime.engine.connect() as conn:
        heads = read_heads(conn)
        names = set(runtime.plugins) | _plugin_names_in_db(conn)
    positions = plan.positions(heads)
    rows = []
    for branch in plan.branches():
        head = ",".join(plan.branch_heads(branch)) or None
        cur = positions.get(branch)
        state = "not applied" if cur is None else "up to date" if cur == head else "behind"
        rows.append(BranchStatus(branch, cur, head, state))
    for name, problem in sorted(plan.problems.items()):
        rows.append(BranchStatus(name, None, None, f"invalid: {problem}"))
    for name, revs in sorted(orphans(plan, heads, names).items()):
        rows.append(BranchStatus(name, ",".join(revs), None, "code missing"))
    return rows


def guard_database(runtime: PluginRuntime) -> None:
    """Raise ``OrphanedRevisions`` if the database has revisions no installed code knows."""
    plan = plan_for(runtime)
    with runtime.engine.connect() as conn:
        guard(plan, conn, runtime)


# --- models against migrations ---------------------------------------------------------------------


def core_tables() -> dict[str, Any]:
    return {name: t for name, t in SQLModel.metadata.tables.items() if name.startswith("core_")}


def _db_columns(conn: Connection) -> set[tuple[str, str]]:
    if conn.dialect.name == "sqlite":
        sql = ("SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p "
               "WHERE m.type = 'table' AND substr(m.name, 1, 5) = 'core_'")
    else:
        sql = ("SELECT table_name, column_name FROM information_schema.columns "
               "WHERE table_schema = current_schema() AND substr(table_name, 1, 5) = 'core_'")
    return {(r[0], r[1]) for r in conn.exec_driver_sql(sql)}


def check_models_migrated(engine: Engine) -> None:
    """Raise ``ModelsWithoutMigration`` if a core model has a table or column the database lacks after
    migrating: a model changed without a migration. (Checked once per database per process.)"""
    key = _engine_key(engine)
    if key in _CHECKED_MODELS:
        return
    with engine.connect() as conn:
        have = _db_columns(conn)
    tables = {t for t, _ in have}
    missing_tables = sorted(n for n in core_tables() if n not in tables)
    missing_columns = sorted(
        f"{name}.{col.name}" for name, table in core_tables().items() if name in tables
        for col in table.columns if (name, col.name) not in have
    )
    if missing_tables or missing_columns:
        parts = []
        if missing_tables:
            parts.append("tables " + ", ".join(missing_tables))
        if missing_columns:
            parts.append("columns " + ", ".join(missing_columns))
        raise ModelsWithoutMigration(
            f"core models define {' and '.join(parts)} that no migration creates. Write a migration with "
            f"`praxis db revision --core -m \"what changed\"` (before the first release: "
            f"`praxis db revision --core --regenerate-initial`)."
        )
    _CHECKED_MODELS.add(key)


def compare_models(connection: Connection, prefix: str = "core_") -> list[Any]:
    """Alembic's differences between the models and the database, for tables starting with ``prefix``
    (objects the models limit to another database, with ``ddl_if``, are left out)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={
        **autogenerate_filters(prefix, dialect=connection.dialect.name),
        "compare_type": True,
        "compare_server_default": False,
    })
    return compare_metadata(context, SQLModel.metadata)


#: Tables that migrations create with raw DDL and no model: SQLite FTS5 virtual tables and their shadow
#: tables (``<name>_fts``, ``<name>_fts_data``, ``_idx``, ``_content``, ``_docsize``, ``_config``).
RAW_TABLE = re.compile(r".*_fts(_(data|idx|content|docsize|config))?$")


def _name_filter(prefix: str) -> Callable[..., bool]:
    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "table":
            return bool(name) and name.startswith(prefix) and not RAW_TABLE.match(name)  # type: ignore[union-attr]
        return True

    return include_name


def _only_on(obj: Any) -> str | None:
    dialect = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
    return dialect if isinstance(dialect, str) else None


def _object_filter(prefix: str, dialect: str | None, existing: frozenset[str]) -> Callable[..., bool]:
    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return bool(name) and name.startswith(prefix)  # type: ignore[union-attr]
        table = getattr(obj, "table", None)
        table_name = getattr(table, "name", None)
        if table_name and not table_name.startswith(prefix):
            return False
        only_on = None if reflected else _only_on(obj)
        if only_on is not None:
            if dialect is not None:  # comparing: the object does not exist on other databases
                return only_on == dialect
            # writing a revision against SQLite: a database-specific object is written with a new table,
            # but on an existing table SQLite cannot show whether it exists, so it is left to the author.
            return table_name not in existing
        return True

    return include_object


def autogenerate_filters(
    prefix: str, *, dialect: str | None = None, existing_tables: Iterable[str] = ()
) -> dict[str, Callable[..., bool]]:
    """``include_name`` / ``include_object`` for ``context.configure``: only tables starting with ``prefix``.

    With ``dialect`` (comparing models with a database) objects limited to another database are skipped.
    """
    return {"include_name": _name_filter(prefix),
            "include_object": _object_filter(prefix, dialect, frozenset(existing_tables))}


# --- writing revisions -----------------------------------------------------------------------------


def _next_id(plan: Plan, branch: str) -> str:
    numbers = [int(m.group(1)) for r, o in plan.owner.items() if o == branch
               for m in [re.match(rf"^{re.escape(branch)}_(\d+)", r)] if m]
    return f"{branch}_{max(numbers, default=0) + 1:04d}"


def _format(path: Path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        return
    for args in (["check", "--fix-only", "--quiet", "--select", "I,F401,UP"], ["format", "--quiet"]):
        subprocess.run([ruff, *args, str(path)], check=False, capture_output=True)  # noqa: S603


def write_revision(
    branch: str,
    message: str,
    *,
    plugin_dirs: Mapping[str, Path] | None = None,
    regenerate_initial: bool = False,
) -> Path:
    """Autogenerate a revision for ``branch`` (``core`` or a plugin) and return its file.

    The models are compared with a scratch SQLite database migrated to the branch's head, so the live
    database is never touched and the output uses batch operations that work on both databases.
    ``regenerate_initial`` rewrites ``core_0001`` from the current models (only while it is the only
    core revision).
    """
    from alembic import command
    from alembic.script import Script

    plugin_dirs = dict(plugin_dirs or {})
    if branch != CORE and branch not in plugin_dirs:
        raise SchemaError(f"plugin {branch!r} has no migrations folder (praxis_migrations_dir returned nothing)")
    moved: Path | None = None
    backup = Path(tempfile.mkdtemp(prefix="praxis-revision-"))
    try:
        kwargs: dict[str, Any] = {}
        if regenerate_initial:
            if branch != CORE:
                raise SchemaError("--regenerate-initial applies to the core only")
            others = sorted(p.name for p in CORE_VERSIONS_DIR.glob("core_*.py") if not p.name.startswith("core_0001"))
            if others:
                raise SchemaError(f"core_0001 can only be regenerated while it is the only core revision "
                                  f"(found {', '.join(others)}); write a new revision instead")
            for old in CORE_VERSIONS_DIR.glob("core_0001*.py"):
                moved = backup / old.name
                shutil.move(str(old), moved)
            clear_caches()
            kwargs = {"rev_id": "core_0001", "head": "base", "branch_label": CORE}
            dirs: dict[str, Path] = {}
        else:
            dirs = {branch: plugin_dirs[branch]} if branch != CORE else {}
        plan = build_plan(dirs)
        if branch in plan.problems:
            raise SchemaError(f"the migrations of plugin {branch!r} cannot be used: {plan.problems[branch]}")
        if not regenerate_initial:
            kwargs["rev_id"] = _next_id(plan, branch)
            if plan.branch_heads(branch):
                kwargs["head"] = f"{branch}@head"
            elif branch == CORE:
                kwargs.update(head="base", branch_label=CORE)
            else:
                core_heads = plan.branch_heads(CORE)
                kwargs.update(head="base", branch_label=branch, depends_on=core_heads[-1] if core_heads else None)
        version_path = CORE_VERSIONS_DIR if branch == CORE else plan.locations[branch]
        from core.db import make_engine

        scratch = make_engine(f"sqlite:///{backup / 'scratch.db'}")
        try:
            if not regenerate_initial:
                for name in [CORE, branch] if branch != CORE else [CORE]:
                    if plan.branch_heads(name):
                        _run(scratch, plan, f"{name}@head")
            with migration_connection(scratch) as conn:
                cfg = _config(plan.dirs, str(scratch.url))
                existing = sa_inspect(conn).get_table_names()
                conn.rollback()
                cfg.attributes.update(connection=conn, table_prefix=f"{branch}_", existing_tables=existing)
                script = command.revision(cfg, message=message, autogenerate=True,
                                          version_path=str(version_path), **kwargs)
        finally:
            scratch.dispose()
        assert isinstance(script, Script)
        path = Path(script.path)
        _format(path)
        moved = None
        return path
    finally:
        if moved is not None:  # generation failed: put the old core_0001 back
            shutil.move(str(moved), CORE_VERSIONS_DIR / moved.name)
        shutil.rmtree(backup, ignore_errors=True)
        clear_caches()


# --- forgetting and purging a plugin's schema ------------------------------------------------------


def forget_plugin(runtime: PluginRuntime, name: str, actor: Actor) -> list[str]:
    """Stop tracking the migrations of a plugin whose code is gone; its tables and data stay.

    Deletes its ``alembic_version`` rows and puts back the rows of other branches they implied (the
    core's position, from ``alembic_branches``). Returns the revisions forgotten. Audited.
    """
    from core import audit

    plan = plan_for(runtime)
    with migration_connection(runtime.engine) as conn:
        _ensure_bookkeeping(conn)
        heads = read_heads(conn)
        names = set(runtime.plugins) | _plugin_names_in_db(conn) | {name}
        mine = orphans(plan, heads, names).get(name, [])
        if not mine:
            conn.rollback()
            if name in plan.locations:
                raise SchemaError(f"plugin {name!r} is installed and its migrations are known; nothing to forget. "
                                  f"To remove its tables use `praxis plugins purge {name}`")
            raise SchemaError(f"the database has no migrations of plugin {name!r} to forget")
        remaining = [h for h in heads if h not in mine]
        applied = plan.applied(remaining)
        restore = []
        for branch, revision in _recorded_positions(conn).items():
            if branch == name:
                continue
            for rev in revision.split(","):
                if rev in plan.owner and rev not in applied and rev not in remaining:
                    restore.append(rev)
        if CORE not in plan.positions(remaining + restore) and sa_inspect(conn).has_table("core_clinic"):
            raise SchemaError(f"cannot tell the core's revision once {name}'s is removed (no alembic_branches "
                              f"record); reinstall {name} and purge it instead")
        conn.rollback()  # end the reading transaction; the change below is one transaction
        with conn.begin():
            for rev in mine:
                conn.execute(text(f"DELETE FROM {VERSION_TABLE} WHERE version_num = :r"), {"r": rev})
            for rev in restore:
                conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:r)"), {"r": rev})
            conn.execute(text(f"DELETE FROM {BRANCH_TABLE} WHERE branch = :b"), {"b": name})
            with Session(bind=conn) as session:
                audit.record(session, actor, "plugin.migrations_forgotten", target=f"plugin:{name}",
                             data={"revisions": mine, "restored": restore})
                session.flush()
    clear_caches()
    return mine


@dataclass
class PurgePlan:
    plugin: str
    tables: dict[str, int]
    revisions: list[str]
    enabled_in: list[str]
    state_rows: int


def _plugin_tables(conn: Connection, name: str, others: Iterable[str]) -> dict[str, int]:
    """Tables named ``<name>_...`` (not belonging to a plugin with a longer matching name), with row counts."""
    longer = [o for o in others if o != name and o.startswith(f"{name}_")]
    tables = {}
    for table in sorted(sa_inspect(conn).get_table_names()):
        if table.startswith(f"{name}_") and not any(table.startswith(f"{o}_") for o in longer):
            quoted = conn.dialect.identifier_preparer.quote(table)
            tables[table] = int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quoted}").scalar_one())
    return tables


def purge_plan(runtime: PluginRuntime, name: str) -> PurgePlan:
    """What ``purge`` would drop. Raises ``SchemaError`` when the plugin's code is missing."""
    loaded = runtime.get(name)
    plan = plan_for(runtime)
    if loaded is None or loaded.module is None:
        raise SchemaError(
            f"purging {name!r} needs its code installed: its migrations say how to drop its tables. "
            f"Reinstall it, or run `praxis plugins forget {name}` to keep its tables and stop tracking them"
        )
    if name in plan.problems:
        raise SchemaError(f"the migrations of plugin {name!r} cannot be used: {plan.problems[name]}")
    with runtime.engine.connect() as conn:
        heads = read_heads(conn)
        applied = plan.applied(heads)
        revisions = sorted(r for r in applied if plan.owner.get(r) == name)
        tables = _plugin_tables(conn, name, set(runtime.plugins) | _plugin_names_in_db(conn))
        enabled_in: list[str] = []
        state_rows = 0
        if sa_inspect(conn).has_table("core_plugin_state"):
            rows = conn.execute(text(
                "SELECT c.name, c.id, s.enabled FROM core_plugin_state AS s JOIN core_clinic AS c "
                "ON c.id = s.clinic_id WHERE s.plugin = :p ORDER BY c.id"), {"p": name}).all()
            state_rows = len(rows)
            enabled_in = [f"{r[0]} ({r[1]})" for r in rows if r[2]]
    return PurgePlan(name, tables, revisions, enabled_in, state_rows)


def purge_plugin(runtime: PluginRuntime, name: str, actor: Actor, *, progress: Progress | None = None) -> PurgePlan:
    """Drop a plugin's tables (``downgrade <name>@base``) and its per-clinic state, in one transaction,
    audited. Refused while the plugin is enabled in any clinic."""
    from core import audit
    from core.plugins.state import bump_generation

    what = purge_plan(runtime, name)
    if what.enabled_in:
        raise SchemaError(f"{name} is enabled in {', '.join(what.enabled_in)}; disable it there first "
                          f"(`praxis plugins disable {name} --clinic ...`)")
    if what.tables and not what.revisions:
        raise SchemaError(
            f"{name}'s tables ({', '.join(what.tables)}) exist but none of its migrations is recorded (were they "
            f"forgotten?), so there is no downgrade that drops them; drop them by hand after a backup"
        )
    plan = plan_for(runtime)

    def forget_state(conn: Connection) -> None:
        enabled = conn.execute(text("SELECT COUNT(*) FROM core_plugin_state WHERE plugin = :p AND enabled = :t"),
                               {"p": name, "t": True}).scalar_one()
        if enabled:  # enabled by another process since the check: keep everything
            raise SchemaError(f"{name} was enabled in a clinic meanwhile; nothing was dropped")
        left = _plugin_tables(conn, name, set(runtime.plugins))
        conn.execute(text("DELETE FROM core_plugin_state WHERE plugin = :p"), {"p": name})
        conn.execute(text("DELETE FROM core_plugin_health WHERE plugin = :p"), {"p": name})
        with Session(bind=conn) as session:
            audit.record(session, actor, "plugin.purged", target=f"plugin:{name}", data={
                "tables": what.tables, "revisions": what.revisions, "state_rows": what.state_rows,
                "tables_left": sorted(left),
            })
            bump_generation(session)
            session.flush()

    if what.revisions:
        _run(runtime.engine, plan, f"{name}@base", downgrade=True, progress=progress, runtime=runtime,
             after=forget_state)
    else:
        with migration_connection(runtime.engine) as conn, conn.begin():
            forget_state(conn)
    _AT_HEAD.clear()
    runtime.state.invalidate()
    return what
