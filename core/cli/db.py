"""``praxis db``: migrate the schema and show where each branch is; ``praxis backup`` / ``restore``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from core import backup as backups
from core import schema
from core.cli.common import load
from core.config import get_settings


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group()
def db() -> None:
    """The database schema: the core's migrations and each plugin's own branch."""


@db.command("upgrade")
def upgrade() -> None:
    """Apply the core's migrations, then every installed plugin's (each plugin in its own transaction)."""
    praxis = load(migrate=False)
    try:
        report = schema.upgrade_all(praxis.runtime, progress=click.echo)
    except schema.SchemaError as exc:
        raise _fail(exc) from exc
    finally:
        praxis.close()
    total = sum(len(v) for v in report.applied.values())
    click.echo(f"{total} revision(s) applied." if total else "Everything was up to date.")
    if report.failed:
        raise click.ClickException("not migrated: " + "; ".join(f"{k}: {v}" for k, v in report.failed.items()))


@db.command("current")
def current() -> None:
    """Show each branch's revision in the database and the newest one the installed code has."""
    praxis = load(migrate=False)
    try:
        rows = schema.current(praxis.runtime)
        table = [("BRANCH", "DATABASE", "CODE", "STATE")]
        table += [(r.branch, r.current or "-", r.head or "-", r.state) for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        for row in table:
            click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        schema.guard_database(praxis.runtime)
    except schema.SchemaError as exc:
        raise _fail(exc) from exc
    finally:
        praxis.close()


@db.command("revision")
@click.option("--core", "is_core", is_flag=True, help="A revision of the core schema.")
@click.option("--plugin", help="A revision in this plugin's migrations folder.")
@click.option("-m", "--message", default=None, help="What the revision changes (becomes its file name).")
@click.option("--regenerate-initial", is_flag=True,
              help="Rewrite core_0001 from the current models (only while it is the only core revision).")
def revision(is_core: bool, plugin: str | None, message: str | None, regenerate_initial: bool) -> None:
    """Write a revision by comparing the models with a scratch database migrated to the branch's head."""
    if is_core == bool(plugin):
        raise click.UsageError("say which branch: --core or --plugin NAME")
    if regenerate_initial:
        message = message or "initial"
    if not message:
        raise click.UsageError("--message is required")
    dirs = {} if is_core else schema._installed_plugin_dirs()
    try:
        path = schema.write_revision("core" if is_core else str(plugin), message, plugin_dirs=dirs,
                                     regenerate_initial=regenerate_initial)
    except schema.SchemaError as exc:
        raise _fail(exc) from exc
    click.echo(f"Wrote {path}. Read it before committing: autogenerate cannot see renames or data changes.")


@click.command("backup")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Backup file (default: <data_dir>/backups/praxis-<UTC time>.db).")
def backup(output: Path | None) -> None:
    """Copy the embedded SQLite database consistently, even while Praxis runs."""
    settings = get_settings()
    try:
        with click.progressbar(length=100, label="Backing up", show_percent=True) as bar:
            result = backups.backup(settings, output, progress=_bar_progress(bar))
    except backups.BackupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    click.echo(f"Backup written to {result.path} ({result.size:,} bytes, {result.clinics} clinic(s), "
               f"schema {result.revisions or 'empty'}).")
    key = settings.key_file or settings.data_dir / "master.key"
    where = "the PRAXIS_MASTER_KEY value" if settings.master_key else str(key)
    click.echo(f"The master key is not in the backup: keep {where} safe too, or encrypted settings are lost.")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore(file: Path, yes: bool) -> None:
    """Replace the embedded database with a backup (the current one is kept as a copy first).

    Stop Praxis (app and workers) before restoring.
    """
    settings = get_settings()
    try:
        info = backups.inspect_backup(settings, file)
        click.echo(f"{file}: Praxis database, {info.clinics} clinic(s), schema {info.revisions or 'empty'}.")
        for warning in info.warnings:
            click.echo(f"Warning: {warning}")
        if not yes:
            click.confirm(f"Replace {backups.database_path(settings)} with it?", abort=True)
        with click.progressbar(length=100, label="Restoring", show_percent=True) as bar:
            result = backups.restore(settings, file, progress=_bar_progress(bar))
    except backups.BackupError as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    if result.previous is not None:
        click.echo(f"The previous database was saved to {result.previous}.")
    click.echo(f"Restored {file} ({result.clinics} clinic(s)). The next start migrates it if it is older.")


def _bar_progress(bar: click.progressbar) -> backups.Progress:  # type: ignore[type-arg]
    done = [0]

    def update(remaining: int, total: int) -> None:
        percent = 100 if total == 0 else int((total - remaining) * 100 / total)
        bar.update(percent - done[0])
        done[0] = percent

    return update
