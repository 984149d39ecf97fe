"""Per-clinic configurable lists: appointment statuses (with colours and roles), communication statuses,
cancel and no-show reasons, appointment types and sources.

A clinic that never edited a list uses the built-in defaults below; saving a list stores the clinic's own
rows. Entries are never deleted (old appointments keep their code): leaving one out deactivates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from core import audit
from core.models.appointment import OPTION_KINDS, AppointmentOption
from core.scheduling.errors import FieldErrors, invalid

# roles the core gives meaning to; a clinic's custom statuses have no role
STATUS_ROLES = ("booked", "confirmed", "arrived", "in_progress", "done", "no_show", "cancelled")
REQUIRED_ROLES = ("booked", "no_show", "cancelled")
NON_BLOCKING_ROLES = frozenset({"no_show", "cancelled"})
STAMPS = {"arrived": "arrived_at", "in_progress": "seated_at", "done": "done_at"}


@dataclass(frozen=True)
class Option:
    code: str
    label: str
    color: str | None = None
    role: str | None = None
    position: int = 0
    active: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "label": self.label, "color": self.color, "role": self.role,
                "position": self.position, "active": self.active}


def _seq(*items: tuple[str, str] | tuple[str, str, str | None, str | None]) -> tuple[Option, ...]:
    out = []
    for i, item in enumerate(items):
        code, label, *rest = item
        color = rest[0] if rest else None
        role = rest[1] if len(rest) > 1 else None
        out.append(Option(code, label, color, role, i))
    return tuple(out)


DEFAULTS: dict[str, tuple[Option, ...]] = {
    "status": _seq(
        ("booked", "Booked", "#9ca3af", "booked"),
        ("confirmed", "Confirmed", "#3b82f6", "confirmed"),
        ("arrived", "Arrived", "#f59e0b", "arrived"),
        ("in_progress", "In treatment", "#8b5cf6", "in_progress"),
        ("done", "Done", "#10b981", "done"),
        ("no_show", "No-show", "#ef4444", "no_show"),
        ("cancelled", "Cancelled", "#6b7280", "cancelled"),
    ),
    "communication_status": _seq(
        ("not_contacted", "Not contacted"), ("reminder_sent", "Reminder sent"),
        ("confirmed", "Confirmed by patient"), ("no_answer", "No answer"), ("call_back", "Call back"),
    ),
    "cancel_reason": _seq(
        ("patient_request", "Patient's request"), ("patient_ill", "Patient ill"),
        ("doctor_unavailable", "Doctor unavailable"), ("rescheduled", "Rescheduled"),
        ("clinic_closed", "Clinic closed"), ("other", "Other"),
    ),
    "no_show_reason": _seq(
        ("forgot", "Forgot"), ("unreachable", "Could not be reached"), ("late", "Came too late"),
        ("other", "Other"),
    ),
    "type": _seq(
        ("first_visit", "First visit"), ("follow_up", "Follow-up"), ("consultation", "Consultation"),
        ("treatment", "Treatment"), ("hygiene", "Hygiene"), ("emergency", "Emergency"),
    ),
    "source": _seq(
        ("phone", "Phone"), ("walk_in", "Walk-in"), ("online", "Online booking"), ("portal", "Patient portal"),
        ("referral", "Referral"), ("staff", "Staff"),
    ),
}


def load(session: Session, clinic_id: int, kind: str) -> list[Option]:
    """The clinic's list of ``kind`` (active and inactive), ordered; the defaults if it has none."""
    rows = session.exec(
        select(AppointmentOption)
        .where(AppointmentOption.clinic_id == clinic_id, AppointmentOption.kind == kind)
        .order_by(col(AppointmentOption.position), col(AppointmentOption.id))
    ).all()
    if not rows:
        return list(DEFAULTS[kind])
    return [Option(r.code, r.label, r.color, r.role, r.position, r.active) for r in rows]


class Options:
    """All lists of one clinic, loaded once per request."""

    def __init__(self, session: Session | None, clinic_id: int, lists: dict[str, list[Option]] | None = None) -> None:
        """The lists as given (e.g. from the set-up cache), else the clinic's (cached while unchanged)."""
        if lists is None:
            from core.scheduling.setup import cached

            assert session is not None
            lists = cached(session, clinic_id).options
        self.lists = lists
        self._by_code: dict[str, dict[str, Option]] = {}
        for kind, items in lists.items():
            codes = self._by_code[kind] = {}
            for option in items:
                codes.setdefault(option.code, option)

    def get(self, kind: str, code: str) -> Option | None:
        return self._by_code[kind].get(code)

    def require(self, kind: str, code: str | None, field: str, *, active: bool = True) -> Option | None:
        if code is None:
            return None
        option = self.get(kind, code)
        if option is None or (active and not option.active):
            known = ", ".join(o.code for o in self.lists[kind] if o.active)
            raise invalid(field, f"unknown {kind.replace('_', ' ')} {code!r}; use one of: {known}", "unknown_code")
        return option

    def status_for_role(self, role: str) -> Option:
        return next(o for o in self.lists["status"] if o.role == role and o.active)

    def role_of(self, status_code: str) -> str | None:
        option = self.get("status", status_code)
        return option.role if option else None

    def blocks(self, status_code: str) -> bool:
        return self.role_of(status_code) not in NON_BLOCKING_ROLES


def replace(session: Session, clinic_id: int, kind: str, items: list[dict[str, Any]],
            actor: audit.Actor) -> list[Option]:
    """Save the clinic's list of ``kind``: given entries are created or updated in the given order,
    stored entries left out are deactivated. Statuses need one active entry for each required role."""
    if kind not in OPTION_KINDS:
        raise invalid("kind", f"unknown list {kind!r}; use one of: {', '.join(OPTION_KINDS)}", "unknown_kind")
    errors = FieldErrors()
    seen: set[str] = set()
    roles: dict[str, int] = {}
    for i, item in enumerate(items):
        code = item["code"]
        if code in seen:
            errors.add(f"items.{i}.code", f"code {code!r} appears twice", "duplicate")
        seen.add(code)
        role = item.get("role")
        if kind != "status" and role is not None:
            errors.add(f"items.{i}.role", "only statuses have a role", "not_allowed")
        if kind == "status" and role is not None:
            if role not in STATUS_ROLES:
                errors.add(f"items.{i}.role", f"unknown role {role!r}; use one of: {', '.join(STATUS_ROLES)}",
                           "unknown_role")
            elif item.get("active", True):
                roles[role] = roles.get(role, 0) + 1
    if not items:
        errors.add("items", "the list may not be empty", "required")
    if kind == "status":
        for role in REQUIRED_ROLES:
            if roles.get(role, 0) == 0:
                errors.add("items", f"one active status must have the role {role!r}", "role_missing")
        for role, count in roles.items():
            if count > 1:
                errors.add("items", f"only one active status may have the role {role!r}", "role_duplicate")
    errors.raise_if_any()

    before = [o.as_dict() for o in load(session, clinic_id, kind)]
    stored = {r.code: r for r in session.exec(
        select(AppointmentOption).where(AppointmentOption.clinic_id == clinic_id, AppointmentOption.kind == kind)
    ).all()}
    before_rows = bool(stored)
    for i, item in enumerate(items):
        row = stored.pop(item["code"], None) or AppointmentOption(clinic_id=clinic_id, kind=kind, code=item["code"],
                                                                  label=item["label"])
        row.label, row.color, row.role = item["label"], item.get("color"), item.get("role")
        row.position, row.active = i, bool(item.get("active", True))
        session.add(row)
    for row in stored.values():
        row.active = False
        session.add(row)
    if not before_rows:
        # first save: keep the defaults left out as inactive entries, so existing appointments still resolve
        given = {item["code"] for item in items}
        for option in DEFAULTS[kind]:
            if option.code not in given:
                session.add(AppointmentOption(
                    clinic_id=clinic_id, kind=kind, code=option.code, label=option.label, color=option.color,
                    role=option.role, position=len(items) + option.position, active=False))
    session.flush()
    after = load(session, clinic_id, kind)
    audit.record(session, actor, "appointment_options.saved", clinic_id=clinic_id, target=f"options:{kind}",
                 data={"kind": kind, "before": before, "after": [o.as_dict() for o in after]})
    return after
