"""Messaging data for the UI tests (templates, a rule, messages in every state the screens act on, a reply) and
the walk over the messaging screens for the every-template test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from core.audit import Actor
from core.clock import now
from core.db import transaction
from core.messaging import segments, service
from core.messaging.schemas import RuleIn, SendIn, TemplateIn
from core.models.messaging import InboundReply, Message
from tests.ui.helpers import csrf_of
from tests.ui.screens import HTMX, set_up_book

ACTOR = Actor(None, "test")


@dataclass
class Messaging:
    patient: str
    template: int
    rule: int
    queued: str
    failed: str
    unknown: str
    sent: str


def send_one(praxis: Any, clinic: int, patient: str, body: str, channel: str = "sms") -> str:
    batch = service.send(praxis, clinic, SendIn(patient_ids=[uuid.UUID(patient)], body=body,
                                                channel=channel), ACTOR)  # type: ignore[arg-type]
    with transaction(praxis.engine) as session:
        found = session.query(Message).filter(Message.batch_id == uuid.UUID(batch["id"])).one()
        return str(found.id)


def set_state(praxis: Any, message_id: str, status: str, *, code: str | None = None, reason: str | None = None,
              plugin: str | None = None, body: str = "") -> None:
    """Put a message in a state the worker would (failed by the vendor, outcome unknown, sent), with the text
    the worker writes when it sends (``body``) if planning left none."""
    with transaction(praxis.engine) as session:
        message = session.get(Message, uuid.UUID(message_id))
        assert message is not None
        at = now()
        if not message.body and body:
            counted = segments.count(body)
            message.body, message.length = body, counted.length
            message.segments, message.encoding = counted.segments, counted.encoding
        message.status, message.error_code, message.reason = status, code, reason
        message.provider_plugin = plugin
        message.outbox_item_id = None
        if status in ("failed", "cancelled"):
            message.finished_at = at
        if status in ("sent", "delivered"):
            message.sent_at = at
        session.add(message)


def add_messaging(praxis: Any, clinic: int, patient: str) -> Messaging:
    """Two templates, a day-before rule, and four messages to ``patient``: queued, failed (a vendor's own
    code), outcome unknown and sent (with a reply)."""
    template = service.create_template(praxis, clinic, TemplateIn(
        code="reminder", language="en", body="Dear {patient_name}, see you on {date} at {time}."), ACTOR)
    service.create_template(praxis, clinic, TemplateIn(code="news", language="en", body="Hello {given_name}!"),
                            ACTOR)
    rule = service.create_rule(praxis, clinic, RuleIn(name="Day before", kind="days_before",  # type: ignore[arg-type]
                                                      params={"days": 1, "at": "10:00"}, template_code="reminder"),
                               ACTOR)
    queued = send_one(praxis, clinic, patient, "Hello {given_name}, the clinic is closed on Friday.")
    failed = send_one(praxis, clinic, patient, "Hello {given_name}, your results are in.")
    set_state(praxis, failed, "failed", code="E42", reason="number blocked by the operator", plugin="fakesms",
              body="Hello Anna, your results are in.")
    unknown = send_one(praxis, clinic, patient, "Hello {given_name}, please call us back.")
    set_state(praxis, unknown, "unknown", code="unknown_outcome", reason="timeout", plugin="fakesms",
              body="Hello Anna, please call us back.")
    sent = send_one(praxis, clinic, patient, "Hello {given_name}, reply 1 to confirm.")
    set_state(praxis, sent, "sent", plugin="fakesms", body="Hello Anna, reply 1 to confirm.")
    with transaction(praxis.engine) as session:
        session.add(InboundReply(clinic_id=clinic, plugin="fakesms", sender="+36301234567", body="1",
                                 received_at=now(), vendor_message_id=uuid.uuid4().hex,
                                 message_id=uuid.UUID(sent), patient_id=uuid.UUID(patient), action="confirmed",
                                 detail="the patient confirmed by replying '1'"))
    return Messaging(patient, template["id"], rule["id"], queued, failed, unknown, sent)


def visit_messaging_screens(client: Any, praxis: Any, clinic: int) -> list[Any]:
    b = set_up_book(praxis, clinic)
    data = getattr(praxis, "_ui_messaging", {}).get(clinic)
    if data is None:
        data = add_messaging(praxis, clinic, b.patient)
        praxis._ui_messaging = {**getattr(praxis, "_ui_messaging", {}), clinic: data}
    base = f"/clinics/{clinic}/messaging"
    pages = [client.get(base), client.get(f"{base}?status=failed&date_from=x&patient={b.patient}"),
             client.get(f"{base}?patient={b.patient}&channel=sms"), client.get(f"{base}/lookup?q=kov", headers=HTMX),
             client.get(f"{base}/failures"), client.get(f"{base}/failures?status=failed"),
             client.get(f"{base}/replies"), client.get(f"{base}/messages/{data.failed}"),
             client.get(f"{base}/messages/{data.unknown}"), client.get(f"{base}/messages/{data.sent}"),
             client.get(f"{base}/rules"), client.get(f"{base}/rules/new"), client.get(f"{base}/rules/{data.rule}"),
             client.get(f"{base}/rules/fields?kind=recall", headers=HTMX),
             client.get(f"{base}/rules/fields?kind=status_changed", headers=HTMX),
             client.get(f"{base}/templates"), client.get(f"{base}/templates/new"),
             client.get(f"{base}/templates/{data.template}"), client.get(f"{base}/settings"),
             client.get(f"{base}/patient/{b.patient}", headers=HTMX)]
    token = csrf_of(pages[0].text)
    pages.append(client.post(f"{base}/rules/new", data={"csrf_token": token, "name": "", "kind": "days_before",
                                                       "params.days": "x", "template_code": "nope"}))
    pages.append(client.post(f"{base}/templates/new", data={"csrf_token": token, "code": "bad code", "language": "en",
                                                           "channel": "any", "body": "Hi {nev}"}))
    for body in ("Hello {given_name}, see you {date}.", "Hi {nev}", "안녕하세요 {given_name}"):
        pages.append(client.post(f"{base}/templates/preview", data={"csrf_token": token, "body": body},
                                 headers=HTMX))
    pages.append(client.post(f"{base}/settings/quiet-hours", data={"csrf_token": token, "quiet_enabled": "1",
                                                                   "start": "21:00", "end": "21:00"}))
    pages.append(client.post(f"{base}/patient/{b.patient}/send", data={"csrf_token": token, "channel": "sms",
                                                                      "body": "{time}"}, headers=HTMX))
    return pages
