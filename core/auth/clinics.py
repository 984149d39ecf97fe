"""Creating and changing clinics (tenants), with validated country, time zone and locale.

Lives beside the auth code because a clinic's creation also makes its creator an administrator there.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from typing import TYPE_CHECKING, Any

from babel import Locale
from sqlmodel import Session

from core import audit
from core.auth.permissions import ADMIN
from core.models.clinic import Clinic
from core.plugins.state import bump_generation
from plugin_sdk.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from core.app_context import Praxis
    from core.models.auth import User

LOCALES = ("en", "hu", "ko", "ru", "zh")
# CLDR territories that are not countries
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "ZZ", "QO"})
EDITABLE = ("name", "country", "timezone", "locale", "address", "phone", "email")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, from Babel's CLDR data."""
    return frozenset(c for c in Locale("en").territories if re.fullmatch(r"[A-Z]{2}", c) and c not in _NOT_COUNTRIES)


@cache
def timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate(values: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Normalise and check the given clinic fields (only those present)."""
    out: dict[str, Any] = {}
    errors: list[FieldError] = []
    if "name" in values:
        name = str(values["name"] or "").strip()
        if not name or len(name) > 200:
            errors.append(FieldError("name", "is required (at most 200 characters)", "required"))
        out["name"] = name
    if "country" in values:
        country = str(values["country"] or "").strip().upper()
        if country not in countries():
            errors.append(FieldError("country", f"{values['country']!r} is not an ISO 3166 country code such as "
                                     "'HU' or 'KR'", "invalid_country"))
        out["country"] = country
    if "timezone" in values:
        tz = str(values["timezone"] or "").strip()
        if tz not in timezones():
            errors.append(FieldError("timezone", f"{values['timezone']!r} is not an IANA time zone such as "
                                     "'Europe/Budapest'", "invalid_timezone"))
        out["timezone"] = tz
    if "locale" in values:
        locale = str(values["locale"] or "").strip().lower()
        if locale not in LOCALES:
            errors.append(FieldError("locale", f"must be one of {', '.join(LOCALES)}", "invalid_locale"))
        out["locale"] = locale
    for key, limit in (("address", 500), ("phone", 32), ("email", 254)):
        if key in values:
            value = str(values[key] or "").strip()
            if len(value) > limit:
                errors.append(FieldError(key, f"must be at most {limit} characters", "too_long"))
            elif key == "email" and value and not EMAIL_RE.match(value):
                errors.append(FieldError(key, "is not an e-mail address", "invalid_email"))
            out[key] = value
    return out, errors


def create_clinic(praxis: Praxis, session: Session, actor: audit.Actor, values: dict[str, Any], *,
                  admin: User | None = None) -> Clinic:
    """Create a clinic in the caller's transaction, seed its plugin state, and make ``admin`` its administrator.

    Call ``praxis.runtime.state.invalidate()`` after the commit so this process sees the clinic at once.
    """
    required = {"name": "", "country": "", "timezone": "", "locale": ""}
    clean, errors = validate({**required, **values})
    if errors:
        raise ValidationFailed(errors)
    clinic = Clinic(**clean)
    session.add(clinic)
    session.flush()
    assert clinic.id is not None
    audit.record(session, actor, "clinic.created", clinic_id=clinic.id, target=f"clinic:{clinic.id}", data=clean)
    praxis.plugins.seed(session, clinic)
    if admin is not None:
        from core.auth.permissions import catalog
        from core.auth.users import MembershipSpec, set_membership

        set_membership(session, catalog(praxis.runtime), actor, admin, MembershipSpec(clinic.id, ADMIN))
    return clinic


def update_clinic(session: Session, actor: audit.Actor, clinic: Clinic, values: dict[str, Any]) -> Clinic:
    unknown = sorted(set(values) - set(EDITABLE))
    if unknown:
        raise ValidationFailed([FieldError(k, "cannot be changed here", "unknown_field") for k in unknown])
    clean, errors = validate(values)
    if errors:
        raise ValidationFailed(errors)
    diff = {k: {"from": getattr(clinic, k), "to": v} for k, v in clean.items() if getattr(clinic, k) != v}
    for key, value in clean.items():
        setattr(clinic, key, value)
    session.add(clinic)
    session.flush()
    if diff:
        audit.record(session, actor, "clinic.updated", clinic_id=clinic.id, target=f"clinic:{clinic.id}", data=diff)
        bump_generation(session)  # plugins see the clinic's country, zone and locale through the state cache
    return clinic
