"""``praxis keys``: make a master key and re-encrypt stored secrets after rotating."""

from __future__ import annotations

import click

from core.cli.common import load
from core.crypto import new_key_line


@click.group("keys")
def keys_group() -> None:
    """Master keys for encryption at rest."""


@keys_group.command("new")
@click.option("--id", "key_id", type=int, required=True, help="A key id not used before (1-65535).")
def new(key_id: int) -> None:
    """Print a new random key line. Put it FIRST in PRAXIS_MASTER_KEY (or the key file), keep the old ones after it."""
    click.echo(new_key_line(key_id))


@keys_group.command("rotate")
def rotate_command() -> None:
    """Re-encrypt every stored secret and national ID under the current (first) key."""
    from core.rotation import rotate

    praxis = load()
    click.echo(f"Current key: {praxis.keyring.current.id}")
    for report in rotate(praxis.engine, praxis.keyring):
        click.echo(f"{report.column}: {report.rotated} of {report.checked} values re-encrypted")
    click.echo("Done. Once every value shows 0 to re-encrypt, older keys may be removed.")
