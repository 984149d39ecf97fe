"""What the messaging screens share: titles of statuses, channels, rule kinds and error codes in the user's
language, the engine's field errors turned into messages next to the form's fields, summaries of rules, the
tabs, and the menu entry.

The screens call ``core.messaging.service`` (the same functions as ``/api/clinics/{id}/messaging``) and
``core.messaging.ui_queries`` for the few read-only look-ups the API has no route for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import time
from typing import Any

from fastapi.responses import Response

from core.auth.errors import ApiError
from core.models.messaging import APPOINTMENT_KINDS, RuleKind
from plugin_sdk.errors import FieldError, ValidationFailed
from ui import i18n, menu
from ui.i18n import N_, _
from ui.screens import FORM, Errors, call, code_message
from ui.web import Page, PageError, redirect_with_flash

VIEW, SEND, MANAGE = "messaging.view", "messaging.send", "messaging.manage"
PAGE_SIZE = 50

menu.register(menu.CoreItem("messaging", N_("Messages"), "/clinics/{clinic_id}/messaging", VIEW, 40))

STATUSES = ("queued", "sending", "sent", "delivered", "failed", "unknown", "cancelled")
# The badge colour of each status (classes of screens.css).
STATUS_CLASSES = {"queued": "pending", "sending": "pending", "sent": "done", "delivered": "done", "failed": "failed",
                  "unknown": "unknown", "cancelled": "cancelled"}
CHANNEL_TITLES = {"patient": N_("The patient's preferred channel"), "sms": N_("SMS"), "email": N_("E-mail"),
                  "any": N_("Any channel")}
KIND_TITLES = {
    RuleKind.days_before: N_("Days before the appointment"),
    RuleKind.minutes_before: N_("Minutes before the appointment"),
    RuleKind.on_booking: N_("When an appointment is booked"),
    RuleKind.status_changed: N_("When an appointment's status changes"),
    RuleKind.post_treatment: N_("After a treatment"),
    RuleKind.birthday: N_("Birthday greeting"),
    RuleKind.after_services: N_("Some days after given services"),
    RuleKind.recall: N_("Recall after the last visit"),
    RuleKind.event: N_("When an event happens (e.g. lab results are ready)"),
    "manual": N_("Sent by hand"),
}
KIND_HELP = {
    RuleKind.days_before: N_("A reminder a number of days before the appointment, at a time of day (clinic time)."),
    RuleKind.minutes_before: N_("A reminder a number of minutes before the appointment starts."),
    RuleKind.on_booking: N_("A confirmation right after an appointment is booked, or a few minutes later."),
    RuleKind.status_changed: N_("A message when an appointment gets the chosen status, e.g. no-show."),
    RuleKind.post_treatment: N_("Instructions after a visit is done, optionally only for some appointment types."),
    RuleKind.birthday: N_("A greeting on the patient's birthday, or some days before it."),
    RuleKind.after_services: N_("A message some days after the patient received one of the given services."),
    RuleKind.recall: N_("A reminder to come back some months after the last visit."),
    RuleKind.event: N_("A message when something happens to the patient, e.g. their lab results are ready."),
}
DAY_TYPE_TITLES = {"working": N_("Working days only"), "holiday": N_("Holidays and days off only")}
# Readable reasons of the engine's error codes (a vendor's own code is shown as it is, with the vendor's words).
ERROR_TITLES = {
    "invalid_address": N_("The address cannot receive this kind of message."),
    "no_address": N_("There is no phone number or e-mail address on record."),
    "opted_out": N_("The patient does not want messages on this channel."),
    "appointment_inactive": N_("The appointment was cancelled or deleted."),
    "appointment_moved": N_("The appointment was moved."),
    "too_late": N_("Too late: the appointment starts before the message could go out."),
    "template_missing": N_("There is no template for this language and channel."),
    "status_changed": N_("The appointment's status changed."),
    "rule_disabled": N_("The rule was switched off or deleted."),
    "filtered": N_("The appointment no longer matches the rule."),
    "expired": N_("Not sent in time: the appointment had started."),
    "attempts_exhausted": N_("Given up after repeated failed attempts."),
    "unknown_outcome": N_("The vendor could not tell whether the message was sent."),
    "given_up": N_("Given up by a member of staff."),
    "vendor_failed": N_("The vendor refused the message."),
    "vendor_refused": N_("The vendor refused the message."),
    "retryable": N_("The vendor could not take the message; it is tried again."),
    "placeholder_failed": N_("A plugin could not fill a placeholder of the text."),
    "placeholder_empty": N_("A plugin had no value for a placeholder of the text."),
    "placeholder_unavailable": N_("A placeholder of the text comes from a plugin that is no longer enabled."),
    "placeholder_paused": N_("Waiting: the plugin that fills a placeholder is paused after repeated failures."),
    "placeholder_retry": N_("The plugin that fills a placeholder could not do it now; it is tried again."),
}
REPLY_TITLES = {"confirmed": N_("Confirmed the appointment"), "cancelled": N_("Cancelled the appointment"),
                "unmatched": N_("No matching message"), "ignored": N_("Not acted on"), "failed": N_("Could not act"),
                "none": N_("Recorded")}
RESOLVE_TITLES = {"sent": N_("Marked as sent"), "failed": N_("Given up")}


def titles(mapping: dict[str, str]) -> dict[str, str]:
    return {str(key): i18n.gettext(value) for key, value in mapping.items()}


def status_titles() -> dict[str, str]:
    """A message's status in words (a message's own context: "failed" is not a failed check)."""
    return {"queued": i18n.pgettext("message status", "Queued"), "sending": i18n.pgettext("message status", "Sending"),
            "sent": i18n.pgettext("message status", "Sent"), "delivered": i18n.pgettext("message status", "Delivered"),
            "failed": i18n.pgettext("message status", "Failed"), "unknown": i18n.gettext("Outcome unknown"),
            "cancelled": i18n.pgettext("message status", "Cancelled")}


def status_choices() -> list[tuple[str, str]]:
    titles_ = status_titles()
    return [(code, titles_[code]) for code in STATUSES]


def error_title(code: str | None) -> str:
    """The engine's error code in words; empty for a vendor's own code (shown as the code with its text)."""
    title = ERROR_TITLES.get(code or "")
    return i18n.gettext(title) if title else ""


def plugin_title(page: Page, name: str | None) -> str:
    if not name:
        return ""
    loaded = page.praxis.runtime.get(name)
    if loaded is None or loaded.manifest is None:
        return name
    return i18n.plugin_text(name, loaded.manifest.title)


def common(page: Page, tab: str, **extra: Any) -> dict[str, Any]:
    """What every messaging page's template needs: its tab, the base URL and the translated titles."""
    return {"tab": tab, "base": f"/clinics/{page.clinic_id}/messaging", "status_titles": status_titles(),
            "status_classes": STATUS_CLASSES, "channel_titles": titles(CHANNEL_TITLES),
            "kind_titles": titles(KIND_TITLES), "can_send": page.can(SEND), "can_manage": page.can(MANAGE),
            **extra}


# --- the engine's refusals in the user's language ------------------------------------------------------------

_BRACED = re.compile(r"\{(\w+)\}")
_TEMPLATE = re.compile(r"template '([^']*)' \(([^)]*)\)")
_RANGE = re.compile(r"from (-?\d+) to (-?\d+)")
_USED_BY = re.compile(r"used by ([\w, ]+) rules")
_NOT_PLACEHOLDER = re.compile(r"^(\{[^}]*\}) is not a placeholder")
_QUOTED = re.compile(r"'([^']*)'")
_FROM_PLUGIN = re.compile(r"(\{\w+\}) comes from the plugin (.+), which is not enabled")


def _braced(text: str) -> str:
    return ", ".join("{" + name + "}" for name in dict.fromkeys(_BRACED.findall(text)))


def _quoted(text: str) -> str:
    found = _QUOTED.search(text)
    return found.group(1) if found else ""


def error_text(error: FieldError) -> str:
    """One field error of ``core.messaging`` in the user's language."""
    field, code, message = error.field, error.code, error.message
    if code == "unknown_placeholder":
        names = _braced(message.split(";")[0])
        return _("Unknown placeholder %(names)s: use the names in the list of placeholders.") % {"names": names}
    if code == "invalid_placeholder":
        found = _NOT_PLACEHOLDER.match(message)
        if found:
            return _("%(field)s is not a placeholder: write a plain name in braces, e.g. {patient_name}.") % {
                "field": found.group(1)}
        return _("The braces do not match: a placeholder is a name in braces, e.g. {patient_name}; "
                 "write {{ or }} for a brace itself.")
    if code == "placeholder_not_available":
        names = _braced(message.split(":", 1)[-1] if _TEMPLATE.match(message) else message)
        used_by = _USED_BY.search(message)
        if used_by:
            kinds = ", ".join(i18n.gettext(KIND_TITLES[k.strip()]) if k.strip() in KIND_TITLES else k.strip()
                              for k in used_by.group(1).split(","))
            return _("%(names)s need an appointment, but this template is used by rules without one: %(kinds)s.") % {
                "names": names, "kinds": kinds}
        template = _TEMPLATE.match(message)
        if template:
            return _("Template %(template)s (%(language)s) uses %(names)s, but this kind of message has no "
                     "appointment to fill them from.") % {"template": template.group(1),
                                                          "language": template.group(2), "names": names}
        return _("This kind of message has no appointment to fill %(names)s from.") % {"names": names}
    if code == "placeholder_unavailable":
        found = _FROM_PLUGIN.search(message)
        if found:
            return _("%(name)s comes from the plugin %(plugin)s, which is not enabled in this clinic.") % {
                "name": found.group(1), "plugin": found.group(2)}
        return _("A placeholder of this text comes from a plugin that is not enabled in this clinic.")
    if code == "unknown_template":
        return _("There is no template with this code yet; create it first.")
    if code == "unknown_event":
        return _("No installed plugin announces this event; use lab.result_ready or <plugin>.<event>.")
    if code == "unknown_parameter":
        return _("This setting does not belong to this kind of rule: %(name)s.") % {
            "name": field.removeprefix("params.")}
    if code == "unknown_code":
        if field == "params.status":
            return _("This appointment status does not exist in this clinic.")
        if field.endswith("type_codes"):
            return _("Unknown appointment type %(code)s.") % {"code": _quoted(message)}
        if field.endswith("communication_status"):
            return _("This communication status does not exist in this clinic.")
        if field == "cancel_reason":
            return _("This cancel reason does not exist in this clinic.")
    if code == "required":
        required = {"params.at": N_("Give the time of day."),
                    "params.status": N_("Choose the status that sends the message."),
                    "params.services": N_("Give at least one service code."),
                    "params.type_codes": N_("Choose at least one appointment type."),
                    "body": N_("Choose a template or write a text."),
                    "patient_ids": N_("Choose a patient.")}
        if field in required:
            return i18n.gettext(required[field])
    if code == "invalid":
        bounds = _RANGE.search(message)
        if bounds:
            return _("Enter a whole number from %(low)s to %(high)s.") % {
                "low": i18n.format_number(int(bounds.group(1))), "high": i18n.format_number(int(bounds.group(2)))}
        invalid = {"params.at": N_("Enter a time of day, e.g. 12:30."),
                   "params.event": N_("Enter an event name such as lab.result_ready or <plugin>.<event>."),
                   "params.type_codes": N_("Give a list of codes."), "params.services": N_("Give a list of codes."),
                   "params.link": N_("Enter at most 500 characters.")}
        if field in invalid:
            return i18n.gettext(invalid[field])
    if code == "duplicate":
        if field == "name":
            return _("A rule with this name exists.")
        if field == "language":
            return _("This template already has a text in this language for this channel.")
    if code == "empty_range":
        return _("The end must differ from the start.")
    if code == "overlap":
        return _("A reply cannot both confirm and cancel.")
    if code == "invalid_address":
        return _("The patient's card has no usable address on this channel (%(detail)s).") % {"detail": message}
    if code == "not_found":
        if field in ("patient_ids", "patient_id"):
            return _("This patient was not found in this clinic.")
        return _("This entry no longer exists; reload the page.")
    if code == "empty":
        return _("No patient matches.")
    return code_message(field, code, message)


def field_errors(exc: ValidationFailed, known: Iterable[str] = (), *, form: str = FORM) -> Errors:
    """``{form field: [messages]}`` of a refused write; errors of fields the form lacks go to ``form``."""
    names = set(known)
    out: Errors = {}
    for error in exc.errors:
        target = error.field if not names or error.field in names else form
        message = error_text(error)
        if message not in out.setdefault(target, []):
            out[target].append(message)
    return out


CONFLICTS = {
    "version_conflict": N_("Someone else changed this meanwhile. Reload the page and make your change again."),
    "rule_in_use": N_("Messages in the log came from this rule, so it cannot be deleted; switch it off instead."),
    "template_in_use": N_("Rules use this template; give them another template first."),
    "not_retryable": N_("Only failed, cancelled or undecided messages can be sent again."),
    "not_resolvable": N_("This message cannot be marked that way any more; reload the page."),
}


def conflict_text(exc: ApiError) -> str:
    message = CONFLICTS.get(exc.code)
    return i18n.gettext(message) if message else exc.message


async def delete_then_redirect(page: Page, fn: Callable[..., Any], item_id: int, *, done: str, listing: str,
                               item: str) -> Response:
    """Delete through ``fn(praxis, clinic_id, item_id, actor)``: back to ``listing`` with ``done`` (a msgid), or
    to ``item`` with the refusal (in use); 404 for an item of another clinic."""
    assert page.principal is not None and page.clinic_id is not None
    try:
        await call(page, fn, page.praxis, page.clinic_id, item_id, page.principal.actor)
    except ApiError as exc:
        if exc.status_code == 404:
            raise PageError(404, "not_found") from None
        with i18n.using(page.locale):
            page.flash(conflict_text(exc), "error")
        return redirect_with_flash(page, item)
    with i18n.using(page.locale):
        page.flash(i18n.gettext(done))
    return redirect_with_flash(page, listing)


# --- rules in words ------------------------------------------------------------------------------------------


def _at(value: Any) -> str:
    try:
        return i18n.format_time(time.fromisoformat(str(value)))
    except ValueError:
        return str(value or "")


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def rule_summary(rule: dict[str, Any], labels: dict[str, dict[str, str]]) -> list[str]:
    """When a rule sends, in a few phrases; ``labels`` has the clinic's option labels by list ("status", "type")."""
    kind, p = rule["kind"], rule.get("params") or {}
    at = _at(p.get("at"))
    parts: list[str] = []
    if kind == RuleKind.days_before:
        days = _int(p.get("days"))
        parts.append(_("On the day of the appointment, at %(time)s") % {"time": at} if days == 0 else
                     i18n.ngettext("%(num)d day before, at %(time)s", "%(num)d days before, at %(time)s", days)
                     % {"num": days, "time": at})
    elif kind == RuleKind.minutes_before:
        minutes = _int(p.get("minutes"))
        parts.append(i18n.ngettext("%(num)d minute before the start", "%(num)d minutes before the start", minutes)
                     % {"num": minutes})
    elif kind == RuleKind.on_booking:
        parts.append(_("When the appointment is booked"))
    elif kind == RuleKind.status_changed:
        status = str(p.get("status") or "")
        parts.append(_("When the status becomes %(status)s") % {"status": labels["status"].get(status, status)})
    elif kind == RuleKind.post_treatment:
        parts.append(_("When a visit is done"))
    elif kind == RuleKind.birthday:
        days = _int(p.get("days_before"))
        parts.append(_("On the birthday, at %(time)s") % {"time": at} if days == 0 else
                     i18n.ngettext("%(num)d day before the birthday, at %(time)s",
                                   "%(num)d days before the birthday, at %(time)s", days) % {"num": days, "time": at})
    elif kind == RuleKind.after_services:
        days = _int(p.get("days"))
        parts.append(i18n.ngettext("%(num)d day after %(services)s, at %(time)s",
                                   "%(num)d days after %(services)s, at %(time)s", days)
                     % {"num": days, "services": ", ".join(p.get("services") or []), "time": at})
    elif kind == RuleKind.recall:
        months = _int(p.get("months"))
        parts.append(i18n.ngettext("%(num)d month after the last visit, at %(time)s",
                                   "%(num)d months after the last visit, at %(time)s", months)
                     % {"num": months, "time": at})
    elif kind == RuleKind.event:
        parts.append(_("On %(event)s") % {"event": p.get("event") or ""})
    delay = _int(p.get("delay_minutes"))
    if delay:
        parts.append(i18n.ngettext("%(num)d minute later", "%(num)d minutes later", delay) % {"num": delay})
    types = list(p.get("type_codes") or [])
    if types:
        parts.append(_("Types: %(types)s") % {"types": ", ".join(labels["type"].get(t, t) for t in types)})
    return parts


def filter_summary(rule: dict[str, Any], labels: dict[str, dict[str, str]], doctors: dict[int, str]) -> list[str]:
    f = rule.get("filters") or {}
    if rule["kind"] not in APPOINTMENT_KINDS:
        return []
    parts = []
    if f.get("doctor_ids"):
        parts.append(_("Doctors: %(names)s") % {"names": ", ".join(doctors.get(d, str(d)) for d in f["doctor_ids"])})
    if f.get("type_codes"):
        parts.append(_("Types: %(types)s") % {"types": ", ".join(labels["type"].get(t, t) for t in f["type_codes"])})
    day_type = DAY_TYPE_TITLES.get(f.get("day_type") or "")
    if day_type:
        parts.append(i18n.gettext(day_type))
    if f.get("created_today"):
        parts.append(_("Only appointments booked the same day"))
    return parts
