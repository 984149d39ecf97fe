"""What the desk, appointment-book and admin screens share: reading posted forms, turning the services'
field errors into messages in the user's language (plugins' veto messages included), clinic-local times,
display names and htmx responses that refresh parts of a page.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from plugin_sdk.errors import ValidationFailed
from ui import i18n
from ui.forms import _message as pydantic_message
from ui.i18n import N_, _
from ui.web import Page, finish, render_text

T = TypeVar("T")
FORM = "__all__"
Errors = dict[str, list[str]]


# --- posted forms ------------------------------------------------------------------------------------------


async def form_of(page: Page) -> dict[str, Any]:
    """The posted form as ``{name: str}``, plus ``{name + "[]": [str, ...]}`` for repeated names."""
    form = await page.request.form()
    out: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = values[-1] if values else ""
        out[key + "[]"] = values
    return out


def text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def flag(form: dict[str, Any], name: str) -> bool:
    return text(form, name) in ("1", "true", "on", "yes")


def optional_int(form: dict[str, Any], name: str, errors: Errors) -> int | None:
    raw = text(form, name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        errors.setdefault(name, []).append(_("Enter a whole number."))
        return None


def parse_date(raw: str, name: str, errors: Errors, *, required: bool = False) -> date | None:
    if not raw:
        if required:
            errors.setdefault(name, []).append(_("This field is required."))
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.setdefault(name, []).append(_("Enter a date."))
        return None


def parse_time(raw: str, name: str, errors: Errors, *, required: bool = False) -> time | None:
    if not raw:
        if required:
            errors.setdefault(name, []).append(_("This field is required."))
        return None
    try:
        return time.fromisoformat(raw)
    except ValueError:
        errors.setdefault(name, []).append(_("Enter a time."))
        return None


def local_instant(day: date, at: time, tz: ZoneInfo, field: str, errors: Errors) -> datetime | None:
    """The UTC instant of a clinic-local wall time; an hour skipped by a clock change is refused."""
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        errors.setdefault(field, []).append(_("This time does not exist in the clinic's time zone (clock change)."))
        return None
    return aware.astimezone(UTC)


def clinic_zone(page: Page) -> ZoneInfo:
    assert page.clinic is not None
    try:
        return ZoneInfo(page.clinic.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def clinic_today(page: Page) -> date:
    return datetime.now(UTC).astimezone(clinic_zone(page)).date()


# --- errors in the user's language -------------------------------------------------------------------------

# Messages for the services' error codes. A code maps to one message, or to {field prefix: message} with
# "" as the fallback when the same code means different things on different fields.
CODE_MESSAGES: dict[str, str | dict[str, str]] = {
    "required": {
        "": N_("This field is required."),
        "reason": N_("Give a reason."),
        "new_patient_name": N_("Choose a patient, or give the name and phone of a new one."),
        "new_patient_phone": N_("A new patient needs a phone number."),
        "doctor_id": N_("Choose a doctor."),
        "identifiers": N_("This identifier is required."),
        "window_start": N_("Give both ends of the time window."),
        "window_end": N_("Give both ends of the time window."),
    },
    "future": N_("The birth date is in the future."),
    "too_early": N_("The birth date is too far in the past."),
    "too_long": {"": N_("The text is too long."), "end_at": N_("An appointment lasts at most 24 hours."),
                 "password": N_("This password is too long.")},
    "too_short": {"": N_("Give more digits."), "password": N_("The password is too short."),
                  "new_password": N_("The password is too short.")},
    "duplicate": {"": N_("This value is listed twice."), "date": N_("This date already has an entry.")},
    "taken": {"": N_("This value is already taken."), "chart_number": N_("This chart number is already taken."),
              "login": N_("This login name is already taken."), "code": N_("A role with this code exists.")},
    "order": N_("A consent cannot be revoked before it was signed."),
    "unknown_type": N_("This identifier type is not available in this clinic."),
    "unknown_id": N_("This entry no longer exists; reload the page."),
    "end_before_start": N_("The end must be after the start."),
    "unknown_user": N_("This person does not work in this clinic."),
    "unknown_room": N_("This room does not exist in this clinic."),
    "room_inactive": N_("This room is not in use."),
    "unknown_patient": N_("This patient was not found in this clinic."),
    "patient_deleted": N_("This patient's card is in the trash."),
    "patient_merged": N_("This patient's card was merged into another one."),
    "invalid_phone": N_("This is not a valid phone number."),
    "invalid_email": N_("This is not a valid e-mail address."),
    "unknown_code": N_("Choose one of the offered values."),
    "outside_working_hours": N_("This time is outside the doctor's working hours (breaks, days off and holidays "
                                "count)."),
    "nonexistent_time": N_("This time does not exist in the clinic's time zone (clock change)."),
    "in_trash": N_("The appointment is cancelled or in the trash; restore it first."),
    "not_in_trash": N_("The appointment is not in the trash."),
    "pinned": N_("The appointment is already on the pinboard."),
    "reason_required": N_("Use the cancel or no-show action: it needs a reason."),
    "out_of_range": N_("The value is out of the allowed range."),
    "range_too_long": N_("Search at most 62 days at a time."),
    "too_many": N_("Too many were chosen."),
    "not_waiting": N_("This waitlist entry is no longer waiting."),
    "invalid_login": N_("Use 2-100 letters, digits or . _ @ + -, without spaces."),
    "unknown_role": N_("This role does not exist."),
    "unknown_permission": N_("Unknown permission."),
    "conflict": {"": N_("A permission cannot be both granted and withheld."),
                 "identifiers": N_("The two patients have different identifiers of this type; correct one first.")},
    "invalid_code": N_("Use 2-64 lower-case letters, digits or _, starting with a letter."),
    "same": N_("A card cannot be merged into itself."),
    "invalid_weekday": N_("Choose a weekday."),
    "not_allowed": N_("This value cannot be set here."),
    "invalid": {"": N_("The value is not valid."), "phones": N_("This is not a valid phone number."),
                "guardians": N_("This is not a valid phone number or e-mail address."),
                "emails": N_("This is not a valid e-mail address."),
                "identifiers": N_("This number is not valid."),
                "new_patient_phone": N_("This is not a valid phone number.")},
    "wrong_password": N_("This is not your current password."),
    "whitespace": N_("The password must not start or end with a space."),
    "same_as_login": N_("The password must differ from your login name."),
    "reused": N_("Use a password you have not used recently."),
    "plugin_failed": N_("A plugin could not check this change; try again or ask your administrator."),
}
ANY_FIELD = ""
# Codes where the service's own words add a useful detail (e.g. why an identifier is invalid).
KEEP_DETAIL = {"invalid"}


def code_message(field: str, code: str, fallback: str) -> str:
    """The message of a service error code in the current language; ``fallback`` when the code is unknown."""
    entry = CODE_MESSAGES.get(code)
    if entry is None:
        return fallback
    if isinstance(entry, str):
        return i18n.gettext(entry)
    for prefix, message in entry.items():
        if prefix and (field == prefix or field.startswith(prefix + ".")):
            return i18n.gettext(message)
    return i18n.gettext(entry[ANY_FIELD])


def field_error_map(exc: ValidationFailed, *, rename: Callable[[str], str] | None = None,
                    known: Iterable[str] = ()) -> Errors:
    """``{form field: [messages]}`` for a refused write. A plugin's message is shown as the plugin wrote it
    (through its own catalog when it is a msgid there); errors of fields the form lacks go to the form."""
    names = set(known)
    out: Errors = {}
    for error in exc.errors:
        target = rename(error.field) if rename else error.field
        if exc.plugin and error.code != "plugin_failed":
            message = i18n.plugin_text(exc.plugin, error.message)
        elif error.code == "plugin_failed":
            message = code_message(error.field, error.code, error.message)
        else:
            message = code_message(error.field, error.code, error.message)
            if error.code in KEEP_DETAIL and error.field.startswith("identifiers."):
                message = f"{message} ({error.message})"
        if names and target not in names:
            target = FORM
        out.setdefault(target, [])
        if message not in out[target]:
            out[target].append(message)
    return out


def pydantic_errors(exc: ValidationError, *, rename: Callable[[str], str] | None = None,
                    known: Iterable[str] = ()) -> Errors:
    """Errors of a pydantic model built from a form, by form field, in the current language."""
    names = set(known)
    out: Errors = {}
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        target = rename(loc) if rename else loc
        kind = error["type"]
        if kind in ("date_parsing", "date_from_datetime_parsing", "date_type", "datetime_parsing"):
            message = _("Enter a date.")
        elif kind in ("time_parsing", "time_type"):
            message = _("Enter a time.")
        elif kind in ("string_too_short", "too_short") and int((error.get("ctx") or {}).get("min_length", 0)) <= 1:
            message = _("This field is required.")
        elif kind == "extra_forbidden":
            message = _("This value cannot be set here.")
        elif kind in ("uuid_parsing", "uuid_type"):
            message = _("Choose one of the offered values.")
        else:
            message = pydantic_message(kind, dict(error.get("ctx") or {}), error["msg"])
        if names and target not in names:
            target = FORM
        out.setdefault(target, []).append(message)
    return out


def merge_errors(*maps: Errors) -> Errors:
    out: Errors = {}
    for errors in maps:
        for key, values in errors.items():
            out.setdefault(key, []).extend(v for v in values if v not in out.get(key, []))
    return out


# --- running services --------------------------------------------------------------------------------------


async def call(page: Page, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking) service call in the threadpool with the request's language active."""

    def run() -> T:
        with i18n.using(page.locale):
            return fn(*args, **kwargs)

    return await run_in_threadpool(run)


def htmx_response(page: Page, body: str, *, status: int = 200, trigger: str | None = None,
                  flash: bool = True) -> Response:
    """An htmx answer: ``body`` plus the flash messages (out of band); ``trigger`` fires a client event so
    every part of the page listening for it reloads itself."""
    if flash:
        body += render_text(page, "partials/flash.html", {"oob": True})
    response = HTMLResponse(body, status_code=status)
    if trigger:
        response.headers["HX-Trigger"] = trigger
    return finish(page, response)


# --- names and display ---------------------------------------------------------------------------------------

_CJK = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def full_name(family: str | None, given: str | None) -> str:
    """Family name first; East Asian names are written without a space (김서연, 王芳)."""
    family, given = (family or "").strip(), (given or "").strip()
    if not given:
        return family
    if _CJK.search(family) and _CJK.search(given):
        return family + given
    return f"{family} {given}"


def initials(name: str) -> str:
    letters = [w[0] for w in name.split() if w and unicodedata.category(w[0]).startswith("L")]
    return "".join(letters[:2]).upper() or name[:1]


def tint(color: str | None, amount: float = 0.82) -> str:
    """A light tint of ``#rrggbb`` (mixed with white) for a background that keeps dark text readable."""
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", color or "")
    if not match:
        return "#eef1f5"
    value = match.group(1)
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    mixed = [round(c + (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def shade(color: str | None) -> str:
    """A darker form of ``#rrggbb`` for borders and small text on white (keeps 3:1 or better)."""
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", color or "")
    if not match:
        return "#4a5260"
    value = match.group(1)
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return "#" + "".join(f"{round(c * 0.62):02x}" for c in (r, g, b))


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


# --- the clinic's option lists (statuses, reasons, types...) --------------------------------------------------

# The built-in entries' labels (core.scheduling.options.DEFAULTS), for translation. A clinic that renamed an
# entry sees its own label as typed.
DEFAULT_OPTION_LABELS = {
    "Booked": N_("Booked"), "Confirmed": N_("Confirmed"), "Arrived": N_("Arrived"),
    "In treatment": N_("In treatment"), "Done": N_("Done"), "No-show": N_("No-show"), "Cancelled": N_("Cancelled"),
    "Not contacted": N_("Not contacted"), "Reminder sent": N_("Reminder sent"),
    "Confirmed by patient": N_("Confirmed by patient"), "No answer": N_("No answer"), "Call back": N_("Call back"),
    "Patient's request": N_("Patient's request"), "Patient ill": N_("Patient ill"),
    "Doctor unavailable": N_("Doctor unavailable"), "Rescheduled": N_("Rescheduled"),
    "Clinic closed": N_("Clinic closed"), "Other": N_("Other"), "Forgot": N_("Forgot"),
    "Could not be reached": N_("Could not be reached"), "Came too late": N_("Came too late"),
    "First visit": N_("First visit"), "Follow-up": N_("Follow-up"), "Consultation": N_("Consultation"),
    "Treatment": N_("Treatment"), "Hygiene": N_("Hygiene"), "Emergency": N_("Emergency"), "Phone": N_("Phone"),
    "Walk-in": N_("Walk-in"), "Online booking": N_("Online booking"), "Patient portal": N_("Patient portal"),
    "Referral": N_("Referral"), "Staff": N_("Staff"),
}


def option_label(kind: str, code: str | None, label: str | None = None) -> str:
    """An option's label in the user's language: built-in entries translated, a clinic's own as typed."""
    from core.scheduling.options import DEFAULTS

    if code is None:
        return ""
    default = next((o for o in DEFAULTS.get(kind, ()) if o.code == code), None)
    if default is not None and (label is None or label == default.label) and default.label in DEFAULT_OPTION_LABELS:
        return i18n.gettext(DEFAULT_OPTION_LABELS[default.label])
    return label or code


def status_label(appointment: dict[str, Any]) -> str:
    return option_label("status", appointment.get("status"), appointment.get("status_label"))


# --- plugins' panels (praxis_panels) ------------------------------------------------------------------------


def plugin_panels(page: Page, where: str, **ids: str) -> list[dict[str, str]]:
    """The panels the plugins enabled in the clinic add to a screen (``where``: "patient" or "visit"), with
    their URLs under the plugin's API mount and ``{patient_id}``/``{appointment_id}`` filled in. Asked on every
    page, so a plugin switched off loses its panels at once; panels needing a permission the user lacks are left
    out. The browser loads each one (screens.js)."""
    from plugin_sdk.contributions import Panel

    clinic_id = page.clinic_id
    if clinic_id is None:
        return []
    found: list[tuple[int, str, dict[str, str]]] = []
    for result in page.praxis.runtime.call("praxis_panels", clinic_id, where=where):
        if not result.ok or not result.value:
            continue
        for index, panel in enumerate(result.value):
            if not isinstance(panel, Panel) or (panel.permission and not page.can(panel.permission)):
                continue
            path = panel.url
            for key, value in ids.items():
                path = path.replace("{" + key + "}", value)
            if "{" in path or not path.startswith("/"):
                continue  # a placeholder this screen cannot fill
            found.append((panel.order, f"{result.plugin}.{index}", {
                "plugin": result.plugin, "title": i18n.plugin_text(result.plugin, panel.title),
                "url": f"/api/clinics/{clinic_id}/x/{result.plugin}{path}"}))
    found.sort(key=lambda x: (x[0], x[1]))
    return [panel for _, _, panel in found]
