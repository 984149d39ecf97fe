"""The clinic's messaging settings: quiet hours (no message leaves between two times of day, clinic time) and
what patients' replies do (which words confirm or cancel, the cancel reason, the communication status, how
long a reply counts) plus the link ``{link}`` stands for. Through ``core.messaging.service``.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import ValidationError

from core.messaging import service
from core.messaging.schemas import QuietHoursIn, SettingsIn
from plugin_sdk.errors import ValidationFailed
from ui import i18n
from ui.i18n import _
from ui.routes.book import option_choices, options_of
from ui.routes.messaging_common import MANAGE, common, field_errors
from ui.screens import Errors, call, flag, form_of, parse_time, pydantic_errors, text
from ui.web import Page, clinic_page, redirect_with_flash, render

router = APIRouter(prefix="/clinics/{clinic_id}/messaging/settings", include_in_schema=False)

QUIET_FIELDS = ("quiet_enabled", "start", "end")
REPLY_FIELDS = ("replies_enabled", "confirm_replies", "cancel_replies", "cancel_reason",
                "confirmed_communication_status", "reply_window_hours", "link")


def _words(raw: str) -> list[str]:
    return [w for w in (part.strip() for part in re.split(r"[,\n]+", raw)) if w]


def _page(page: Page, *, quiet: dict[str, Any] | None = None, replies: dict[str, Any] | None = None,
          quiet_errors: Errors | None = None, reply_errors: Errors | None = None, status: int = 200) -> Response:
    assert page.clinic_id is not None
    options = options_of(page)
    if quiet is None:
        stored = service.get_quiet_hours(page.praxis, page.clinic_id)
        quiet = {"quiet_enabled": stored["enabled"], "start": stored["start"], "end": stored["end"]}
    if replies is None:
        stored = service.get_settings(page.praxis, page.clinic_id)
        replies = {**stored, "confirm_replies": ", ".join(stored["confirm_replies"]),
                   "cancel_replies": ", ".join(stored["cancel_replies"]),
                   "confirmed_communication_status": stored["confirmed_communication_status"] or "",
                   "reply_window_hours": str(stored["reply_window_hours"])}
    return render(page, "messaging/settings.html", common(
        page, "settings", quiet=quiet, replies=replies, quiet_errors=quiet_errors or {},
        reply_errors=reply_errors or {}, cancel_reasons=option_choices(options, "cancel_reason"),
        communication_statuses=option_choices(options, "communication_status"),
        timezone=page.clinic.timezone if page.clinic else ""), status=status)


@router.get("")
def settings(clinic_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    with i18n.using(page.locale):
        return _page(page)


@router.post("/quiet-hours")
async def save_quiet_hours(clinic_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    quiet = {"quiet_enabled": flag(form, "quiet_enabled"), "start": text(form, "start"), "end": text(form, "end")}
    errors: Errors = {}
    with i18n.using(page.locale):
        start = parse_time(quiet["start"], "start", errors, required=True)
        end = parse_time(quiet["end"], "end", errors, required=True)
        if errors:
            return _page(page, quiet=quiet, quiet_errors=errors, status=422)
        body = QuietHoursIn(enabled=quiet["quiet_enabled"], start=start, end=end)  # type: ignore[arg-type]
    try:
        await call(page, service.set_quiet_hours, page.praxis, clinic_id, body, page.principal.actor)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            return _page(page, quiet=quiet, quiet_errors=field_errors(exc, QUIET_FIELDS), status=422)
    with i18n.using(page.locale):
        page.flash(_("Quiet hours are saved.") if body.enabled else _("Quiet hours are off."))
    return redirect_with_flash(page, f"/clinics/{clinic_id}/messaging/settings")


@router.post("/replies")
async def save_replies(clinic_id: int, page: Page = Depends(clinic_page(MANAGE))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    replies = {name: text(form, name) for name in REPLY_FIELDS}
    replies["replies_enabled"] = flag(form, "replies_enabled")
    with i18n.using(page.locale):
        try:
            body = SettingsIn(replies_enabled=replies["replies_enabled"],
                              confirm_replies=_words(replies["confirm_replies"]),
                              cancel_replies=_words(replies["cancel_replies"]),
                              cancel_reason=replies["cancel_reason"],
                              confirmed_communication_status=replies["confirmed_communication_status"] or None,
                              reply_window_hours=replies["reply_window_hours"] or 0,  # type: ignore[arg-type]
                              link=replies["link"])
        except ValidationError as exc:
            return _page(page, replies=replies, status=422,
                         reply_errors=pydantic_errors(exc, rename=lambda loc: loc.split(".")[0], known=REPLY_FIELDS))
    try:
        await call(page, service.set_settings, page.praxis, clinic_id, body, page.principal.actor)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            return _page(page, replies=replies, reply_errors=field_errors(exc, REPLY_FIELDS), status=422)
    with i18n.using(page.locale):
        page.flash(_("The reply settings are saved."))
    return redirect_with_flash(page, f"/clinics/{clinic_id}/messaging/settings")
