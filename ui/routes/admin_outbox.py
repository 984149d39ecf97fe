"""Admin: the clinic's outbox, per plugin: pending (and failing) work, dead letters and undecided outcomes,
with retry and resolve. The same ``core.outbox.admin`` functions as ``/api/clinics/{id}/outbox``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlmodel import Session

from core.outbox import admin
from core.outbox.admin import OutboxError
from ui import i18n, menu
from ui.i18n import N_, _
from ui.screens import call, form_of, text
from ui.web import Page, PageError, clinic_page, redirect_with_flash, render

router = APIRouter(prefix="/clinics/{clinic_id}/admin/outbox", include_in_schema=False)
menu.register(menu.CoreItem("outbox", N_("Outbox"), "/clinics/{clinic_id}/admin/outbox", "outbox.view", 880))
PAGE = 50
STATUS_TITLES = {"pending": N_("Pending"), "failing": N_("Failing, will retry"), "dead": N_("Dead-lettered"),
                 "unknown": N_("Outcome unknown"), "done": N_("Done")}


def _plugin_title(page: Page, name: str) -> str:
    loaded = page.praxis.runtime.get(name)
    if loaded is None or loaded.manifest is None:
        return name
    return i18n.plugin_text(name, loaded.manifest.title)


def state_of(item: dict[str, Any]) -> str:
    if item["status"] == "pending" and item["attempts"] > 0 and item["last_error"]:
        return "failing"
    return str(item["status"])


@router.get("")
def outbox(clinic_id: int, status: str = Query("", max_length=10), plugin: str = Query("", max_length=64),
           number: int = Query(1, ge=1, alias="page"), page: Page = Depends(clinic_page("outbox.view"))) -> Response:
    chosen = status if status in admin.STATUSES else None
    with Session(page.praxis.engine) as session:
        summary = admin.summary(session, clinic_id)
        found = admin.list_items(session, clinic_id, status=chosen, plugin=plugin or None, limit=PAGE,
                                 offset=(number - 1) * PAGE)
        items = [admin.item_dict(i) for i in found.items]
    with i18n.using(page.locale):
        for item in items:
            state = item["state"] = state_of(item)
            item["state_title"] = i18n.gettext(STATUS_TITLES[state])
            item["plugin_title"] = _plugin_title(page, item["plugin"])
        plugins = [{"name": name, "title": _plugin_title(page, name), **counts}
                   for name, counts in sorted(summary["plugins"].items())]
    return render(page, "admin/outbox.html", {
        "plugins": plugins, "totals": summary["totals"], "items": items, "total": found.total, "status": chosen or "",
        "plugin": plugin, "number": number, "pages": max(1, -(-found.total // PAGE)),
        "statuses": [(s, i18n.gettext(STATUS_TITLES[s])) for s in admin.STATUSES],
        "can_manage": page.can("outbox.manage")})


async def _act(page: Page, fn: Any, item_id: str, done: str, **kwargs: Any) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    try:
        await call(page, fn, page.praxis.engine, admin.parse_id(item_id), page.principal.actor,
                   clinic_id=page.clinic_id, **kwargs)
    except OutboxError as exc:
        if exc.status == 404 or exc.code == "invalid_id":
            raise PageError(404, "not_found") from None
        with i18n.using(page.locale):
            page.flash(_("This item changed meanwhile and cannot be retried or resolved now."), "error")
    else:
        page.flash(done)
    back = text(form, "back")
    target = back if back.startswith(f"/clinics/{page.clinic_id}/admin/outbox") and "//" not in back \
        else f"/clinics/{page.clinic_id}/admin/outbox"
    return redirect_with_flash(page, target)


@router.post("/{item_id}/retry")
async def retry(clinic_id: int, item_id: str, page: Page = Depends(clinic_page("outbox.manage"))) -> Response:
    with i18n.using(page.locale):
        done = _("The item will be sent again.")
    return await _act(page, admin.retry, item_id, done)


@router.post("/{item_id}/resolve")
async def resolve(clinic_id: int, item_id: str, page: Page = Depends(clinic_page("outbox.manage"))) -> Response:
    form = await form_of(page)
    outcome = "done" if text(form, "outcome") == "done" else "dead"
    with i18n.using(page.locale):
        done = _("Recorded: the vendor did act.") if outcome == "done" else _("Recorded: it was not sent.")
    return await _act(page, admin.resolve, item_id, done, outcome=outcome)
