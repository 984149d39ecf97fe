"""``praxis audit``: check the hash-chained journal."""

from __future__ import annotations

import click
from sqlmodel import Session, func, select

from core import audit
from core.cli.common import load
from core.models.audit import AuditEntry


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit journal."""


@audit_group.command("verify")
def verify() -> None:
    """Walk every chain of the journal; name every entry that was edited, inserted or deleted. Exit 1 if any."""
    praxis = load(migrate=False)
    with Session(praxis.engine) as session:
        total = session.exec(select(func.count()).select_from(AuditEntry)).one()
        chains = audit.chains(session)
        problems = audit.verify(session)
    if not problems:
        click.echo(f"Audit journal intact: {total} entries verified in {len(chains)} chains.")
        return
    for problem in problems:
        if problem.seq is None:
            click.echo(problem.problem, err=True)
        else:
            click.echo(f"entry {problem.seq}: {problem.problem} (chain {problem.chain}, position {problem.position})",
                       err=True)
    raise SystemExit(1)
