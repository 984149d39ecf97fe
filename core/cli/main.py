"""Entry point of the ``praxis`` command. Each command group lives in its own module."""

from __future__ import annotations

import logging
import sys

import click

from core.cli import audit, demo, keys, plugin_new, plugins, serve
from core.cli import db as db_cli
from core.cli import users as users_cli
from core.cli import worker as worker_cli


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug output.")
def cli(verbose: bool) -> None:
    """Praxis: the practice platform for clinics."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


cli.add_command(serve.serve)
cli.add_command(plugins.plugins)
cli.add_command(audit.audit_group)
cli.add_command(keys.keys_group)
cli.add_command(demo.demo)
cli.add_command(users_cli.users)
cli.add_command(users_cli.clinics)
cli.add_command(worker_cli.worker)
cli.add_command(worker_cli.outbox)
cli.add_command(db_cli.db)
cli.add_command(db_cli.backup)
cli.add_command(db_cli.restore)
cli.add_command(plugin_new.plugin)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
