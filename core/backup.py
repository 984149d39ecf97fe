"""Backup and restore of the embedded SQLite database with SQLite's online backup API.

The backup API copies a consistent snapshot while the app keeps running (a write by another
connection during the copy makes SQLite restart it). On PostgreSQL these commands refuse and point to
``pg_dump`` / ``pg_restore``, which do the same job there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from core.clock import now
from core.config import Settings

Progress = Callable[[int, int], None]  # (pages remaining, pages in total)
SQLITE_HEADER = b"SQLite format 3\x00"
PAGES_PER_STEP = 1024


class BackupError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class BackupInfo:
    clinics: int
    revisions: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class BackupResult:
    path: Path
    size: int
    clinics: int
    revisions: str


@dataclass
class RestoreResult:
    previous: Path | None
    clinics: int


def _postgres_help(settings: Settings) -> str:
    url = make_url(settings.url).set(drivername="postgresql").render_as_string(hide_password=True)
    return (
        "This Praxis runs on PostgreSQL: back it up and restore it with PostgreSQL's own tools, e.g.\n"
        f"  pg_dump --format=custom --file=praxis.dump '{url}'\n"
        f"  pg_restore --clean --if-exists --dbname='{url}' praxis.dump\n"
        "(praxis backup / restore handle the embedded SQLite database only)."
    )


def database_path(settings: Settings) -> Path:
    if not settings.is_sqlite:
        raise BackupError(_postgres_help(settings), exit_code=2)
    database = make_url(settings.url).database
    if not database or database == ":memory:":
        raise BackupError("the database is in memory; there is nothing to back up")
    return Path(database)


def _stamp() -> str:
    return now().strftime("%Y%m%dT%H%M%SZ")


def _copy(source: sqlite3.Connection, target: sqlite3.Connection, progress: Progress | None) -> None:
    def step(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(remaining, total)

    source.backup(target, pages=PAGES_PER_STEP, progress=step, sleep=0)
    if progress is not None:
        progress(0, 1)


def _check(conn: sqlite3.Connection, what: str) -> None:
    problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise BackupError(f"{what} is damaged: {'; '.join(problems[:5])}")


def _describe(conn: sqlite3.Connection) -> tuple[int, list[str]]:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    clinics = conn.execute("SELECT COUNT(*) FROM core_clinic").fetchone()[0] if "core_clinic" in tables else 0
    revisions = sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version")) \
        if "alembic_version" in tables else []
    return clinics, revisions


def backup(settings: Settings, output: Path | None = None, progress: Progress | None = None) -> BackupResult:
    """Copy the database to ``output`` (default ``<data_dir>/backups/praxis-<UTC time>.db``)."""
    source_path = database_path(settings)
    if not source_path.exists():
        raise BackupError(f"there is no database at {source_path} yet")
    output = output or settings.data_dir / "backups" / f"praxis-{_stamp()}.db"
    if output.exists():
        raise BackupError(f"{output} exists already; choose another --output")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(source_path, timeout=30)
    target = sqlite3.connect(partial)
    try:
        _copy(source, target, progress)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        _check(target, "the backup")
        clinics, revisions = _describe(target)
    except sqlite3.Error as exc:
        raise BackupError(f"backup failed: {exc}") from exc
    finally:
        target.close()
        source.close()
    partial.replace(output)
    return BackupResult(output, output.stat().st_size, clinics, ",".join(revisions))


def inspect_backup(settings: Settings, file: Path) -> BackupInfo:
    """Check that ``file`` is an intact Praxis database this version can use; raise ``BackupError`` if not."""
    database_path(settings)
    with open(file, "rb") as handle:
        if handle.read(16) != SQLITE_HEADER:
            raise BackupError(f"{file} is not a Praxis database (not an SQLite file)")
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?immutable=1", uri=True)
        try:
            _check(conn, str(file))
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = sorted({"alembic_version", "core_clinic", "core_audit"} - tables)
            if missing:
                raise BackupError(f"{file} is not a Praxis database (no {', '.join(missing)} table)")
            clinics, revisions = _describe(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{file} is not a Praxis database ({exc})") from exc
    from core import schema

    plan = schema.build_plan({})
    unknown = schema.orphans(plan, revisions)
    info = BackupInfo(clinics, ",".join(revisions))
    if schema.CORE in unknown:
        raise BackupError(f"{file} was written by a newer Praxis (core revision {', '.join(unknown[schema.CORE])} "
                          f"is unknown here); install that version to restore it")
    for plugin, revs in sorted(unknown.items()):
        info.warnings.append(f"it has tables of plugin {plugin!r} ({', '.join(revs)}): install that plugin "
                             f"before starting Praxis, or run `praxis plugins forget {plugin}`")
    return info


def restore(settings: Settings, file: Path, progress: Progress | None = None) -> RestoreResult:
    """Replace the database's content with ``file``; the current database is first copied to
    ``<data_dir>/backups/pre-restore-<UTC time>.db``."""
    inspect_backup(settings, file)
    target_path = database_path(settings)
    previous = None
    if target_path.exists():
        previous = backup(settings, settings.data_dir / "backups" / f"pre-restore-{_stamp()}.db").path
    target_path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"{file.resolve().as_uri()}?immutable=1", uri=True)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        _copy(source, target, progress)
        _check(target, "the restored database")
        clinics, _ = _describe(target)
    except sqlite3.Error as exc:
        raise BackupError(f"restore failed ({exc}); the previous database is in {previous}") from exc
    finally:
        target.close()
        source.close()
    return RestoreResult(previous, clinics)
