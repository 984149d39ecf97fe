"""``praxis demo``: load two living clinics for trying Praxis out."""

from __future__ import annotations

import click


@click.command()
@click.option("--patients", default=100, show_default=True, help="Patients per clinic.")
def demo(patients: int) -> None:
    """Load the demo clinics (Budapest and Seoul) with staff, patients and this week's appointments."""
    from core.cli.common import load
    from core.demo.loader import CLINICS, DEMO_PASSWORD, load_demo

    praxis = load()
    total = 3 + 2 * patients + 150
    with click.progressbar(length=total, label="Loading demo data", show_pos=True) as bar:
        result = load_demo(praxis, patients_per_clinic=patients, progress=lambda label, n: bar.update(n))
        bar.update(total)
    if result.already_loaded:
        click.echo("The demo clinics are already loaded.")
    else:
        click.echo(f"Loaded {', '.join(result.clinics)}: {result.patients} patients, "
                   f"{result.appointments} appointments this week.")
    click.echo(f"Log in as any of {', '.join(result.logins)} with the password '{DEMO_PASSWORD}'.")
    click.echo(f"('admin' manages both clinics: {', '.join(p.name for p in CLINICS)}.)")
