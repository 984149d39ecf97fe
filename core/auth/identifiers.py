"""Professional identifiers of staff: the typed values (``IdentifierType`` with ``applies_to="staff"``)
that the plugins enabled in a person's clinics contribute, e.g. ``hu.stamp`` from the Hungary plugin.

A value is checked and normalised by its type's ``normalize``; a type is accepted only when its plugin is
enabled in at least one clinic the person works in. One value per type and person. Changes are audited
with the values before and after (they are public registration numbers, not secrets).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from core import audit
from core.clock import now
from core.models.auth import Membership, UserIdentifier
from core.patients.identifiers import normalise
from plugin_sdk.contributions import IdentifierType
from plugin_sdk.errors import FieldError, ValidationFailed

MAX_VALUE = 200
_types_cache: weakref.WeakKeyDictionary[Any, list[tuple[str, IdentifierType]]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class StaffType:
    plugin: str
    kind: IdentifierType


def _all_staff_types(runtime: Any) -> list[tuple[str, IdentifierType]]:
    cached = _types_cache.get(runtime)
    if cached is None:
        cached = []
        for result in runtime.collect("praxis_identifier_types"):
            for item in result.value or []:
                if isinstance(item, IdentifierType) and item.applies_to == "staff":
                    cached.append((result.plugin, item))
        _types_cache[runtime] = cached
    return cached


def types_for_clinics(runtime: Any, clinic_ids: list[int] | set[int]) -> dict[str, StaffType]:
    """Staff identifier types of the plugins enabled in any of these clinics, by code."""
    enabled: set[str] = set()
    for clinic_id in clinic_ids:
        enabled |= set(runtime.enabled(clinic_id, include_open_circuits=True))
    return {t.code: StaffType(plugin, t) for plugin, t in _all_staff_types(runtime) if plugin in enabled}


def _clinics_of(session: Session, user_id: int) -> list[int]:
    return list(session.exec(select(Membership.clinic_id).where(Membership.user_id == user_id)).all())


def identifiers_of(session: Session, runtime: Any, user_id: int) -> list[dict[str, Any]]:
    """The person's identifiers, with the type's title and country when its plugin is still installed."""
    rows = session.exec(select(UserIdentifier).where(UserIdentifier.user_id == user_id)
                        .order_by(col(UserIdentifier.type_code))).all()
    known = {t.code: t for _, t in _all_staff_types(runtime)}
    out = []
    for row in rows:
        kind = known.get(row.type_code)
        out.append({"type": row.type_code, "title": kind.title if kind else row.type_code,
                    "country": kind.country if kind else None, "value": row.value})
    return out


def identifiers_by_user(session: Session, runtime: Any, user_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """``identifiers_of`` for several people in one query."""
    found: dict[int, list[dict[str, Any]]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return found
    known = {t.code: t for _, t in _all_staff_types(runtime)}
    rows = session.exec(select(UserIdentifier).where(col(UserIdentifier.user_id).in_(user_ids))
                        .order_by(col(UserIdentifier.type_code))).all()
    for row in rows:
        kind = known.get(row.type_code)
        found.setdefault(row.user_id, []).append({"type": row.type_code, "title": kind.title if kind else row.type_code,
                                                  "country": kind.country if kind else None, "value": row.value})
    return found


def set_identifiers(session: Session, runtime: Any, actor: audit.Actor, user_id: int,
                    values: dict[str, str | None]) -> list[dict[str, Any]]:
    """Set (or with ``None`` / an empty string remove) the person's identifiers of the given types; other
    types stay as they are. Raises ``ValidationFailed`` naming ``identifiers.<type>`` for an unknown type,
    a type whose plugin none of the person's clinics enables, or a value its type refuses."""
    types = types_for_clinics(runtime, _clinics_of(session, user_id))
    stored = {r.type_code: r for r in session.exec(select(UserIdentifier).where(UserIdentifier.user_id == user_id))}
    errors: list[FieldError] = []
    wanted: dict[str, str | None] = {}
    for code, raw in values.items():
        field = f"identifiers.{code}"
        clean = raw.strip() if isinstance(raw, str) else raw
        if not clean:
            if code not in stored and code not in types:
                errors.append(FieldError(field, f"unknown identifier type {code!r}", "unknown_type"))
            wanted[code] = None
            continue
        staff_type = types.get(code)
        if staff_type is None:
            known = ", ".join(sorted(types)) or "none: no plugin with staff identifiers is enabled in their clinics"
            errors.append(FieldError(field, f"unknown identifier type {code!r} for this person's clinics; "
                                            f"known: {known}", "unknown_type"))
            continue
        if len(clean) > MAX_VALUE:
            errors.append(FieldError(field, f"at most {MAX_VALUE} characters", "too_long"))
            continue
        try:
            wanted[code] = normalise(staff_type.kind, clean)
        except ValueError as exc:
            errors.append(FieldError(field, str(exc) or "not a valid value", "invalid_identifier"))
    if errors:
        raise ValidationFailed(errors)
    before = {code: row.value for code, row in stored.items()}
    at = now()
    for code, value in wanted.items():
        row = stored.get(code)
        if value is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(UserIdentifier(user_id=user_id, type_code=code, value=value, updated_at=at))
        elif row.value != value:
            row.value, row.updated_at = value, at
            session.add(row)
    session.flush()
    after = {code: value for code, value in {**before, **wanted}.items() if value is not None}
    changed = {code: {"from": before.get(code), "to": after.get(code)} for code in sorted(set(before) | set(after))
               if before.get(code) != after.get(code)}
    if changed:
        audit.record(session, actor, "user.identifiers_changed", target=f"user:{user_id}", data=changed)
    return identifiers_of(session, runtime, user_id)
