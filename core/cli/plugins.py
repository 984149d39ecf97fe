"""``praxis plugins``: list, enable, disable and configure plugins per clinic."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click
from sqlmodel import Session, select

from core.audit import Actor
from core.cli.common import load, readable_errors
from core.models.clinic import Clinic

CLI_ACTOR = Actor(None, "cli")


def _clinics(praxis: Any, clinic: str | None) -> list[Clinic]:
    with Session(praxis.engine) as session:
        rows = session.exec(select(Clinic).order_by(Clinic.id)).all()
    if clinic is None:
        return list(rows)
    for row in rows:
        if str(row.id) == clinic or row.name.lower() == clinic.lower():
            return [row]
    known = ", ".join(f"{c.id} ({c.name})" for c in rows) or "none yet"
    raise click.ClickException(f"no clinic {clinic!r}; clinics: {known}")


def _one_clinic(praxis: Any, clinic: str | None) -> Clinic:
    rows = _clinics(praxis, clinic)
    if len(rows) != 1:
        raise click.ClickException("say which clinic with --clinic ID or NAME")
    return rows[0]


@click.group()
def plugins() -> None:
    """Installed plugins and their state per clinic."""


@plugins.command("list")
@click.option("--clinic", help="Clinic id or name (default: every clinic).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_plugins(clinic: str | None, as_json: bool) -> None:
    """List every installed plugin with its state in each clinic."""
    praxis = load()
    clinics = _clinics(praxis, clinic)
    runtime = praxis.runtime
    rows = []
    for name in sorted(runtime.plugins):
        loaded = runtime.plugins[name]
        manifest = loaded.manifest
        rows.append({
            "name": name,
            "version": manifest.version if manifest else None,
            "title": manifest.title if manifest else name,
            "category": manifest.category.value if manifest else None,
            "countries": list(manifest.countries) if manifest else [],
            "requires": dict(manifest.requires) if manifest else {},
            "distribution": loaded.distribution,
            "quarantined": loaded.quarantine_reason,
            "clinics": {},
        })
    for c in clinics:
        assert c.id is not None
        states = {s.name: s for s in praxis.plugins.statuses(c.id)}
        for row in rows:
            status = states[row["name"]]
            row["clinics"][c.name] = {"clinic_id": c.id, "state": status.state, "last_error": status.last_error}
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    header = ["PLUGIN", "VERSION", "CATEGORY", "COUNTRIES"] + [c.name.upper() for c in clinics]
    table = [header]
    for row in rows:
        cells = [row["name"], row["version"] or "-", row["category"] or "-", ",".join(row["countries"]) or "any"]
        cells += [row["clinics"][c.name]["state"] for c in clinics]
        table.append(cells)
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for r in table:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    for row in rows:
        if row["quarantined"]:
            click.echo(f"\n{row['name']} is quarantined: {row['quarantined']}")


@plugins.command("enable")
@click.argument("name")
@click.option("--clinic", required=True, help="Clinic id or name.")
@click.option("--with-dependencies", is_flag=True, help="Also enable the plugins it needs.")
@readable_errors
def enable(name: str, clinic: str, with_dependencies: bool) -> None:
    """Enable a plugin in a clinic (takes effect in every running process within seconds)."""
    praxis = load()
    target = _one_clinic(praxis, clinic)
    assert target.id is not None
    newly = praxis.plugins.enable(target.id, name, CLI_ACTOR, with_dependencies=with_dependencies)
    click.echo(f"Enabled in {target.name}: {', '.join(newly)}" if newly else f"{name} was already enabled")


@plugins.command("disable")
@click.argument("name")
@click.option("--clinic", required=True, help="Clinic id or name.")
@readable_errors
def disable(name: str, clinic: str) -> None:
    """Disable a plugin in a clinic; its data stays."""
    praxis = load()
    target = _one_clinic(praxis, clinic)
    assert target.id is not None
    changed = praxis.plugins.disable(target.id, name, CLI_ACTOR)
    click.echo(f"Disabled {name} in {target.name}" if changed else f"{name} was not enabled")


@plugins.command("config")
@click.argument("name")
@click.option("--clinic", required=True, help="Clinic id or name.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Set a setting (repeatable). VALUE is JSON if it parses, else a string.")
@readable_errors
def config(name: str, clinic: str, assignments: tuple[str, ...]) -> None:
    """Show a plugin's settings in a clinic, or change them with --set (secrets are shown only as set)."""
    praxis = load()
    target = _one_clinic(praxis, clinic)
    assert target.id is not None
    praxis.plugins.plugin(name)
    if assignments:
        values: dict[str, Any] = {}
        for item in assignments:
            if "=" not in item:
                raise click.ClickException(f"--set needs KEY=VALUE, got {item!r}")
            key, raw = item.split("=", 1)
            try:
                values[key.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                values[key.strip()] = raw
        shown = praxis.plugins.configure(target.id, name, values, CLI_ACTOR)
    else:
        status = next(s for s in praxis.plugins.statuses(target.id) if s.name == name)
        shown = asdict(status)["settings"]
    click.echo(json.dumps(shown, indent=2, ensure_ascii=False))


# --- removing a plugin's tables (migrations engineer) ------------------------------------------------


@plugins.command("purge")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Only list what would be dropped.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(name: str, dry_run: bool, yes: bool) -> None:
    """Drop a plugin's tables and data (downgrade its migrations to base) and its per-clinic state.

    Refused while the plugin is enabled in any clinic. Needs the plugin's code installed.
    """
    from core import schema

    praxis = load(migrate=False)
    try:
        what = schema.purge_plan(praxis.runtime, name)
        if what.enabled_in:
            raise click.ClickException(f"{name} is enabled in {', '.join(what.enabled_in)}; disable it there first "
                                       f"(praxis plugins disable {name} --clinic ...)")
        click.echo(f"Purging {name} would:")
        width = max([len(t) for t in what.tables] or [0])
        for table, rows in what.tables.items():
            click.echo(f"  drop table {table.ljust(width)}  {rows:,} row(s)")
        if not what.tables:
            click.echo("  drop no tables (it has none in this database)")
        if what.revisions:
            click.echo(f"  revert its migrations {', '.join(what.revisions)}")
        click.echo(f"  delete its settings and state ({what.state_rows} clinic row(s))")
        if dry_run:
            click.echo("Dry run: nothing was changed.")
            return
        if not yes:
            click.confirm("This cannot be undone (make a backup first). Continue?", abort=True)
        schema.purge_plugin(praxis.runtime, name, CLI_ACTOR, progress=click.echo)
        click.echo(f"Purged {name}.")
    except schema.SchemaError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        praxis.close()


@plugins.command("forget")
@click.argument("name")
def forget(name: str) -> None:
    """Stop tracking the migrations of a plugin whose code was removed; its tables and data stay."""
    from core import schema

    praxis = load(migrate=False)
    try:
        revisions = schema.forget_plugin(praxis.runtime, name, CLI_ACTOR)
    except schema.SchemaError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        praxis.close()
    click.echo(f"Forgot {name}'s migrations ({', '.join(revisions)}); its tables and data are kept.")
