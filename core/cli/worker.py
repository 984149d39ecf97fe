"""``praxis worker`` (deliver the outbox, run periodic jobs) and ``praxis outbox`` (look, retry, resolve)."""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from typing import Any

import click
from sqlmodel import Session

from core.audit import Actor
from core.cli.common import load
from core.outbox import admin

CLI_ACTOR = Actor(None, "cli")


@click.command()
@click.option("--name", default="worker", show_default=True, help="Shown as the lock owner of items it holds.")
@click.option("--once", is_flag=True, help="Run one round (periodic jobs + one batch) and exit.")
@click.option("--drain", is_flag=True, help="Work until nothing is due, then exit.")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(0.05, 60),
              help="Seconds between looks when idle.")
@click.option("--handler-timeout", default=30.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds a plugin handler may take; the item's lease is four times that.")
@click.option("--keep-done-days", default=7, show_default=True, type=click.IntRange(0, 3650),
              help="Delete delivered items older than this (dead and unknown ones stay).")
@click.option("-v", "--verbose", is_flag=True, help="Print a line per batch.")
@click.pass_context
def worker(ctx: click.Context, name: str, once: bool, drain: bool, batch_size: int, poll: float,
           handler_timeout: float, keep_done_days: int, verbose: bool) -> None:
    """Deliver outbox items to plugins and run their periodic jobs until Ctrl-C.

    Run as many as you like on PostgreSQL: they never work on the same item, and each periodic run
    happens once. On SQLite the app runs one inside itself already (PRAXIS_EMBEDDED_WORKER).
    """
    from core.outbox.worker import BatchReport, Worker

    verbose = verbose or bool(ctx.find_root().params.get("verbose"))
    praxis = load()
    runner = Worker(praxis, name=name, batch_size=batch_size, handler_timeout=handler_timeout,
                    keep_done=timedelta(days=keep_done_days), poll_seconds=poll)

    def show(report: BatchReport) -> None:
        if verbose:
            click.echo(f"{name}: {report.line()}")

    try:
        if once or drain:
            total = 0
            while True:
                handled = runner.run_once()
                total += handled
                show(runner.last_report)
                if once or not handled:
                    break
            click.echo(f"{name}: handled {total} item(s)")
            return

        def stop(signum: int, _frame: Any) -> None:
            if runner.stopping:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            click.echo(f"{name}: stopping after the current batch (Ctrl-C again to stop at once)", err=True)
            runner.stop(timeout=0)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        click.echo(f"{name}: working as {runner.owner} (Ctrl-C to stop)")
        runner.run_forever(on_batch=show)
        click.echo(f"{name}: stopped")
    finally:
        praxis.close()


@click.group()
def outbox() -> None:
    """Look at the outbox and act on failed or undecided items."""


@outbox.command("list")
@click.option("--clinic", type=int, help="Only this clinic's items (id).")
@click.option("--status", type=click.Choice(admin.STATUSES), help="Only items in this state.")
@click.option("--plugin", help="Only this plugin's items.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_items(clinic: int | None, status: str | None, plugin: str | None, limit: int, as_json: bool) -> None:
    """List outbox items, newest first."""
    praxis = load()
    try:
        with Session(praxis.engine) as session:
            page = admin.list_items(session, clinic, status=status, plugin=plugin, limit=limit)
    finally:
        praxis.close()
    rows = [admin.item_dict(i) for i in page.items]
    if as_json:
        click.echo(json.dumps({"items": rows, "total": page.total}, indent=2, default=str, ensure_ascii=False))
        return
    if not rows:
        click.echo("no items")
        return
    header = ["ID", "CLINIC", "PLUGIN", "TOPIC", "STATUS", "ATTEMPTS", "DUE", "LAST ERROR"]
    table = [header] + [[
        r["id"], str(r["clinic_id"] or "-"), r["plugin"], r["topic"], r["status"],
        f"{r['attempts']}/{r['max_attempts']}", r["available_at"].strftime("%Y-%m-%d %H:%M:%S"),
        (r["last_error"] or "")[:60],
    ] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if page.total > len(rows):
        click.echo(f"... {page.total - len(rows)} more (use --limit)")


@outbox.command("retry")
@click.argument("item_id")
def retry(item_id: str) -> None:
    """Send a dead or unknown item again from its first attempt."""
    praxis = load()
    try:
        item = admin.retry(praxis.engine, admin.parse_id(item_id), CLI_ACTOR)
    except admin.OutboxError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        praxis.close()
    click.echo(f"{item.id} is pending again ({item.plugin} {item.topic})")


@outbox.command("resolve")
@click.argument("item_id")
@click.argument("outcome", type=click.Choice(["done", "dead"]))
@click.option("--note", help="Why; kept with the item and in the audit journal.")
def resolve(item_id: str, outcome: str, note: str | None) -> None:
    """Decide an item whose outcome is unknown: done (the vendor acted) or dead (it did not)."""
    praxis = load()
    try:
        item = admin.resolve(praxis.engine, admin.parse_id(item_id), outcome, CLI_ACTOR, note=note)
    except admin.OutboxError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        praxis.close()
    click.echo(f"{item.id} resolved as {item.status}")
