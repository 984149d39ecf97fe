"""Chart numbers: a per-clinic format and a counter allocated inside the registering transaction.

The counter row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serialises writers) until the registration commits, so two registrations never get the same
number and a rolled-back one leaves no gap.
"""

from __future__ import annotations

import string
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from core.models.patient import ChartSequence, Patient

DEFAULT_FORMAT = "{seq:06d}"
FIELDS = {"seq", "year", "yy"}


def check_format(fmt: str) -> str:
    """Return ``fmt`` if it is a usable chart-number format, else raise ``ValueError``."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid format: {exc}") from exc
    unknown = names - FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; use {{seq}}, {{year}} and {{yy}}")
    if "seq" not in names:
        raise ValueError("the format needs {seq}, e.g. 'P{seq:06d}'")
    try:
        sample = render(fmt, 1, 2026)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"not a valid format: {exc}") from exc
    if not sample.strip() or len(render(fmt, 9_999_999, 2026)) > 40:
        raise ValueError("numbers made with this format would be empty or longer than 40 characters")
    return fmt


def render(fmt: str, seq: int, year: int) -> str:
    return fmt.format(seq=seq, year=year, yy=f"{year % 100:02d}")


def period_of(fmt: str, at: datetime) -> str:
    """The counter restarts when this changes: each year for a format with a year, never otherwise."""
    names = {name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}
    return str(at.year) if names & {"year", "yy"} else ""


def _locked_row(session: Session, clinic_id: int) -> ChartSequence:
    stmt = select(ChartSequence).where(ChartSequence.clinic_id == clinic_id).with_for_update()
    row = session.exec(stmt).first()
    if row is not None:
        return row
    dialect = session.get_bind().dialect.name
    values = {"clinic_id": clinic_id, "format": DEFAULT_FORMAT, "period": "", "last_value": 0}
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(ChartSequence).values(**values).on_conflict_do_nothing(index_elements=["clinic_id"]))
    row = session.exec(stmt).first()
    assert row is not None
    return row


def allocate(session: Session, clinic_id: int, at: datetime) -> str:
    """The clinic's next free chart number, in the caller's transaction.

    Numbers already taken (typed in by hand or imported) are skipped.
    """
    row = _locked_row(session, clinic_id)
    period = period_of(row.format, at)
    if row.period != period:
        row.period, row.last_value = period, 0
    while True:
        row.last_value += 1
        number = render(row.format, row.last_value, at.year)
        taken = session.exec(
            select(Patient.id).where(Patient.clinic_id == clinic_id, Patient.chart_number == number)
        ).first()
        if taken is None:
            break
    session.add(row)
    session.flush()
    return number


def current_format(session: Session, clinic_id: int) -> ChartSequence:
    row = session.get(ChartSequence, clinic_id)
    return row or ChartSequence(clinic_id=clinic_id, format=DEFAULT_FORMAT)


def set_format(session: Session, clinic_id: int, fmt: str) -> tuple[str, str]:
    """Store a new format (checked); returns (old, new). The counter continues unless the period changes."""
    check_format(fmt)
    row = _locked_row(session, clinic_id)
    old = row.format
    row.format = fmt
    session.add(row)
    session.flush()
    return old, fmt


def preview(row: ChartSequence, at: datetime) -> str:
    period = period_of(row.format, at)
    next_value = row.last_value + 1 if row.period == period else 1
    return render(row.format, next_value, at.year)
