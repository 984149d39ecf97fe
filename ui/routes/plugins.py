"""Admin: the plugins of a clinic. The same ``PluginService`` as ``/api/clinics/{id}/plugins``.

Each change works as a plain form post (redirect back with a message) and, with htmx, swaps the plugin
list in place together with the main menu (out of band), so a plugin's menu items appear and disappear
at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from core.plugins.service import PluginOperationError, PluginStatus
from core.plugins.settings import SettingsInvalid
from ui import forms, i18n
from ui.i18n import N_, _
from ui.web import Page, PageError, clinic_page, finish, redirect_with_flash, render, render_text

router = APIRouter(prefix="/clinics/{clinic_id}/admin/plugins", include_in_schema=False)

CATEGORY_TITLES = {
    "country": N_("Country"),
    "signing": N_("Signing"),
    "messaging": N_("Messaging"),
    "lab": N_("Laboratory"),
    "booking": N_("Online booking"),
    "other": N_("Other"),
}
CATEGORY_ORDER = list(CATEGORY_TITLES)
STATE_TITLES = {
    "enabled": N_("Enabled"),
    "disabled": N_("Disabled"),
    "quarantined": N_("Quarantined"),
    "unhealthy": N_("Unhealthy"),
    "not_allowed": N_("Not allowed"),
}


@dataclass
class Row:
    status: PluginStatus
    title: str
    description: str
    state_title: str
    countries: list[tuple[str, str]]
    requires: list[str]
    on: bool
    can_toggle: bool
    has_test: bool
    notice: dict[str, Any] | None = None


@dataclass
class Group:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)


def _title(page: Page, name: str) -> str:
    loaded = page.praxis.runtime.get(name)
    if loaded is None or loaded.manifest is None:
        return name
    return i18n.plugin_text(name, loaded.manifest.title)


def _row(page: Page, status: PluginStatus, notice: dict[str, Any] | None = None) -> Row:
    usable = status.state not in ("quarantined", "not_allowed")
    return Row(
        status=status,
        title=i18n.plugin_text(status.name, status.title),
        description=i18n.plugin_text(status.name, status.description),
        state_title=i18n.gettext(STATE_TITLES.get(status.state, status.state)),
        countries=[(code, i18n.country_name(code)) for code in status.countries],
        requires=[_title(page, n) for n in status.requires],
        on=status.state in ("enabled", "unhealthy"),
        can_toggle=usable and page.can("plugins.manage"),
        has_test=bool(page.praxis.runtime.implementations("praxis_test_connection", [status.name])),
        notice=notice,
    )


def _groups(page: Page, notices: dict[str, dict[str, Any]] | None = None) -> list[Group]:
    assert page.clinic_id is not None
    groups: dict[str, Group] = {}
    for status in page.praxis.plugins.statuses(page.clinic_id):
        key = status.category if status.category in CATEGORY_TITLES else "other"
        group = groups.setdefault(key, Group(key, i18n.gettext(CATEGORY_TITLES[key])))
        group.rows.append(_row(page, status, (notices or {}).get(status.name)))
    for group in groups.values():
        group.rows.sort(key=lambda r: r.title.casefold())
    return [groups[k] for k in CATEGORY_ORDER if k in groups]


def _list_response(page: Page, notices: dict[str, dict[str, Any]] | None = None) -> Response:
    """The plugin list, for htmx: the list block plus the menu and the messages, swapped out of band."""
    if not page.is_htmx:
        if notices:
            return render(page, "admin/plugins.html", {"groups": _groups(page, notices)}, status=409)
        return redirect_with_flash(page, f"/clinics/{page.clinic_id}/admin/plugins")
    body = render_text(page, "admin/plugins.html", {"groups": _groups(page, notices)}, block="plugin_list")
    body += render_text(page, "partials/menu.html", {"oob": True})
    body += render_text(page, "partials/flash.html", {"oob": True})
    return finish(page, HTMLResponse(body))


def _status(page: Page, name: str) -> PluginStatus:
    assert page.clinic_id is not None
    if page.praxis.runtime.get(name) is None:
        raise PageError(404, "unknown_plugin")
    return next(s for s in page.praxis.plugins.statuses(page.clinic_id) if s.name == name)


# --- pages -----------------------------------------------------------------------------------------------


@router.get("")
def plugin_list(clinic_id: int, page: Page = Depends(clinic_page("plugins.view"))) -> Response:
    return render(page, "admin/plugins.html", {"groups": _groups(page)})


@router.get("/{name}")
def plugin_detail(clinic_id: int, name: str, page: Page = Depends(clinic_page("plugins.view"))) -> Response:
    return _detail(page, _status(page, name))


def _detail(page: Page, status: PluginStatus, *, values: dict[str, Any] | None = None,
            errors: dict[str, list[str]] | None = None, check: Any = None, http_status: int = 200) -> Response:
    loaded = page.praxis.runtime.get(status.name)
    model = loaded.manifest.settings if loaded and loaded.manifest else None
    fields = forms.fields_for(status.name, model, values if values is not None else status.settings, errors) \
        if model is not None else []
    return render(page, "admin/plugin.html", {
        "row": _row(page, status), "fields": fields, "form_errors": (errors or {}).get(forms.FORM_ERRORS, []),
        "check": check,
    }, status=http_status)


# --- changes ---------------------------------------------------------------------------------------------


@router.post("/{name}/enable")
async def enable(clinic_id: int, name: str, page: Page = Depends(clinic_page("plugins.manage"))) -> Response:
    form = await page.request.form()
    with_deps = form.get("with_dependencies") in ("1", "true", "on")
    assert page.principal is not None
    try:
        enabled = await run_in_threadpool(page.praxis.plugins.enable, clinic_id, name, page.principal.actor,
                                          with_dependencies=with_deps)
    except PluginOperationError as exc:
        return _refused(page, name, exc)
    titles = ", ".join(_title(page, n) for n in enabled) or _title(page, name)
    page.flash(_("Enabled: %(names)s.") % {"names": titles})
    return _list_response(page)


@router.post("/{name}/disable")
async def disable(clinic_id: int, name: str, page: Page = Depends(clinic_page("plugins.manage"))) -> Response:
    assert page.principal is not None
    try:
        await run_in_threadpool(page.praxis.plugins.disable, clinic_id, name, page.principal.actor)
    except PluginOperationError as exc:
        return _refused(page, name, exc)
    page.flash(_("Disabled: %(names)s.") % {"names": _title(page, name)})
    return _list_response(page)


def _refused(page: Page, name: str, exc: PluginOperationError) -> Response:
    if exc.code == "unknown_plugin":
        raise PageError(404, exc.code)
    names = ", ".join(_title(page, n) for n in exc.details)
    if exc.code == "dependencies_disabled":
        notice = {"kind": "confirm", "message": _("%(plugin)s needs %(names)s. Enable them too?")
                  % {"plugin": _title(page, name), "names": names}}
    elif exc.code == "has_dependants":
        notice = {"kind": "error", "message": _("%(names)s need %(plugin)s. Disable them first.")
                  % {"names": names, "plugin": _title(page, name)}}
    elif exc.code == "quarantined":
        notice = {"kind": "error", "message": _("This plugin is quarantined and cannot be enabled.")}
    elif exc.code == "not_allowed":
        notice = {"kind": "error", "message": _("This installation's plugins.toml does not allow this plugin.")}
    else:
        notice = {"kind": "error", "message": str(exc)}
    return _list_response(page, {name: notice})


@router.post("/{name}/reset")
async def reset(clinic_id: int, name: str, page: Page = Depends(clinic_page("plugins.manage"))) -> Response:
    assert page.principal is not None
    try:
        await run_in_threadpool(page.praxis.plugins.reset_health, clinic_id, name, page.principal.actor)
    except PluginOperationError as exc:
        return _refused(page, name, exc)
    page.flash(_("%(plugin)s will be called again.") % {"plugin": _title(page, name)})
    return _list_response(page)


@router.post("/{name}/settings")
async def save_settings(clinic_id: int, name: str, page: Page = Depends(clinic_page("plugins.manage"))) -> Response:
    status, model = _configurable(page, name)
    submitted = forms.parse_submission(model, await page.request.form())
    assert page.principal is not None
    try:
        saved = await run_in_threadpool(page.praxis.plugins.configure, clinic_id, name, submitted,
                                        page.principal.actor)
    except SettingsInvalid as exc:
        return _form_errors(page, status, model, submitted, forms.error_map(exc))
    except PluginOperationError as exc:
        return _form_errors(page, status, model, submitted, {forms.FORM_ERRORS: [_operation_message(exc)]})
    page.flash(_("Settings saved."))
    if page.is_htmx:
        fields = forms.fields_for(name, model, saved)
        return _fields_oob(page, fields, [], None, saved=True)
    return redirect_with_flash(page, f"/clinics/{clinic_id}/admin/plugins/{name}")


@router.post("/{name}/test-connection")
async def test_connection(clinic_id: int, name: str,
                          page: Page = Depends(clinic_page("plugins.manage"))) -> Response:
    status, model = _configurable(page, name)
    submitted = forms.parse_submission(model, await page.request.form())
    try:
        check = await run_in_threadpool(page.praxis.plugins.test_connection, clinic_id, name, submitted)
    except SettingsInvalid as exc:
        return _form_errors(page, status, model, submitted, forms.error_map(exc))
    except PluginOperationError as exc:
        return _form_errors(page, status, model, submitted, {forms.FORM_ERRORS: [_operation_message(exc)]})
    if page.is_htmx:
        fields = forms.fields_for(name, model, forms.submitted_view(model, submitted, status.settings))
        return _fields_oob(page, fields, [], check, saved=False)
    values = forms.submitted_view(model, submitted, status.settings)
    return _detail(page, status, values=values, check=check)


def _configurable(page: Page, name: str) -> tuple[PluginStatus, Any]:
    status = _status(page, name)
    loaded = page.praxis.runtime.get(name)
    if loaded is None or loaded.manifest is None or loaded.manifest.settings is None:
        raise PageError(404, "no_settings")
    return status, loaded.manifest.settings


def _operation_message(exc: PluginOperationError) -> str:
    if exc.code == "no_connection_test":
        return _("This plugin offers no connection test.")
    if exc.code == "quarantined":
        return _("This plugin is quarantined and cannot be enabled.")
    if exc.code == "not_allowed":
        return _("This installation's plugins.toml does not allow this plugin.")
    return str(exc)


def _form_errors(page: Page, status: PluginStatus, model: Any, submitted: dict[str, Any],
                 errors: dict[str, list[str]]) -> Response:
    values = forms.submitted_view(model, submitted, status.settings)
    if page.is_htmx:
        fields = forms.fields_for(status.name, model, values, errors)
        return _fields_oob(page, fields, errors.get(forms.FORM_ERRORS, []), None, saved=False, http_status=422)
    return _detail(page, status, values=values, errors=errors, http_status=422)


def _fields_oob(page: Page, fields: list[forms.FormField], form_errors: list[str], check: Any, *,
                saved: bool, http_status: int = 200) -> Response:
    """For htmx: each field's error (and, after saving, the secrets' set/not set) swapped in place, so what
    the admin typed stays in the inputs."""
    body = render_text(page, "partials/settings_oob.html",
                       {"fields": fields, "form_errors": form_errors, "check": check, "saved": saved})
    body += render_text(page, "partials/flash.html", {"oob": True})
    return finish(page, HTMLResponse(body, status_code=http_status))
