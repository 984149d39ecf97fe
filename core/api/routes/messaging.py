"""Messaging API: reminder rules, templates with preview, the message log, actions on failed or undecided
messages, opt-outs, quiet hours, reply settings, manual sending; and the vendors' callback endpoint.

Permissions: ``messaging.view`` to read, ``messaging.send`` to send, retry, resolve and record opt-outs,
``messaging.manage`` for rules, templates, quiet hours and settings. The callback endpoint is public on
purpose: vendors call it, and the provider plugin checks each callback's authenticity (signature or
secret) before anything is applied.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth.deps import Principal, clinic_permission
from core.messaging import service
from core.messaging.schemas import (
    OptOutsIn,
    PreviewIn,
    QuietHoursIn,
    ResolveIn,
    RuleIn,
    RulePatch,
    SendIn,
    SettingsIn,
    TemplateIn,
    TemplatePatch,
)
from core.models.messaging import MessageStatus

router = APIRouter(prefix="/api/clinics/{clinic_id}/messaging", tags=["messaging"])
callbacks = APIRouter(prefix="/api/messaging", tags=["messaging"])

VIEW = clinic_permission("messaging.view")
SEND = clinic_permission("messaging.send")
MANAGE = clinic_permission("messaging.manage")


# --- rules ---------------------------------------------------------------------------------------------


@router.get("/rules")
def list_rules(clinic_id: int, praxis: Praxis = Depends(get_praxis),
               _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    """The clinic's reminder and notification rules."""
    return service.list_rules(praxis, clinic_id)


@router.post("/rules", status_code=201)
def create_rule(clinic_id: int, body: RuleIn, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    """Create a rule; an enabled appointment rule is planned at once for the clinic's future appointments."""
    return service.create_rule(praxis, clinic_id, body, who.actor)


@router.get("/rules/{rule_id}")
def get_rule(clinic_id: int, rule_id: int, praxis: Praxis = Depends(get_praxis),
             _: Principal = Depends(VIEW)) -> dict[str, Any]:
    return service.get_rule(praxis, clinic_id, rule_id)


@router.patch("/rules/{rule_id}")
def update_rule(clinic_id: int, rule_id: int, body: RulePatch, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    """Change a rule; its messages not sent yet are re-planned in the same transaction."""
    return service.update_rule(praxis, clinic_id, rule_id, body, who.actor)


@router.post("/rules/{rule_id}/enable")
def enable_rule(clinic_id: int, rule_id: int, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return service.set_rule_enabled(praxis, clinic_id, rule_id, True, who.actor)


@router.post("/rules/{rule_id}/disable")
def disable_rule(clinic_id: int, rule_id: int, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    """Switch a rule off; its queued messages are cancelled."""
    return service.set_rule_enabled(praxis, clinic_id, rule_id, False, who.actor)


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(clinic_id: int, rule_id: int, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(MANAGE)) -> Response:
    """Delete a rule that never produced a message (409 otherwise: switch it off instead)."""
    service.delete_rule(praxis, clinic_id, rule_id, who.actor)
    return Response(status_code=204)


# --- templates -----------------------------------------------------------------------------------------


@router.get("/placeholders")
def list_placeholders(clinic_id: int, praxis: Praxis = Depends(get_praxis),
                      _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    """The placeholders templates may use here (the core's and enabled plugins'), and whether they need an
    appointment."""
    return service.placeholder_list(praxis, clinic_id)


@router.get("/event-kinds")
def list_event_kinds(clinic_id: int, praxis: Praxis = Depends(get_praxis),
                     _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    """The events an event rule may listen to here: the core's and those of the plugins enabled here."""
    return service.event_kinds_list(praxis, clinic_id)


@router.get("/templates")
def list_templates(clinic_id: int, code: str | None = Query(None, max_length=64),
                   praxis: Praxis = Depends(get_praxis), _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    return service.list_templates(praxis, clinic_id, code)


@router.post("/templates", status_code=201)
def create_template(clinic_id: int, body: TemplateIn, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    """Add one language of a template; an unknown placeholder is refused (422, field 'body')."""
    return service.create_template(praxis, clinic_id, body, who.actor)


@router.post("/templates/preview")
def preview_template(clinic_id: int, body: PreviewIn, praxis: Praxis = Depends(get_praxis),
                     _: Principal = Depends(VIEW)) -> dict[str, Any]:
    """Render a text with sample data (or a given patient's / appointment's) with its SMS length and parts."""
    return service.preview(praxis, clinic_id, body)


@router.get("/templates/{template_id}")
def get_template(clinic_id: int, template_id: int, praxis: Praxis = Depends(get_praxis),
                 _: Principal = Depends(VIEW)) -> dict[str, Any]:
    return service.get_template(praxis, clinic_id, template_id)


@router.patch("/templates/{template_id}")
def update_template(clinic_id: int, template_id: int, body: TemplatePatch, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return service.update_template(praxis, clinic_id, template_id, body, who.actor)


@router.delete("/templates/{template_id}", status_code=204)
def delete_template(clinic_id: int, template_id: int, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(MANAGE)) -> Response:
    service.delete_template(praxis, clinic_id, template_id, who.actor)
    return Response(status_code=204)


# --- the log -------------------------------------------------------------------------------------------


@router.get("/messages")
def list_messages(
    clinic_id: int,
    patient_id: uuid.UUID | None = None,
    status: MessageStatus | None = None,
    rule_id: int | None = None,
    appointment_id: int | None = None,
    batch_id: uuid.UUID | None = None,
    channel: Literal["sms", "email"] | None = None,
    start: datetime | None = Query(None, description="Planned at or after (aware ISO time)"),
    end: datetime | None = Query(None, description="Planned before"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    praxis: Praxis = Depends(get_praxis),
    _: Principal = Depends(VIEW),
) -> dict[str, Any]:
    """The message log, newest planned first."""
    return service.list_messages(praxis, clinic_id, patient_id=patient_id, status=status.value if status else None,
                                 rule_id=rule_id, appointment_id=appointment_id, batch_id=batch_id, channel=channel,
                                 start=start, end=end, limit=limit, offset=offset)


@router.get("/messages/{message_id}")
def get_message(clinic_id: int, message_id: uuid.UUID, praxis: Praxis = Depends(get_praxis),
                _: Principal = Depends(VIEW)) -> dict[str, Any]:
    return service.get_message(praxis, clinic_id, message_id)


@router.post("/messages/{message_id}/retry")
def retry_message(clinic_id: int, message_id: uuid.UUID, praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(SEND)) -> dict[str, Any]:
    """Send a failed, cancelled or unknown message again (for unknown: you decided the vendor did not send it)."""
    return service.retry(praxis, clinic_id, message_id, who.actor)


@router.post("/messages/{message_id}/resolve")
def resolve_message(clinic_id: int, message_id: uuid.UUID, body: ResolveIn, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(SEND)) -> dict[str, Any]:
    """Decide an unknown message: 'sent' (the vendor did send it) or 'failed' (give up)."""
    return service.resolve(praxis, clinic_id, message_id, body, who.actor)


@router.get("/replies")
def list_replies(clinic_id: int, appointment_id: int | None = None, limit: int = Query(50, ge=1, le=500),
                 offset: int = Query(0, ge=0), praxis: Praxis = Depends(get_praxis),
                 _: Principal = Depends(VIEW)) -> dict[str, Any]:
    """Patients' replies and what was done with them."""
    return service.list_replies(praxis, clinic_id, appointment_id=appointment_id, limit=limit, offset=offset)


# --- sending -------------------------------------------------------------------------------------------


@router.post("/send", status_code=202)
def send(clinic_id: int, body: SendIn, praxis: Praxis = Depends(get_praxis),
         who: Principal = Depends(SEND)) -> dict[str, Any]:
    """Send to one patient or a filtered list; the messages go through the outbox. Returns the batch."""
    return service.send(praxis, clinic_id, body, who.actor)


@router.get("/batches/{batch_id}")
def get_batch(clinic_id: int, batch_id: uuid.UUID, praxis: Praxis = Depends(get_praxis),
              _: Principal = Depends(VIEW)) -> dict[str, Any]:
    """A manual sending's progress: counts per status."""
    return service.get_batch(praxis, clinic_id, batch_id)


# --- opt-outs, quiet hours, settings ---------------------------------------------------------------------


@router.get("/patients/{patient_id}/opt-outs")
def get_opt_outs(clinic_id: int, patient_id: uuid.UUID, praxis: Praxis = Depends(get_praxis),
                 _: Principal = Depends(VIEW)) -> dict[str, Any]:
    return service.get_opt_outs(praxis, clinic_id, patient_id)


@router.put("/patients/{patient_id}/opt-outs")
def set_opt_outs(clinic_id: int, patient_id: uuid.UUID, body: OptOutsIn, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(SEND)) -> dict[str, Any]:
    """Set the channels the patient does not want; queued messages on them are cancelled."""
    return service.set_opt_outs(praxis, clinic_id, patient_id, body, who.actor)


@router.get("/quiet-hours")
def get_quiet_hours(clinic_id: int, praxis: Praxis = Depends(get_praxis),
                    _: Principal = Depends(VIEW)) -> dict[str, Any]:
    return service.get_quiet_hours(praxis, clinic_id)


@router.put("/quiet-hours")
def set_quiet_hours(clinic_id: int, body: QuietHoursIn, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    """Messages due between start and end (clinic time, may span midnight) wait for the end."""
    return service.set_quiet_hours(praxis, clinic_id, body, who.actor)


@router.get("/settings")
def get_settings(clinic_id: int, praxis: Praxis = Depends(get_praxis),
                 _: Principal = Depends(VIEW)) -> dict[str, Any]:
    return service.get_settings(praxis, clinic_id)


@router.put("/settings")
def set_settings(clinic_id: int, body: SettingsIn, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    """Replies ("1" confirms, "2" cancels by default) and the {link} placeholder."""
    return service.set_settings(praxis, clinic_id, body, who.actor)


# --- vendor callbacks (public: authenticity is checked by the provider) ------------------------------------


@callbacks.post("/callbacks/{plugin}/{clinic_id}")
async def vendor_callback(plugin: str, clinic_id: int, request: Request,
                          praxis: Praxis = Depends(get_praxis)) -> dict[str, int]:
    """Delivery reports and replies from a vendor. The provider plugin checks the callback's authenticity
    (403 if forged); 404 if the plugin is not enabled in the clinic."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await run_in_threadpool(service.callback, praxis, plugin, clinic_id, headers, body)
