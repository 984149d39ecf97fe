"""Message templates: the list (one code, one text per language and channel; which rules use it), the editor
with the placeholders to insert and a live preview (htmx) of the rendered text with its length, SMS parts and
encoding (GSM-7 or UCS-2). An unknown placeholder shows the engine's validation error in the preview and next
to the field, never a blank.

Everything goes through ``core.messaging.service`` (create, update, delete, preview, placeholder list).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import ValidationError

from core.auth.errors import ApiError
from core.messaging import placeholders as placeholder_set
from core.messaging import service
from core.messaging import templates as tpl
from core.messaging.schemas import CODE, PreviewIn, TemplateIn, TemplatePatch
from plugin_sdk.errors import ValidationFailed
from ui import i18n
from ui.i18n import N_, _
from ui.routes.messaging_common import (
    CHANNEL_TITLES,
    MANAGE,
    VIEW,
    common,
    conflict_text,
    delete_then_redirect,
    field_errors,
)
from ui.screens import FORM, Errors, call, form_of, htmx_response, merge_errors, pydantic_errors, text
from ui.web import Page, PageError, clinic_page, redirect_with_flash, render, render_text

router = APIRouter(prefix="/clinics/{clinic_id}/messaging/templates", include_in_schema=False)

FIELDS = ("code", "language", "channel", "subject", "body")
LANGUAGE_TAGS = ("hu", "en", "ko", "ru", "zh-Hans")
# The core placeholders' descriptions (core.messaging.templates), for translation; a plugin's come from its catalog.
PLACEHOLDER_DESCRIPTIONS = (
    N_("The patient's full name"), N_("The patient's given name, for a personal greeting"),
    N_("Who receives the message (the patient or a guardian)"),
    N_("The appointment's date, written in the message's language"),
    N_("The appointment's start time (clinic time)"), N_("The appointment's doctor"), N_("The clinic's name"),
    N_("The clinic's address"), N_("The clinic's phone number"), N_("The rule's link, or the clinic's messaging link"),
)
ENCODING_TITLES = {"gsm7": N_("GSM-7"), "ucs2": N_("UCS-2 (Unicode)")}


def placeholders(page: Page) -> list[dict[str, Any]]:
    """The placeholders to insert, with descriptions in the user's language (a plugin's from its catalog)."""
    out = []
    for p in service.placeholder_list(page.praxis, page.clinic_id):  # the core's and the enabled plugins
        text_ = str(p["description"])
        description = i18n.gettext(text_) if p["source"] == "core" else i18n.plugin_text(p["source"], text_)
        out.append({**p, "description": description, "token": "{" + p["name"] + "}"})
    return out


def _languages() -> list[tuple[str, str]]:
    return [(tag, i18n.LANGUAGE_NAMES.get(i18n.normalize_locale(tag) or "", tag)) for tag in LANGUAGE_TAGS]


def _choices(page: Page) -> dict[str, Any]:
    return {"placeholders": placeholders(page), "language_tags": _languages(),
            "template_channels": [(c, i18n.gettext(CHANNEL_TITLES[c])) for c in ("any", "sms", "email")]}


def _editor(page: Page, values: dict[str, str], *, template: dict[str, Any] | None = None,
            errors: Errors | None = None, status: int = 200) -> Response:
    preview = _preview(page, values) if values.get("body") else None
    return render(page, "messaging/template.html", common(page, "templates", values=values, template=template,
                                                          errors=errors or {}, preview=preview, **_choices(page)),
                  status=status)


# --- preview ---------------------------------------------------------------------------------------------------


def _preview(page: Page, values: dict[str, str]) -> dict[str, Any]:
    """The rendered text with its SMS count, or the errors that keep it from rendering."""
    assert page.clinic_id is not None
    try:
        data = PreviewIn(body=values.get("body") or "", subject=values.get("subject") or "",
                         language=values.get("language") or None)
    except ValidationError as exc:
        errors = pydantic_errors(exc, rename=lambda loc: loc.split(".")[0])
        if "body" in errors and not (values.get("body") or "").strip():
            return {"empty": True, "errors": {}}
        return {"empty": False, "errors": errors}
    try:
        result = service.preview(page.praxis, page.clinic_id, data)
    except ValidationFailed as exc:
        return {"empty": False, "errors": field_errors(exc, ("body", "subject"))}
    sms = result["sms"]
    return {"empty": False, "errors": {}, "body": result["body"], "subject": result["subject"], "sms": sms,
            "encoding_title": i18n.gettext(ENCODING_TITLES.get(sms["encoding"], sms["encoding"])),
            "language": result["language"]}


@router.post("/preview")
async def preview(clinic_id: int, page: Page = Depends(clinic_page(VIEW))) -> Response:
    """The preview of the text being written (htmx, on every pause in typing)."""
    form = await form_of(page)
    values = {name: text(form, name) for name in FIELDS}
    with i18n.using(page.locale):
        result = await call(page, _preview, page, values)
        body = render_text(page, "messaging/template.html", common(page, "templates", preview=result,
                                                                   values=values), block="preview")
    return htmx_response(page, body, flash=False)


# --- the list ----------------------------------------------------------------------------------------------------


@router.get("")
def template_list(clinic_id: int, page: Page = Depends(clinic_page(VIEW))) -> Response:
    with i18n.using(page.locale):
        rows = service.list_templates(page.praxis, clinic_id)
        rules: dict[str, list[str]] = {}
        for rule in service.list_rules(page.praxis, clinic_id):
            rules.setdefault(rule["template_code"], []).append(rule["name"])
        groups: dict[str, dict[str, Any]] = {}
        for row in rows:
            row["encoding_title"] = i18n.gettext(ENCODING_TITLES.get(row["sms"]["encoding"], row["sms"]["encoding"]))
            row["language_name"] = i18n.LANGUAGE_NAMES.get(i18n.normalize_locale(row["language"]) or "", "")
            group = groups.setdefault(row["code"], {"code": row["code"], "rows": [],
                                                    "rules": rules.get(row["code"], [])})
            group["rows"].append(row)
        missing = sorted(code for code in rules if code not in groups)
        return render(page, "messaging/templates.html", common(page, "templates", groups=list(groups.values()),
                                                               missing=missing))


# --- the editor ----------------------------------------------------------------------------------------------------


@router.get("/new")
def new_template(clinic_id: int, code: str = "", language: str = "", channel: str = "any",
                 page: Page = Depends(clinic_page(MANAGE))) -> Response:
    with i18n.using(page.locale):
        values = {"code": code[:64], "language": language[:16] or (page.clinic.locale if page.clinic else "") or "en",
                  "channel": channel if channel in ("any", "sms", "email") else "any", "subject": "", "body": ""}
        return _editor(page, values)


@router.post("/new")
async def create_template(clinic_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    values = {name: text(form, name) for name in FIELDS}
    values["body"] = str(form.get("body") or "").strip()
    with i18n.using(page.locale):
        try:
            body = TemplateIn(**values)  # type: ignore[arg-type]
        except ValidationError as exc:
            errors = pydantic_errors(exc, rename=lambda loc: loc.split(".")[0], known=FIELDS)
            if values["code"] and not CODE.match(values["code"]):
                errors["code"] = [_("Use only letters, digits, _ . and -, at most 64.")]
            available = placeholder_set.for_clinic(page.praxis.runtime, clinic_id)
            problems = tpl.check(values["body"], "body", available=available) + tpl.check(
                values["subject"], "subject", available=available)
            errors = merge_errors(errors, field_errors(ValidationFailed(problems), FIELDS) if problems else {})
            return _editor(page, values, errors=errors, status=422)
    try:
        made = await call(page, service.create_template, page.praxis, clinic_id, body, page.principal.actor)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            return _editor(page, values, errors=field_errors(exc, FIELDS), status=422)
    with i18n.using(page.locale):
        page.flash(_("The template %(code)s (%(language)s) is saved.") % {"code": made["code"],
                                                                           "language": made["language"]})
    return redirect_with_flash(page, f"/clinics/{clinic_id}/messaging/templates")


def _load(page: Page, template_id: int) -> dict[str, Any]:
    assert page.clinic_id is not None
    try:
        return service.get_template(page.praxis, page.clinic_id, template_id)
    except ApiError:
        raise PageError(404, "not_found") from None


def _values_of(template: dict[str, Any]) -> dict[str, str]:
    return {"code": template["code"], "language": template["language"], "channel": template["channel"],
            "subject": template["subject"], "body": template["body"], "version": str(template["version"])}


@router.get("/{template_id}")
def edit_template(clinic_id: int, template_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    with i18n.using(page.locale):
        template = _load(page, template_id)
        return _editor(page, _values_of(template), template=template)


@router.post("/{template_id}")
async def update_template(clinic_id: int, template_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    with i18n.using(page.locale):
        template = _load(page, template_id)
        values = {**_values_of(template), "subject": text(form, "subject"),
                  "body": str(form.get("body") or "").strip(), "version": text(form, "version")}
        try:
            body = TemplatePatch(subject=values["subject"], body=values["body"],
                                 version=int(values["version"]) if values["version"].isdigit() else None)
        except ValidationError as exc:
            return _editor(page, values, template=template, status=422,
                           errors=pydantic_errors(exc, rename=lambda loc: loc.split(".")[0], known=FIELDS))
    try:
        await call(page, service.update_template, page.praxis, clinic_id, template_id, body, page.principal.actor)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            return _editor(page, values, template=template, errors=field_errors(exc, FIELDS), status=422)
    except ApiError as exc:
        if exc.status_code == 404:
            raise PageError(404, "not_found") from None
        with i18n.using(page.locale):
            return _editor(page, values, template=template, errors={FORM: [conflict_text(exc)]}, status=409)
    with i18n.using(page.locale):
        page.flash(_("The template %(code)s (%(language)s) is saved.") % {"code": template["code"],
                                                                           "language": template["language"]})
    return redirect_with_flash(page, f"/clinics/{clinic_id}/messaging/templates")


@router.post("/{template_id}/delete")
async def delete_template(clinic_id: int, template_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    base = f"/clinics/{clinic_id}/messaging/templates"
    return await delete_then_redirect(page, service.delete_template, template_id, listing=base,
                                      done=N_("The template is deleted."), item=f"{base}/{template_id}")
