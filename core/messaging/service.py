"""What the messaging API does: rules, templates, preview, the message log, actions, opt-outs, quiet hours,
settings and manual sending. Every write is one transaction with its audit entry.

Changing rules re-plans in the same transaction: a new or re-enabled appointment rule plans messages for
the clinic's future appointments, an edited one re-times them, a disabled or deleted one cancels those not
yet sent. A date-based rule (birthday, recall, after services) makes sure the clinic's daily planning runs.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import audit
from core.auth.errors import ApiError, conflict, not_found
from core.clock import now
from core.db import transaction
from core.messaging import delivery, event_kinds, placeholders, planner, render, segments
from core.messaging import templates as tpl
from core.messaging.recipients import Contact, channel_order, pick
from core.messaging.schemas import (
    EVENT,
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
    check_rule_params,
)
from core.models.appointment import Appointment
from core.models.clinic import Clinic
from core.models.messaging import (
    APPOINTMENT_KINDS,
    DAILY_KINDS,
    InboundReply,
    Message,
    MessageBatch,
    MessageRule,
    MessageStatus,
    MessageTemplate,
    MessagingSettings,
    OptOut,
    QuietHours,
    RuleKind,
)
from core.models.patient import Patient, PatientStatus
from plugin_sdk.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from core.app_context import Praxis

PLAN_CHUNK = 5000


def _clinic(session: Session, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise not_found(f"clinic {clinic_id} not found")
    return clinic


# --- output ----------------------------------------------------------------------------------------


def rule_out(r: MessageRule) -> dict[str, Any]:
    return {"id": r.id, "clinic_id": r.clinic_id, "name": r.name, "kind": r.kind, "params": r.params,
            "filters": r.filters, "channel": r.channel, "template_code": r.template_code,
            "set_communication_status": r.set_communication_status, "enabled": r.enabled, "version": r.version,
            "created_at": r.created_at, "updated_at": r.updated_at}


def template_out(t: MessageTemplate) -> dict[str, Any]:
    counted = segments.count(t.body)
    return {"id": t.id, "clinic_id": t.clinic_id, "code": t.code, "language": t.language, "channel": t.channel,
            "subject": t.subject, "body": t.body, "version": t.version, "updated_at": t.updated_at,
            "placeholders": tpl.names_in(t.body), "sms": counted.as_dict()}


def message_out(m: Message, preview: render.Text | tpl.RenderError | None = None) -> dict[str, Any]:
    """A message as the API shows it. A message not written yet (``text_final`` false) shows ``preview``: its
    text as it would be written now, with plugins' placeholders left as ``{name}``; ``text_problem`` says why
    it could not be written, if so."""
    out = _message_fields(m)
    out["text_final"] = not (m.status == MessageStatus.queued and render.needs_text(m))
    out["text_problem"] = None
    if isinstance(preview, render.Text):
        out.update(preview.values())
    elif isinstance(preview, tpl.RenderError):
        out["text_problem"] = preview.reason
    return out


def _previews(praxis: Praxis, session: Session, rows: list[Message]
              ) -> dict[uuid.UUID, render.Text | tpl.RenderError]:
    pending = [m for m in rows if m.status == MessageStatus.queued and render.needs_text(m)]
    if not pending:
        return {}
    return render.write(praxis.runtime, render.load(session, pending), plugins=False)


def _message_fields(m: Message) -> dict[str, Any]:
    return {"id": str(m.id), "clinic_id": m.clinic_id, "patient_id": str(m.patient_id) if m.patient_id else None,
            "appointment_id": m.appointment_id, "rule_id": m.rule_id,
            "batch_id": str(m.batch_id) if m.batch_id else None, "kind": m.kind,
            "recipient_kind": m.recipient_kind, "recipient_name": m.recipient_name, "address": m.address,
            "channel": m.channel, "language": m.language, "subject": m.subject, "body": m.body, "length": m.length,
            "segments": m.segments, "encoding": m.encoding, "status": m.status, "error_code": m.error_code,
            "reason": m.reason, "provider_plugin": m.provider_plugin, "vendor_message_id": m.vendor_message_id,
            "idempotency_key": m.idempotency_key, "attempts": m.attempts, "planned_for": m.planned_for,
            "expires_at": m.expires_at, "created_at": m.created_at, "sent_at": m.sent_at,
            "delivered_at": m.delivered_at, "finished_at": m.finished_at, "resolved_by": m.resolved_by,
            "resolved_at": m.resolved_at}


def reply_out(r: InboundReply) -> dict[str, Any]:
    return {"id": r.id, "plugin": r.plugin, "sender": r.sender, "body": r.body, "received_at": r.received_at,
            "message_id": str(r.message_id) if r.message_id else None, "appointment_id": r.appointment_id,
            "patient_id": str(r.patient_id) if r.patient_id else None, "action": r.action, "detail": r.detail}


# --- rules -----------------------------------------------------------------------------------------


def _needs_for(praxis: Praxis, kind: str, params: dict[str, Any] | None = None) -> set[str]:
    """What the messages of a rule can fill: appointment placeholders only where there is an appointment."""
    if kind in APPOINTMENT_KINDS:
        return {tpl.ANY, tpl.APPOINTMENT}
    event = (params or {}).get("event")
    if kind == RuleKind.event and isinstance(event, str) and event_kinds.concerns_appointment(praxis.runtime, event):
        return {tpl.ANY, tpl.APPOINTMENT}
    return {tpl.ANY}


def _check_rule(session: Session, praxis: Praxis, clinic_id: int, rule: MessageRule) -> None:
    from core.scheduling.options import Options

    errors = [FieldError(f, m, c) for f, m, c in check_rule_params(rule.kind, rule.params)]
    options = Options(session, clinic_id)
    if rule.kind == RuleKind.status_changed and isinstance(rule.params.get("status"), str):
        status = options.get("status", rule.params["status"])
        if status is None or not status.active:
            errors.append(FieldError("params.status", f"unknown status {rule.params['status']!r}", "unknown_code"))
    if rule.kind == RuleKind.event and isinstance(rule.params.get("event"), str) and EVENT.match(rule.params["event"]):
        problem = event_kinds.problem(praxis.runtime, clinic_id, rule.params["event"])
        if problem is not None:
            errors.append(FieldError("params.event", problem[1], problem[0]))
    for name in ("type_codes",):
        for code in list(rule.filters.get(name) or []) + list(rule.params.get(name) or []):
            if options.get("type", code) is None:
                errors.append(FieldError(f"filters.{name}", f"unknown appointment type {code!r}", "unknown_code"))
    if rule.set_communication_status is not None:
        option = options.get("communication_status", rule.set_communication_status)
        if option is None or not option.active:
            known = ", ".join(o.code for o in options.lists["communication_status"] if o.active)
            errors.append(FieldError("set_communication_status", f"unknown communication status "
                                     f"{rule.set_communication_status!r}; use one of: {known}", "unknown_code"))
    rows = session.exec(select(MessageTemplate).where(MessageTemplate.clinic_id == clinic_id,
                                                      MessageTemplate.code == rule.template_code)).all()
    if not rows:
        errors.append(FieldError("template_code", f"no template {rule.template_code!r}; create it first",
                                 "unknown_template"))
    available = placeholders.for_clinic(praxis.runtime, clinic_id)
    needs = _needs_for(praxis, rule.kind, rule.params)
    for row in rows:
        for e in tpl.check(row.body, "template_code", allowed_needs=needs, available=available) + \
                tpl.check(row.subject, "template_code", allowed_needs=needs, available=available):
            errors.append(FieldError(e.field, f"template {row.code!r} ({row.language}): {e.message}", e.code))
    if errors:
        raise ValidationFailed(errors)


def _replan(session: Session, rule: MessageRule) -> dict[str, int]:
    """Plan (or re-plan) ``rule`` for the clinic's future appointments; cancel its open messages if disabled."""
    if not rule.enabled:
        return {"cancelled": cancel_rule_messages(session, rule, "rule_disabled", "the rule was switched off")}
    if rule.kind in DAILY_KINDS:  # today's messages of this rule now; the clinic's daily run from tomorrow on
        assert rule.id is not None
        clinic = session.get(Clinic, rule.clinic_id)
        assert clinic is not None
        tz = ZoneInfo(clinic.timezone)
        today = now().astimezone(tz).date()
        delivery.ensure_daily(session, rule.clinic_id, today + timedelta(days=1), tz)
        return {"created": planner.plan_daily(session, rule.clinic_id, today, rule_ids=[rule.id])}
    if rule.kind not in APPOINTMENT_KINDS:
        return {}
    assert rule.id is not None
    plan = planner.ClinicPlan.load(session, rule.clinic_id, rule_ids=[rule.id])
    assert plan is not None
    session.flush()
    with planner.without_cyclic_gc():
        rows = planner.appointment_rows(session, Appointment.clinic_id == rule.clinic_id,
                                        col(Appointment.start_at) > plan.now, col(Appointment.deleted_at).is_(None))
        return planner.plan_many(session, plan, rows, PLAN_CHUNK)


def cancel_rule_messages(session: Session, rule: MessageRule, code: str, reason: str) -> int:
    rows = session.exec(select(Message).where(Message.rule_id == rule.id,
                                              Message.status == MessageStatus.queued)).all()
    return sum(1 for m in rows if planner.cancel_open(session, m, code, reason))


def list_rules(praxis: Praxis, clinic_id: int) -> list[dict[str, Any]]:
    with Session(praxis.engine) as session:
        rows = session.exec(select(MessageRule).where(MessageRule.clinic_id == clinic_id)
                            .order_by(col(MessageRule.id))).all()
        return [rule_out(r) for r in rows]


def _rule(session: Session, clinic_id: int, rule_id: int, *, lock: bool = False) -> MessageRule:
    query = select(MessageRule).where(MessageRule.id == rule_id, MessageRule.clinic_id == clinic_id)
    rule = session.exec(query.with_for_update() if lock else query).first()
    if rule is None:
        raise not_found(f"rule {rule_id} not found")
    return rule


def get_rule(praxis: Praxis, clinic_id: int, rule_id: int) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        return rule_out(_rule(session, clinic_id, rule_id))


def _name_taken(session: Session, clinic_id: int, name: str, but: int | None = None) -> bool:
    query = select(MessageRule.id).where(MessageRule.clinic_id == clinic_id, MessageRule.name == name)
    if but is not None:
        query = query.where(MessageRule.id != but)
    return session.exec(query).first() is not None


def create_rule(praxis: Praxis, clinic_id: int, data: RuleIn, actor: audit.Actor) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        _clinic(session, clinic_id)
        if _name_taken(session, clinic_id, data.name):
            raise ValidationFailed([FieldError("name", "a rule with this name exists", "duplicate")])
        rule = MessageRule(clinic_id=clinic_id, name=data.name, kind=data.kind, params=dict(data.params),
                           filters=data.filters.model_dump(exclude_defaults=True), channel=data.channel,
                           template_code=data.template_code, set_communication_status=data.set_communication_status,
                           enabled=data.enabled)
        _check_rule(session, praxis, clinic_id, rule)
        session.add(rule)
        session.flush()
        planned = _replan(session, rule)
        audit.record(session, actor, "messaging.rule_created", clinic_id=clinic_id, target=f"message_rule:{rule.id}",
                     data={"rule": rule_out(rule), "planned": planned})
        return {**rule_out(rule), "planned": planned}


def update_rule(praxis: Praxis, clinic_id: int, rule_id: int, data: RulePatch, actor: audit.Actor) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        rule = _rule(session, clinic_id, rule_id, lock=True)
        if data.version is not None and data.version != rule.version:
            raise conflict("version_conflict", f"the rule changed (version {rule.version}); reload it",
                           current_version=rule.version)
        before = rule_out(rule)
        values = data.model_dump(exclude_unset=True, exclude={"version"})
        if "name" in values and _name_taken(session, clinic_id, values["name"], but=rule_id):
            raise ValidationFailed([FieldError("name", "a rule with this name exists", "duplicate")])
        if "filters" in values:
            values["filters"] = data.filters.model_dump(exclude_defaults=True) if data.filters else {}
        for name, value in values.items():
            setattr(rule, name, value)
        _check_rule(session, praxis, clinic_id, rule)
        rule.version += 1
        rule.updated_at = now()
        session.add(rule)
        session.flush()
        planned = _replan(session, rule)
        audit.record(session, actor, "messaging.rule_changed", clinic_id=clinic_id, target=f"message_rule:{rule.id}",
                     data={"before": before, "after": rule_out(rule), "planned": planned})
        return {**rule_out(rule), "planned": planned}


def set_rule_enabled(praxis: Praxis, clinic_id: int, rule_id: int, enabled: bool,
                     actor: audit.Actor) -> dict[str, Any]:
    return update_rule(praxis, clinic_id, rule_id, RulePatch(enabled=enabled), actor)


def delete_rule(praxis: Praxis, clinic_id: int, rule_id: int, actor: audit.Actor) -> None:
    with transaction(praxis.engine) as session:
        rule = _rule(session, clinic_id, rule_id, lock=True)
        cancel_rule_messages(session, rule, "rule_disabled", "the rule was deleted")
        used = session.exec(select(func.count()).select_from(Message).where(Message.rule_id == rule_id)).one()
        if used:
            raise conflict("rule_in_use", f"{used} messages in the log came from this rule; switch it off instead "
                           "(its queued messages were not cancelled)")
        audit.record(session, actor, "messaging.rule_deleted", clinic_id=clinic_id, target=f"message_rule:{rule_id}",
                     data={"rule": rule_out(rule)})
        session.delete(rule)


# --- templates -------------------------------------------------------------------------------------


def _check_template(session: Session, praxis: Praxis, clinic_id: int, code: str, body: str, subject: str) -> None:
    available = placeholders.for_clinic(praxis.runtime, clinic_id)
    errors = tpl.check(body, "body", available=available) + (
        tpl.check(subject, "subject", available=available) if subject else [])
    if not errors:
        rules = session.exec(select(MessageRule).where(MessageRule.clinic_id == clinic_id,
                                                       MessageRule.template_code == code)).all()
        narrow = sorted({r.kind for r in rules if tpl.APPOINTMENT not in _needs_for(praxis, r.kind, r.params)})
        if narrow:
            used_by = ", ".join(narrow)
            for e in tpl.check(body, "body", allowed_needs={tpl.ANY}, available=available) + \
                    (tpl.check(subject, "subject", allowed_needs={tpl.ANY}, available=available) if subject else []):
                errors.append(FieldError(e.field, f"{e.message} (the template is used by {used_by} rules)", e.code))
    if errors:
        raise ValidationFailed(errors)


def list_templates(praxis: Praxis, clinic_id: int, code: str | None = None) -> list[dict[str, Any]]:
    with Session(praxis.engine) as session:
        query = select(MessageTemplate).where(MessageTemplate.clinic_id == clinic_id)
        if code:
            query = query.where(MessageTemplate.code == code)
        rows = session.exec(query.order_by(col(MessageTemplate.code), col(MessageTemplate.language))).all()
        return [template_out(t) for t in rows]


def _template(session: Session, clinic_id: int, template_id: int) -> MessageTemplate:
    row = session.exec(select(MessageTemplate).where(MessageTemplate.id == template_id,
                                                     MessageTemplate.clinic_id == clinic_id)).first()
    if row is None:
        raise not_found(f"template {template_id} not found")
    return row


def get_template(praxis: Praxis, clinic_id: int, template_id: int) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        return template_out(_template(session, clinic_id, template_id))


def create_template(praxis: Praxis, clinic_id: int, data: TemplateIn, actor: audit.Actor) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        _clinic(session, clinic_id)
        _check_template(session, praxis, clinic_id, data.code, data.body, data.subject)
        exists = session.exec(select(MessageTemplate.id).where(
            MessageTemplate.clinic_id == clinic_id, MessageTemplate.code == data.code,
            MessageTemplate.language == data.language, MessageTemplate.channel == data.channel)).first()
        if exists is not None:
            raise ValidationFailed([FieldError("language", f"template {data.code!r} already has a {data.language} "
                                               f"text for {data.channel}", "duplicate")])
        row = MessageTemplate(clinic_id=clinic_id, **data.model_dump())
        session.add(row)
        session.flush()
        audit.record(session, actor, "messaging.template_created", clinic_id=clinic_id,
                     target=f"message_template:{row.id}", data=data.model_dump())
        return template_out(row)


def update_template(praxis: Praxis, clinic_id: int, template_id: int, data: TemplatePatch,
                    actor: audit.Actor) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        row = _template(session, clinic_id, template_id)
        if data.version is not None and data.version != row.version:
            raise conflict("version_conflict", f"the template changed (version {row.version}); reload it",
                           current_version=row.version)
        before = {"subject": row.subject, "body": row.body}
        body = data.body if data.body is not None else row.body
        subject = data.subject if data.subject is not None else row.subject
        _check_template(session, praxis, clinic_id, row.code, body, subject)
        row.body, row.subject = body, subject
        row.version += 1
        row.updated_at = now()
        session.add(row)
        audit.record(session, actor, "messaging.template_changed", clinic_id=clinic_id,
                     target=f"message_template:{row.id}", data={"before": before,
                                                                "after": {"subject": subject, "body": body}})
        return template_out(row)


def delete_template(praxis: Praxis, clinic_id: int, template_id: int, actor: audit.Actor) -> None:
    with transaction(praxis.engine) as session:
        row = _template(session, clinic_id, template_id)
        others = session.exec(select(func.count()).select_from(MessageTemplate).where(
            MessageTemplate.clinic_id == clinic_id, MessageTemplate.code == row.code,
            MessageTemplate.id != row.id)).one()
        rules = session.exec(select(MessageRule.name).where(MessageRule.clinic_id == clinic_id,
                                                            MessageRule.template_code == row.code)).all()
        if rules and not others:
            raise conflict("template_in_use", f"rules use template {row.code!r}: {', '.join(rules)}")
        audit.record(session, actor, "messaging.template_deleted", clinic_id=clinic_id,
                     target=f"message_template:{row.id}", data=template_out(row))
        session.delete(row)


def preview(praxis: Praxis, clinic_id: int, data: PreviewIn) -> dict[str, Any]:
    """Render a text with sample data, or with a real patient's / appointment's; count its SMS parts.
    With real data, plugins' placeholders are filled by the plugins (outside any transaction)."""
    available = placeholders.for_clinic(praxis.runtime, clinic_id)
    errors = tpl.check(data.body, "body", available=available) + (
        tpl.check(data.subject, "subject", available=available) if data.subject else [])
    if errors:
        raise ValidationFailed(errors)
    with Session(praxis.engine) as session:
        clinic = _clinic(session, clinic_id)
        appt = None
        patient_id = data.patient_id
        if data.appointment_id is not None:
            appt = session.get(Appointment, data.appointment_id)
            if appt is None or appt.clinic_id != clinic_id:
                raise ValidationFailed([FieldError("appointment_id", "no such appointment in this clinic",
                                                   "not_found")])
            patient_id = patient_id or appt.patient_id
        sample = patient_id is None and appt is None
        patient = None
        if patient_id is not None:
            patient = session.get(Patient, patient_id)
            if patient is None or patient.clinic_id != clinic_id:
                raise ValidationFailed([FieldError("patient_id", "no such patient in this clinic", "not_found")])
        language = data.language or (patient.preferred_language if patient and patient.preferred_language
                                     else clinic.locale) or "en"
        name = tpl.full_name(patient.given_name, patient.family_name, language) if patient else ""
        draft = SimpleNamespace(id=uuid.uuid4(), clinic_id=clinic_id, patient_id=patient_id,
                                appointment_id=appt.id if appt else None, rule_id=None, batch_id=None, kind="preview",
                                language=language, channel="sms", recipient_kind="patient", recipient_name=name)
        ctx = render.context(render.load(session, [draft]), draft)
    try:
        body = tpl.render(data.body, ctx, sample=sample, available=available)
        subject = tpl.render(data.subject, ctx, sample=sample, available=available) if data.subject else ""
    except tpl.RenderError as exc:  # a placeholder vanished since the check, or a plugin could not fill it
        raise ValidationFailed([FieldError("body", exc.reason, exc.code)]) from exc
    known = available.known
    missing = [n for n in tpl.names_in(data.body) if not sample and known[n].needs == tpl.APPOINTMENT
               and appt is None]
    return {"body": body, "subject": subject, "language": language, "sample": sample,
            "sms": segments.count(body).as_dict(), "placeholders": tpl.names_in(data.body),
            "unfilled": missing}


def placeholder_list(praxis: Praxis | None = None, clinic_id: int | None = None) -> list[dict[str, Any]]:
    """The placeholders templates may use: the core's, plus (given a clinic) those of the plugins enabled there.
    ``description`` is a msgid (of the plugin's catalog, domain ``praxis_<plugin>``, when ``source`` is a
    plugin)."""
    available = placeholders.for_clinic(praxis.runtime, clinic_id) if praxis is not None and clinic_id is not None \
        else tpl.core_set()
    return [{"name": p.name, "description": p.description, "kind": p.kind,
             "needs_appointment": p.needs == tpl.APPOINTMENT, "source": p.source}
            for p in sorted(available.known.values(), key=lambda p: p.name)]


def event_kinds_list(praxis: Praxis, clinic_id: int) -> list[dict[str, Any]]:
    """The events an event rule of this clinic may listen to (for the rules editor): ``name``, ``title`` and
    ``description`` (msgids, of the plugin's catalog for a plugin's event), ``concerns`` ("patient" or
    "appointment": only the latter's templates may use ``{date}``, ``{time}`` ...), ``plugin`` (None for the
    core's) and ``plugin_title``."""
    with Session(praxis.engine) as session:
        _clinic(session, clinic_id)
    return event_kinds.for_clinic(praxis.runtime, clinic_id)


# --- the message log -------------------------------------------------------------------------------


def list_messages(praxis: Praxis, clinic_id: int, *, patient_id: uuid.UUID | None = None, status: str | None = None,
                  rule_id: int | None = None, appointment_id: int | None = None, batch_id: uuid.UUID | None = None,
                  channel: str | None = None, start: datetime | None = None, end: datetime | None = None,
                  limit: int = 50, offset: int = 0) -> dict[str, Any]:
    conditions: list[Any] = [Message.clinic_id == clinic_id]
    if patient_id is not None:
        conditions.append(Message.patient_id == patient_id)
    if status is not None:
        conditions.append(Message.status == status)
    if rule_id is not None:
        conditions.append(Message.rule_id == rule_id)
    if appointment_id is not None:
        conditions.append(Message.appointment_id == appointment_id)
    if batch_id is not None:
        conditions.append(Message.batch_id == batch_id)
    if channel is not None:
        conditions.append(Message.channel == channel)
    if start is not None:
        conditions.append(col(Message.planned_for) >= start)
    if end is not None:
        conditions.append(col(Message.planned_for) < end)
    with Session(praxis.engine) as session:
        total = session.exec(select(func.count()).select_from(Message).where(*conditions)).one()
        rows = session.exec(select(Message).where(*conditions)
                            .order_by(col(Message.planned_for).desc(), col(Message.id))
                            .offset(offset).limit(limit)).all()
        previews = _previews(praxis, session, list(rows))
        return {"items": [message_out(m, previews.get(m.id)) for m in rows], "total": total, "limit": limit,
                "offset": offset}


def _message(session: Session, clinic_id: int, message_id: uuid.UUID, *, lock: bool = False) -> Message:
    query = select(Message).where(Message.id == message_id, Message.clinic_id == clinic_id)
    message = session.exec(query.with_for_update() if lock else query).first()
    if message is None:
        raise not_found(f"message {message_id} not found")
    return message


def get_message(praxis: Praxis, clinic_id: int, message_id: uuid.UUID) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        message = _message(session, clinic_id, message_id)
        replies = session.exec(select(InboundReply).where(InboundReply.message_id == message_id)
                               .order_by(col(InboundReply.received_at))).all()
        preview = _previews(praxis, session, [message]).get(message.id)
        return {**message_out(message, preview), "replies": [reply_out(r) for r in replies]}


def list_replies(praxis: Praxis, clinic_id: int, *, appointment_id: int | None = None, limit: int = 50,
                 offset: int = 0) -> dict[str, Any]:
    conditions: list[Any] = [InboundReply.clinic_id == clinic_id]
    if appointment_id is not None:
        conditions.append(InboundReply.appointment_id == appointment_id)
    with Session(praxis.engine) as session:
        total = session.exec(select(func.count()).select_from(InboundReply).where(*conditions)).one()
        rows = session.exec(select(InboundReply).where(*conditions).order_by(col(InboundReply.received_at).desc())
                            .offset(offset).limit(limit)).all()
        return {"items": [reply_out(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def _fresh_address(session: Session, clinic: Clinic, message: Message) -> tuple[str, str | None]:
    """The recipient's address on the message's channel as it is on the card now (staff may have fixed it)."""
    if message.patient_id is None:
        return message.address, None
    people = planner.People.load(session, [message.patient_id])
    patient = people.patients.get(message.patient_id)
    if patient is None:
        return message.address, None
    if message.recipient_kind == "guardian":
        guardian = next((g for g in people.guardians.get(patient.id, []) if g.id == message.guardian_id), None)
        if guardian is None:
            return "", "the guardian is no longer on the patient's card"
        contact = Contact("guardian", "", guardian.name, ((guardian.phone, "mobile"),) if guardian.phone else (),
                          (guardian.email,) if guardian.email else ())
    else:
        contact = Contact("patient", "", "", tuple(people.phones.get(patient.id, ())),
                          tuple(people.emails.get(patient.id, ())))
    recipient = pick(contact, channel_order(message.channel, None), (), clinic.country)
    return recipient.address, recipient.problem


def retry(praxis: Praxis, clinic_id: int, message_id: uuid.UUID, actor: audit.Actor) -> dict[str, Any]:
    """Send a failed or unknown message again. For an unknown one this is a person's decision that the vendor
    did not send it; the message keeps its idempotency key, so a vendor that deduplicates still drops a copy."""
    with transaction(praxis.engine) as session:
        clinic = _clinic(session, clinic_id)
        message = _message(session, clinic_id, message_id, lock=True)
        if message.status not in (MessageStatus.failed, MessageStatus.unknown, MessageStatus.cancelled):
            raise conflict("not_retryable", "only failed, cancelled or unknown messages can be sent again; "
                           f"this one is {message.status}")
        address, problem = _fresh_address(session, clinic, message)
        if problem is not None:
            raise ValidationFailed([FieldError("address", problem, "invalid_address")])
        before = message.status
        at = now()
        message.address = address
        message.status = MessageStatus.queued
        message.error_code, message.reason, message.finished_at = None, f"sent again by {actor.name}", None
        message.planned_for, message.expires_at, message.attempts = at, None, 0
        message.resolved_by, message.resolved_at = actor.id, at
        message.outbox_item_id = planner.requeue(session, message, at)
        message.updated_at = at
        session.add(message)
        audit.record(session, actor, "messaging.message_retried", clinic_id=clinic_id, target=f"message:{message.id}",
                     data={"before": before, "patient_id": str(message.patient_id) if message.patient_id else None})
        return message_out(message)


def resolve(praxis: Praxis, clinic_id: int, message_id: uuid.UUID, data: ResolveIn,
            actor: audit.Actor) -> dict[str, Any]:
    """A person's decision on an unknown (or queued / failed) message: it was sent, or give it up."""
    with transaction(praxis.engine) as session:
        message = _message(session, clinic_id, message_id, lock=True)
        allowed = (MessageStatus.unknown, MessageStatus.queued) if data.outcome == "failed" else (
            MessageStatus.unknown, MessageStatus.failed)
        if message.status not in allowed:
            raise conflict("not_resolvable", f"a {message.status} message cannot be marked {data.outcome}")
        before = message.status
        at = now()
        note = f" ({data.note})" if data.note else ""
        if data.outcome == "sent":
            message.status, message.sent_at = MessageStatus.sent, message.sent_at or at
            message.error_code, message.reason = None, f"marked as sent by {actor.name}{note}"
        else:
            planner.retire_item(session, message.outbox_item_id, "given up")
            message.status, message.error_code = MessageStatus.failed, "given_up"
            message.reason, message.finished_at = f"given up by {actor.name}{note}", at
        message.outbox_item_id = None
        message.resolved_by, message.resolved_at, message.updated_at = actor.id, at, at
        session.add(message)
        audit.record(session, actor, "messaging.message_resolved", clinic_id=clinic_id, target=f"message:{message.id}",
                     data={"before": before, "outcome": data.outcome, "note": data.note})
        return message_out(message)


# --- opt-outs, quiet hours, settings -------------------------------------------------------------------


def _patient(session: Session, clinic_id: int, patient_id: uuid.UUID) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None or patient.clinic_id != clinic_id:
        raise not_found(f"patient {patient_id} not found")
    return patient


def get_opt_outs(praxis: Praxis, clinic_id: int, patient_id: uuid.UUID) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        _patient(session, clinic_id, patient_id)
        rows = session.exec(select(OptOut).where(OptOut.patient_id == patient_id).order_by(col(OptOut.channel))).all()
        return {"patient_id": str(patient_id), "channels": [r.channel for r in rows],
                "items": [{"channel": r.channel, "note": r.note, "created_at": r.created_at,
                           "created_by": r.created_by} for r in rows]}


def set_opt_outs(praxis: Praxis, clinic_id: int, patient_id: uuid.UUID, data: OptOutsIn,
                 actor: audit.Actor) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        _patient(session, clinic_id, patient_id)
        rows = {r.channel: r for r in session.exec(select(OptOut).where(OptOut.patient_id == patient_id)).all()}
        wanted = set(data.channels)
        for channel, row in rows.items():
            if channel not in wanted:
                session.delete(row)
        for channel in sorted(wanted - set(rows)):
            session.add(OptOut(clinic_id=clinic_id, patient_id=patient_id, channel=channel, note=data.note,
                               created_by=actor.id))
        cancelled = 0
        if wanted:
            for m in session.exec(select(Message).where(Message.patient_id == patient_id,
                                                        Message.status == MessageStatus.queued,
                                                        col(Message.channel).in_(sorted(wanted)))).all():
                cancelled += planner.cancel_open(session, m, "opted_out", f"the patient opted out of {m.channel}")
        audit.record(session, actor, "messaging.opt_outs_set", clinic_id=clinic_id, target=f"patient:{patient_id}",
                     data={"before": sorted(rows), "after": sorted(wanted), "note": data.note,
                           "cancelled_messages": cancelled})
    return get_opt_outs(praxis, clinic_id, patient_id)


def quiet_out(q: QuietHours | None, clinic_id: int) -> dict[str, Any]:
    q = q or QuietHours(clinic_id=clinic_id, enabled=False)
    return {"enabled": q.enabled, "start": q.start.strftime("%H:%M"), "end": q.end.strftime("%H:%M")}


def get_quiet_hours(praxis: Praxis, clinic_id: int) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        return quiet_out(session.get(QuietHours, clinic_id), clinic_id)


def set_quiet_hours(praxis: Praxis, clinic_id: int, data: QuietHoursIn, actor: audit.Actor) -> dict[str, Any]:
    if data.enabled and data.start == data.end:
        raise ValidationFailed([FieldError("end", "must differ from the start", "empty_range")])
    with transaction(praxis.engine) as session:
        _clinic(session, clinic_id)
        row = session.get(QuietHours, clinic_id)
        before = quiet_out(row, clinic_id)
        row = row or QuietHours(clinic_id=clinic_id)
        row.enabled, row.start, row.end, row.updated_at = data.enabled, data.start, data.end, now()
        session.add(row)
        after = quiet_out(row, clinic_id)
        audit.record(session, actor, "messaging.quiet_hours_set", clinic_id=clinic_id, target=f"clinic:{clinic_id}",
                     data={"before": before, "after": after})
        return after


def settings_out(s: MessagingSettings) -> dict[str, Any]:
    return {"replies_enabled": s.replies_enabled, "confirm_replies": list(s.confirm_replies),
            "cancel_replies": list(s.cancel_replies), "cancel_reason": s.cancel_reason,
            "confirmed_communication_status": s.confirmed_communication_status,
            "reply_window_hours": s.reply_window_hours, "link": s.link}


def get_settings(praxis: Praxis, clinic_id: int) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        return settings_out(planner.settings_of(session, clinic_id))


def set_settings(praxis: Praxis, clinic_id: int, data: SettingsIn, actor: audit.Actor) -> dict[str, Any]:
    from core.scheduling.options import Options

    confirm = [w.strip() for w in data.confirm_replies if w.strip()]
    cancel = [w.strip() for w in data.cancel_replies if w.strip()]
    errors = []
    if {w.lower() for w in confirm} & {w.lower() for w in cancel}:
        errors.append(FieldError("cancel_replies", "a reply cannot both confirm and cancel", "overlap"))
    with transaction(praxis.engine) as session:
        _clinic(session, clinic_id)
        options = Options(session, clinic_id)
        if options.get("cancel_reason", data.cancel_reason) is None:
            errors.append(FieldError("cancel_reason", f"unknown cancel reason {data.cancel_reason!r}", "unknown_code"))
        comm = data.confirmed_communication_status
        if comm is not None and options.get("communication_status", comm) is None:
            errors.append(FieldError("confirmed_communication_status", f"unknown communication status {comm!r}",
                                     "unknown_code"))
        if errors:
            raise ValidationFailed(errors)
        row = session.get(MessagingSettings, clinic_id)
        before = settings_out(row) if row else None
        row = row or MessagingSettings(clinic_id=clinic_id)
        for name, value in {**data.model_dump(), "confirm_replies": confirm, "cancel_replies": cancel}.items():
            setattr(row, name, value)
        row.updated_at = now()
        session.add(row)
        after = settings_out(row)
        audit.record(session, actor, "messaging.settings_set", clinic_id=clinic_id, target=f"clinic:{clinic_id}",
                     data={"before": before, "after": after})
        return after


# --- manual sending ---------------------------------------------------------------------------------


def _filtered_patients(session: Session, clinic: Clinic, data: SendIn) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    if data.patient_ids:
        found = set(session.exec(select(Patient.id).where(col(Patient.id).in_(data.patient_ids),
                                                          Patient.clinic_id == clinic.id,
                                                          Patient.status == PatientStatus.active)).all())
        missing = [str(p) for p in data.patient_ids if p not in found]
        if missing:
            raise ValidationFailed([FieldError("patient_ids", f"not active patients of this clinic: "
                                               f"{', '.join(missing[:5])}", "not_found")])
        ids.extend(p for p in dict.fromkeys(data.patient_ids))
    f = data.filter
    if f is not None:
        query = select(Patient).where(Patient.clinic_id == clinic.id, Patient.status == PatientStatus.active)
        if f.born_month is not None:
            from sqlalchemy import extract

            query = query.where(extract("month", col(Patient.birth_date)) == f.born_month)
        patients = list(session.exec(query).all())
        if f.tag:
            patients = [p for p in patients if f.tag in (p.tags or [])]
        if f.appointment_from or f.appointment_to or f.doctor_id:
            tz = ZoneInfo(clinic.timezone)
            appts = select(Appointment.patient_id).where(Appointment.clinic_id == clinic.id,
                                                         col(Appointment.patient_id).is_not(None),
                                                         col(Appointment.deleted_at).is_(None))
            if f.appointment_from:
                appts = appts.where(col(Appointment.start_at) >= planner.local_at(f.appointment_from,
                                                                                   datetime.min.time(), tz))
            if f.appointment_to:
                appts = appts.where(col(Appointment.start_at) < planner.local_at(
                    f.appointment_to + timedelta(days=1), datetime.min.time(), tz))
            if f.doctor_id:
                appts = appts.where(Appointment.doctor_id == f.doctor_id)
            with_appt = set(session.exec(appts).all())
            patients = [p for p in patients if p.id in with_appt]
        seen = set(ids)
        ids.extend(p.id for p in sorted(patients, key=lambda p: (p.family_name, p.given_name)) if p.id not in seen)
    return ids


def send(praxis: Praxis, clinic_id: int, data: SendIn, actor: audit.Actor) -> dict[str, Any]:
    """Queue one message per recipient of the chosen patients through the outbox; returns the batch."""
    errors = []
    if (data.template_code is None) == (data.body is None):
        errors.append(FieldError("body", "give either a template_code or a body", "required"))
    if not data.patient_ids and data.filter is None:
        errors.append(FieldError("patient_ids", "give patient_ids or a filter", "required"))
    available = placeholders.for_clinic(praxis.runtime, clinic_id)
    if data.body is not None:
        errors += tpl.check(data.body, "body", allowed_needs={tpl.ANY}, available=available)
        errors += tpl.check(data.subject, "subject", allowed_needs={tpl.ANY}, available=available) \
            if data.subject else []
    if errors:
        raise ValidationFailed(errors)
    with transaction(praxis.engine) as session:
        clinic = _clinic(session, clinic_id)
        if data.template_code is not None:
            rows = session.exec(select(MessageTemplate).where(MessageTemplate.clinic_id == clinic_id,
                                                              MessageTemplate.code == data.template_code)).all()
            if not rows:
                raise ValidationFailed([FieldError("template_code", f"no template {data.template_code!r}",
                                                   "unknown_template")])
            for row in rows:
                problems = tpl.check(row.body, "template_code", allowed_needs={tpl.ANY}, available=available)
                if problems:
                    what = "needs an appointment" if problems[0].code == "placeholder_not_available" else \
                        "cannot be sent"
                    raise ValidationFailed([FieldError("template_code", f"template {row.code!r} ({row.language}) "
                                                       f"{what}: {problems[0].message}", problems[0].code)])
        patient_ids = _filtered_patients(session, clinic, data)
        if not patient_ids:
            raise ValidationFailed([FieldError("filter", "no patient matches", "empty")])
        batch = MessageBatch(clinic_id=clinic_id, description=data.description,
                             filters=data.model_dump(mode="json"),  # with the text: written when each goes out
                             created_by=actor.id)
        session.add(batch)
        session.flush()
        plan = planner.ClinicPlan.build(session, clinic, [])
        if data.template_code is not None:
            plan.templates = {data.template_code: list(session.exec(select(MessageTemplate).where(
                MessageTemplate.clinic_id == clinic_id, MessageTemplate.code == data.template_code)).all())}
        made = planner.plan_manual(session, plan, batch.id, patient_ids, channel=data.channel,
                                   template_code=data.template_code, body=data.body, subject=data.subject,
                                   planned_for=data.send_at)
        batch.total = len(made)
        batch.skipped = len(patient_ids) - len({r["patient_id"] for r in made})
        session.add(batch)
        audit.record(session, actor, "messaging.sent_manually", clinic_id=clinic_id, target=f"message_batch:{batch.id}",
                     data={"patients": len(patient_ids), "messages": len(made), "channel": data.channel,
                           "template_code": data.template_code, "body": data.body})
        batch_id = batch.id
    return get_batch(praxis, clinic_id, batch_id)


def get_batch(praxis: Praxis, clinic_id: int, batch_id: uuid.UUID) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        batch = session.get(MessageBatch, batch_id)
        if batch is None or batch.clinic_id != clinic_id:
            raise not_found(f"batch {batch_id} not found")
        counts = dict(session.exec(select(Message.status, func.count()).where(Message.batch_id == batch_id)
                                   .group_by(col(Message.status))).all())
        done = sum(counts.get(s, 0) for s in (MessageStatus.sent, MessageStatus.delivered, MessageStatus.failed,
                                              MessageStatus.cancelled))
        return {"id": str(batch.id), "clinic_id": batch.clinic_id, "description": batch.description,
                "created_at": batch.created_at, "created_by": batch.created_by, "total": batch.total,
                "skipped_patients": batch.skipped, "counts": {s.value: counts.get(s.value, 0) for s in MessageStatus},
                "finished": done, "progress": round(done / batch.total, 4) if batch.total else 1.0}


def callback(praxis: Praxis, plugin: str, clinic_id: int, headers: dict[str, str], body: bytes) -> dict[str, int]:
    try:
        return delivery.handle_callback(praxis, plugin, clinic_id, headers, body)
    except delivery.CallbackRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc

