"""Reminder and notification rules: the list (what each rule sends, when, to whom, switched on or off) and the
editor. The editor shows the fields of the chosen kind (swapped in by htmx when the kind changes; without
JavaScript the page reloads with them), the filters of appointment rules, the template, the channel and the
communication status set after sending. The engine's refusals are shown next to their fields.

Writes go through ``core.messaging.service`` (create, update, enable/disable, delete), which re-plans the
rule's messages in the same transaction.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session

from core.auth.errors import ApiError
from core.messaging import delivery, service
from core.messaging.schemas import RuleIn, RulePatch, check_rule_params
from core.models.messaging import APPOINTMENT_KINDS, RuleKind
from plugin_sdk.errors import FieldError, ValidationFailed
from ui import i18n
from ui.i18n import N_, _
from ui.routes.book import option_choices, options_of, resources
from ui.routes.messaging_common import (
    CHANNEL_TITLES,
    DAY_TYPE_TITLES,
    KIND_HELP,
    KIND_TITLES,
    MANAGE,
    VIEW,
    common,
    conflict_text,
    delete_then_redirect,
    field_errors,
    filter_summary,
    rule_summary,
    titles,
)
from ui.screens import FORM, Errors, call, form_of, htmx_response, merge_errors, pydantic_errors, text
from ui.web import Page, PageError, clinic_page, redirect_with_flash, render, render_text

router = APIRouter(prefix="/clinics/{clinic_id}/messaging/rules", include_in_schema=False)

# The parameters of each kind of rule and how the form carries them (see core.messaging.schemas).
KIND_PARAMS: dict[str, tuple[tuple[str, str], ...]] = {
    RuleKind.days_before: (("days", "int"), ("at", "time")),
    RuleKind.minutes_before: (("minutes", "int"),),
    RuleKind.on_booking: (("delay_minutes", "int"),),
    RuleKind.status_changed: (("status", "text"), ("delay_minutes", "int")),
    RuleKind.post_treatment: (("type_codes", "list"), ("delay_minutes", "int")),
    RuleKind.birthday: (("days_before", "int"), ("at", "time")),
    RuleKind.after_services: (("days", "int"), ("services", "codes"), ("at", "time")),
    RuleKind.recall: (("months", "int"), ("type_codes", "list"), ("at", "time")),
    RuleKind.event: (("event", "text"), ("delay_minutes", "int")),
}
DEFAULT_PARAMS: dict[str, dict[str, str]] = {
    RuleKind.days_before: {"days": "1", "at": "10:00"}, RuleKind.minutes_before: {"minutes": "120"},
    RuleKind.on_booking: {"delay_minutes": "0"}, RuleKind.status_changed: {"delay_minutes": "0"},
    RuleKind.post_treatment: {"delay_minutes": "60"}, RuleKind.birthday: {"days_before": "0", "at": "10:00"},
    RuleKind.after_services: {"days": "7", "at": "10:00"}, RuleKind.recall: {"months": "6", "at": "10:00"},
    RuleKind.event: {"event": "lab.result_ready", "delay_minutes": "0"},
}
BASIC_FIELDS = ("name", "kind", "channel", "template_code", "set_communication_status", "enabled")
FILTER_FIELDS = ("filters.doctor_ids", "filters.type_codes", "filters.day_type", "filters.created_today")
INTEGER = re.compile(r"^-?\d{1,9}$")


def _kind(raw: str) -> str:
    return raw if raw in KIND_PARAMS else RuleKind.days_before.value


def known_fields(kind: str) -> set[str]:
    names = set(BASIC_FIELDS) | {f"params.{name}" for name, _kind in KIND_PARAMS[kind]} | {"params.link"}
    return names | set(FILTER_FIELDS) if kind in APPOINTMENT_KINDS else names


def _blank(kind: str) -> dict[str, Any]:
    return {"name": "", "kind": kind, "channel": "patient", "template_code": "", "set_communication_status": "",
            "enabled": True, "version": "", "params": dict(DEFAULT_PARAMS[kind]),
            "filters": {"doctor_ids": [], "type_codes": [], "day_type": "", "created_today": False}}


def _from_rule(rule: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in (rule["params"] or {}).items():
        if isinstance(value, list):
            params[name] = ", ".join(str(v) for v in value) if name == "services" else [str(v) for v in value]
        else:
            params[name] = "" if value is None else str(value)
    f = rule["filters"] or {}
    return {"name": rule["name"], "kind": rule["kind"], "channel": rule["channel"],
            "template_code": rule["template_code"], "set_communication_status": rule["set_communication_status"] or "",
            "enabled": rule["enabled"], "version": str(rule["version"]), "params": params,
            "filters": {"doctor_ids": [str(d) for d in f.get("doctor_ids") or []],
                        "type_codes": list(f.get("type_codes") or []), "day_type": f.get("day_type") or "",
                        "created_today": bool(f.get("created_today"))}}


def _from_form(form: dict[str, Any], kind: str) -> dict[str, Any]:
    """What the form carries, as shown again (strings and lists of strings)."""
    params: dict[str, Any] = {}
    for name, how in (*KIND_PARAMS[kind], ("link", "text")):
        params[name] = [v for v in form.get(f"params.{name}[]", []) if v] if how == "list" \
            else text(form, f"params.{name}")
    return {"name": text(form, "name"), "kind": kind, "channel": text(form, "channel") or "patient",
            "template_code": text(form, "template_code"),
            "set_communication_status": text(form, "set_communication_status"),
            "enabled": text(form, "enabled") in ("1", "on", "true"), "version": text(form, "version"),
            "params": params,
            "filters": {"doctor_ids": [v for v in form.get("filters.doctor_ids[]", []) if v],
                        "type_codes": [v for v in form.get("filters.type_codes[]", []) if v],
                        "day_type": text(form, "filters.day_type"),
                        "created_today": text(form, "filters.created_today") in ("1", "on", "true")}}


def _params(values: dict[str, Any]) -> dict[str, Any]:
    """The rule's parameters for the engine: numbers as numbers; what does not parse goes as typed, so the
    engine's check names the field."""
    out: dict[str, Any] = {}
    for name, how in (*KIND_PARAMS[values["kind"]], ("link", "text")):
        raw = values["params"].get(name)
        if how == "list":
            if raw:
                out[name] = list(raw)
        elif how == "codes":
            codes = [c for c in re.split(r"[\s,;]+", raw or "") if c]
            if codes:
                out[name] = codes
        elif raw:
            out[name] = int(raw) if how == "int" and INTEGER.match(raw) else raw
    return out


def _filters(values: dict[str, Any]) -> dict[str, Any]:
    if values["kind"] not in APPOINTMENT_KINDS:
        return {}
    f = values["filters"]
    return {"doctor_ids": f["doctor_ids"], "type_codes": f["type_codes"], "day_type": f["day_type"] or None,
            "created_today": f["created_today"]}


def _rename(loc: str) -> str:
    parts = loc.split(".")
    return ".".join(parts[:2]) if parts[0] in ("filters", "params") else parts[0]


def _form_errors(exc: ValidationError, values: dict[str, Any], known: set[str]) -> Errors:
    """The form's own errors plus the engine's check of the kind's parameters, so all show at once."""
    params = [FieldError(f, m, c) for f, m, c in check_rule_params(values["kind"], _params(values))]
    return merge_errors(pydantic_errors(exc, rename=_rename, known=known),
                        field_errors(ValidationFailed(params), known) if params else {})


def _events(page: Page) -> list[tuple[str, str]]:
    """The events an event rule may listen to, for the field's suggestions: the engine's list where it has one."""
    listing = getattr(service, "event_kinds_list", None)
    if listing is None:
        return [(delivery.LAB_RESULT_READY, "")]
    return [(str(e["name"]), i18n.plugin_text(e.get("plugin"), str(e.get("title") or "")))
            for e in listing(page.praxis, page.clinic_id)]


def _choices(page: Page) -> dict[str, Any]:
    assert page.clinic_id is not None
    options = options_of(page)
    with Session(page.praxis.engine) as session:
        doctors = resources(session, page.clinic_id).doctors
    codes: dict[str, list[str]] = {}
    for t in service.list_templates(page.praxis, page.clinic_id):
        codes.setdefault(t["code"], []).append(t["language"])
    return {"doctors": doctors, "types": option_choices(options, "type"), "statuses": option_choices(options, "status"),
            "communication_statuses": option_choices(options, "communication_status"),
            "template_codes": [(c, f"{c} ({', '.join(langs)})") for c, langs in sorted(codes.items())],
            "kinds": [(str(k), i18n.gettext(KIND_TITLES[k])) for k in KIND_PARAMS],
            "kind_help": titles(KIND_HELP), "day_types": [(k, i18n.gettext(v)) for k, v in DAY_TYPE_TITLES.items()],
            "rule_channels": [(c, i18n.gettext(CHANNEL_TITLES[c])) for c in ("patient", "sms", "email")],
            "events": _events(page),
            "appointment_kinds": {k.value for k in APPOINTMENT_KINDS}}


def _editor(page: Page, values: dict[str, Any], *, rule_id: int | None = None, errors: Errors | None = None,
            status: int = 200) -> Response:
    return render(page, "messaging/rule.html", common(page, "rules", values=values, rule_id=rule_id,
                                                      errors=errors or {}, **_choices(page)), status=status)


def _labels(page: Page) -> dict[str, dict[str, str]]:
    options = options_of(page)
    return {"status": dict(option_choices(options, "status")), "type": dict(option_choices(options, "type"))}


def _list_values(page: Page) -> dict[str, Any]:
    assert page.clinic_id is not None
    rules = service.list_rules(page.praxis, page.clinic_id)
    labels = _labels(page)
    with Session(page.praxis.engine) as session:
        doctors = dict(resources(session, page.clinic_id).doctors)
    for rule in rules:
        rule["summary"] = rule_summary(rule, labels)
        rule["filter_summary"] = filter_summary(rule, labels, doctors)
    return common(page, "rules", rules=rules)


# --- the list ----------------------------------------------------------------------------------------------------


@router.get("")
def rule_list(clinic_id: int, page: Page = Depends(clinic_page(VIEW))) -> Response:
    with i18n.using(page.locale):
        return render(page, "messaging/rules.html", _list_values(page))


async def _switch(page: Page, rule_id: int, enabled: bool) -> Response:
    assert page.principal is not None and page.clinic_id is not None
    try:
        result = await call(page, service.set_rule_enabled, page.praxis, page.clinic_id, rule_id, enabled,
                            page.principal.actor)
    except ApiError as exc:
        if exc.status_code == 404:
            raise PageError(404, "not_found") from None
        with i18n.using(page.locale):
            page.flash(conflict_text(exc), "error")
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            page.flash(_("The rule cannot be switched on as it is: open it and correct it."), "error")
            for messages in field_errors(exc).values():
                for message in messages:
                    page.flash(message, "error")
    else:
        with i18n.using(page.locale):
            page.flash(_planned_text(result["name"], result.get("planned") or {}, enabled))
    if page.is_htmx:
        with i18n.using(page.locale):
            body = render_text(page, "messaging/rules.html", _list_values(page), block="rule_list")
        return htmx_response(page, body)
    return redirect_with_flash(page, f"/clinics/{page.clinic_id}/messaging/rules")


def _planned_text(name: str, planned: dict[str, int], enabled: bool) -> str:
    head = (_("%(name)s is on.") if enabled else _("%(name)s is off.")) % {"name": name}
    parts = [head]
    if planned.get("created"):
        parts.append(i18n.ngettext("%(num)d message planned.", "%(num)d messages planned.", planned["created"])
                     % {"num": planned["created"]})
    if planned.get("updated"):
        parts.append(i18n.ngettext("%(num)d message re-timed.", "%(num)d messages re-timed.", planned["updated"])
                     % {"num": planned["updated"]})
    if planned.get("cancelled"):
        parts.append(i18n.ngettext("%(num)d queued message cancelled.", "%(num)d queued messages cancelled.",
                                   planned["cancelled"]) % {"num": planned["cancelled"]})
    return " ".join(parts)


@router.post("/{rule_id}/enable")
async def enable(clinic_id: int, rule_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    return await _switch(page, rule_id, True)


@router.post("/{rule_id}/disable")
async def disable(clinic_id: int, rule_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    return await _switch(page, rule_id, False)


# --- the editor ----------------------------------------------------------------------------------------------------


def _query_form(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values[-1] if values else ""
        out[key + "[]"] = values
    return out


@router.get("/fields")
def kind_fields(request: Request, clinic_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    """The fields of the chosen kind (htmx swaps them in when the kind changes), keeping what was typed."""
    form = _query_form(request)
    kind = _kind(text(form, "kind"))
    with i18n.using(page.locale):
        values = _from_form(form, kind)
        typed = {k: v for k, v in values["params"].items() if v}
        values["params"] = {**DEFAULT_PARAMS[kind], **typed}
        body = render_text(page, "messaging/rule.html", common(page, "rules", values=values, errors={},
                                                               rule_id=None, **_choices(page)), block="kind_fields")
    return htmx_response(page, body, flash=False)


@router.get("/new")
def new_rule(clinic_id: int, kind: str = "", page: Page = Depends(clinic_page(MANAGE))) -> Response:
    with i18n.using(page.locale):
        return _editor(page, _blank(_kind(kind)))


@router.post("/new")
async def create_rule(clinic_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    kind_raw = text(form, "kind")
    kind = _kind(kind_raw)
    values = _from_form(form, kind)
    known = known_fields(kind)
    with i18n.using(page.locale):
        if text(form, "refresh"):  # no JavaScript: the kind changed, show its fields
            values["params"] = {**DEFAULT_PARAMS[kind], **{k: v for k, v in values["params"].items() if v}}
            return _editor(page, values)
        try:
            body = RuleIn(name=values["name"], kind=kind_raw, params=_params(values),  # type: ignore[arg-type]
                          filters=_filters(values), channel=values["channel"],  # type: ignore[arg-type]
                          template_code=values["template_code"],
                          set_communication_status=values["set_communication_status"] or None,
                          enabled=values["enabled"])
        except ValidationError as exc:
            return _editor(page, values, errors=_form_errors(exc, values, known), status=422)
    try:
        made = await call(page, service.create_rule, page.praxis, clinic_id, body, page.principal.actor)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            return _editor(page, values, errors=field_errors(exc, known), status=422)
    with i18n.using(page.locale):
        page.flash(_("The rule is saved.") + " " + _planned_text(made["name"], made.get("planned") or {},
                                                                   made["enabled"]))
    return redirect_with_flash(page, f"/clinics/{clinic_id}/messaging/rules")


def _load(page: Page, rule_id: int) -> dict[str, Any]:
    assert page.clinic_id is not None
    try:
        return service.get_rule(page.praxis, page.clinic_id, rule_id)
    except ApiError:
        raise PageError(404, "not_found") from None


@router.get("/{rule_id}")
def edit_rule(clinic_id: int, rule_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    with i18n.using(page.locale):
        return _editor(page, _from_rule(_load(page, rule_id)), rule_id=rule_id)


@router.post("/{rule_id}")
async def update_rule(clinic_id: int, rule_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    with i18n.using(page.locale):
        rule = _load(page, rule_id)
        kind = rule["kind"]  # a rule keeps its kind: make a new rule for another kind
        values = _from_form(form, kind)
        known = known_fields(kind)
        version = values["version"]
        try:
            body = RulePatch(name=values["name"], params=_params(values), filters=_filters(values),  # type: ignore[arg-type]
                             channel=values["channel"], template_code=values["template_code"],  # type: ignore[arg-type]
                             set_communication_status=values["set_communication_status"] or None,
                             enabled=values["enabled"], version=int(version) if version.isdigit() else None)
        except ValidationError as exc:
            return _editor(page, values, rule_id=rule_id, errors=_form_errors(exc, values, known), status=422)
    try:
        saved = await call(page, service.update_rule, page.praxis, clinic_id, rule_id, body, page.principal.actor)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            return _editor(page, values, rule_id=rule_id, errors=field_errors(exc, known), status=422)
    except ApiError as exc:
        if exc.status_code == 404:
            raise PageError(404, "not_found") from None
        with i18n.using(page.locale):
            return _editor(page, values, rule_id=rule_id, errors={FORM: [conflict_text(exc)]}, status=409)
    with i18n.using(page.locale):
        page.flash(_("The rule is saved.") + " " + _planned_text(saved["name"], saved.get("planned") or {},
                                                                   saved["enabled"]))
    return redirect_with_flash(page, f"/clinics/{clinic_id}/messaging/rules")


@router.post("/{rule_id}/delete")
async def delete_rule(clinic_id: int, rule_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    base = f"/clinics/{clinic_id}/messaging/rules"
    return await delete_then_redirect(page, service.delete_rule, rule_id, done=N_("The rule is deleted."),
                                      listing=base, item=f"{base}/{rule_id}")
