"""Writing a message's text: the template (or a manual sending's text) filled with the message's data.

Messages of rules about appointments and dates and of manual sendings are planned without text and written
when they go out (``core.messaging.delivery``): the patient gets the template as it is then, with the
appointment's time and doctor as they are then, and placeholders that plugins add are resolved then, outside
any transaction (a plugin disabled meanwhile fails the message with a readable reason, never with a blank).
Messages of event rules are written when the event is planned, since the event's data lives only then.

Writing is two steps so that no plugin is called while a transaction is open: ``load`` reads what the texts
need in a few queries (whatever the number of messages; ``load_one``: one query for a message going out),
``write`` fills the templates. Where no plugin enabled in the clinic adds placeholders, the sender writes the
text inside its own transaction (``defer_plugins`` guards against a plugin switched on meanwhile).
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_
from sqlmodel import Session, col, select

from core.messaging import placeholders, segments
from core.messaging import templates as tpl
from core.models.appointment import Appointment
from core.models.auth import User
from core.models.clinic import Clinic
from core.models.messaging import MessageBatch, MessageRule, MessageTemplate, MessagingSettings, RuleKind
from core.models.patient import Patient

if TYPE_CHECKING:
    from core.plugins.runtime import PluginRuntime


class Draft(Protocol):
    """What writing needs of a message (a ``Message`` row, or a planned row not stored yet)."""

    id: uuid.UUID
    clinic_id: int
    patient_id: uuid.UUID | None
    appointment_id: int | None
    rule_id: int | None
    batch_id: uuid.UUID | None
    kind: str
    language: str
    channel: str
    recipient_kind: str
    recipient_name: str


@dataclass(frozen=True)
class Text:
    subject: str
    body: str
    length: int
    segments: int
    encoding: str

    def values(self) -> dict[str, Any]:
        return {"subject": self.subject, "body": self.body, "length": self.length, "segments": self.segments,
                "encoding": self.encoding}


def measure(channel: str, body: str) -> tuple[int, int, str]:
    """(length, SMS parts, encoding) of a body on a channel."""
    if channel == "sms":
        counted = segments.count(body)
        return counted.length, counted.segments, counted.encoding
    return len(body), 0, ""


def text(channel: str, subject: str, body: str) -> Text:
    length, parts, encoding = measure(channel, body)
    return Text(subject[:200], body, length, parts, encoding)


def written_at_send(kind: str) -> bool:
    """Whether messages of this kind get their text when they go out (all but event rules')."""
    return kind != RuleKind.event


def needs_text(message: Any) -> bool:
    """A queued message that has not been written yet."""
    return written_at_send(message.kind) and not message.body


def _norm(language: str | None) -> str:
    return (language or "").replace("_", "-").lower()


def pick_template(rows: Iterable[MessageTemplate], language: str, channel: str,
                  clinic_locale: str) -> MessageTemplate | None:
    """The template for the language (exact, then base language, then the clinic's) and the channel (its own
    text first, then one for any channel)."""
    fitting = [t for t in rows if t.channel in (channel, "any")]
    if not fitting:
        return None
    wanted = _norm(language)
    base, fallback = wanted.split("-")[0], _norm(clinic_locale).split("-")[0]

    def rank(t: MessageTemplate) -> tuple[int, int, int]:
        lang = _norm(t.language)
        closeness = 0 if lang == wanted else 1 if lang.split("-")[0] == base else \
            2 if lang.split("-")[0] == fallback else 3
        return closeness, 0 if t.channel == channel else 1, t.id or 0

    return min(fitting, key=rank)


@dataclass
class Sources:
    """What ``load`` read for a list of drafts."""

    drafts: list[Any]
    clinics: dict[int, Clinic] = field(default_factory=dict)
    links: dict[int, str] = field(default_factory=dict)
    rules: dict[int, MessageRule] = field(default_factory=dict)
    batches: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    templates: dict[tuple[int, str], list[MessageTemplate]] = field(default_factory=dict)
    patients: dict[uuid.UUID, tuple[str, str]] = field(default_factory=dict)
    appointments: dict[int, tuple[datetime, int, str | None]] = field(default_factory=dict)
    doctors: dict[int, str] = field(default_factory=dict)
    events: Mapping[uuid.UUID, tuple[str, dict[str, Any]]] = field(default_factory=dict)


def _chunks(items: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def load(session: Session, drafts: Sequence[Any],
         events: Mapping[uuid.UUID, tuple[str, dict[str, Any]]] | None = None) -> Sources:
    """Read what the drafts' texts need. ``events`` gives event rules' drafts their event name and data."""
    found = Sources(list(drafts), events=events or {})
    if not drafts:
        return found
    # a handful of queries whatever the number of drafts (one message going out: five)
    clinic_ids = sorted({d.clinic_id for d in drafts})
    for clinic, link in session.exec(select(Clinic, MessagingSettings.link)
                                     .outerjoin(MessagingSettings, col(MessagingSettings.clinic_id) == Clinic.id)
                                     .where(col(Clinic.id).in_(clinic_ids))).all():
        assert clinic.id is not None
        session.expunge(clinic)
        found.clinics[clinic.id] = clinic
        found.links[clinic.id] = link or ""
    rule_ids = sorted({d.rule_id for d in drafts if d.rule_id is not None})
    for chunk in _chunks(rule_ids):  # with their templates
        for rule, template in session.exec(select(MessageRule, MessageTemplate).outerjoin(
                MessageTemplate, and_(MessageTemplate.clinic_id == MessageRule.clinic_id,
                                      MessageTemplate.code == MessageRule.template_code))
                .where(col(MessageRule.id).in_(chunk))).all():
            assert rule.id is not None
            found.rules[rule.id] = rule
            templates = found.templates.setdefault((rule.clinic_id, rule.template_code), [])
            if template is not None and template not in templates:
                templates.append(template)
    batch_ids = sorted({d.batch_id for d in drafts if d.batch_id is not None}, key=str)
    request = MessageBatch.__table__.c.filters  # type: ignore[attr-defined]
    for chunk in _chunks(batch_ids):  # the three texts only: the request also lists up to 20,000 patients
        for batch_id, code, body, subject in session.execute(
                select(MessageBatch.id, request["template_code"].as_string(), request["body"].as_string(),
                       request["subject"].as_string()).where(col(MessageBatch.id).in_(chunk))).all():
            found.batches[batch_id] = {"template_code": code, "body": body, "subject": subject}
    codes: dict[int, set[str]] = defaultdict(set)  # manual sendings' templates
    for d in drafts:
        code = found.batches.get(d.batch_id, {}).get("template_code") if d.batch_id is not None else None
        if code and (d.clinic_id, code) not in found.templates:
            codes[d.clinic_id].add(code)
    for clinic_id, wanted in codes.items():
        for t in session.exec(select(MessageTemplate).where(MessageTemplate.clinic_id == clinic_id,
                                                            col(MessageTemplate.code).in_(sorted(wanted)))).all():
            found.templates.setdefault((clinic_id, t.code), []).append(t)
    patient_ids = sorted({d.patient_id for d in drafts if d.patient_id is not None}, key=str)
    for chunk in _chunks(patient_ids):
        for pid, given, family in session.exec(select(Patient.id, Patient.given_name, Patient.family_name)
                                               .where(col(Patient.id).in_(chunk))).all():
            found.patients[pid] = (given or "", family or "")
    appointment_ids = sorted({d.appointment_id for d in drafts if d.appointment_id is not None})
    for chunk in _chunks(appointment_ids):  # with their doctors' names
        for aid, start, doctor, new_name, doctor_name in session.exec(
                select(Appointment.id, Appointment.start_at, Appointment.doctor_id, Appointment.new_patient_name,
                       User.name).outerjoin(User, col(User.id) == Appointment.doctor_id)
                .where(col(Appointment.id).in_(chunk))).all():
            assert aid is not None
            found.appointments[aid] = (start, doctor, new_name)
            if doctor_name is not None:
                found.doctors[doctor] = doctor_name
    return found


# A manual sending's texts never change once it is made, and every message of it needs them: kept per process
# (PostgreSQL would otherwise parse the sending's whole request, up to 20,000 patient ids, for each message).
_batch_texts: dict[uuid.UUID, dict[str, Any]] = {}
_batch_lock = threading.Lock()


def _remember_batch(batch_id: uuid.UUID, texts: dict[str, Any]) -> None:
    with _batch_lock:
        if len(_batch_texts) >= 256:
            _batch_texts.pop(next(iter(_batch_texts)))
        _batch_texts[batch_id] = texts


def load_one(session: Session, draft: Any) -> Sources:
    """``load`` for one draft (a message going out): one query, and one more for its templates."""
    found = Sources([draft])
    clinic, settings, rule = Clinic.__table__, MessagingSettings.__table__, MessageRule.__table__  # type: ignore[attr-defined]
    patient, appointment, user = Patient.__table__, Appointment.__table__, User.__table__  # type: ignore[attr-defined]
    batch = MessageBatch.__table__  # type: ignore[attr-defined]
    columns: list[Any] = [*clinic.c, settings.c.link.label("x_link")]
    query = select().select_from(clinic).outerjoin(settings, settings.c.clinic_id == clinic.c.id)
    if draft.patient_id is not None:
        columns += [patient.c.given_name.label("x_given"), patient.c.family_name.label("x_family")]
        query = query.outerjoin(patient, patient.c.id == draft.patient_id)
    if draft.appointment_id is not None:
        columns += [appointment.c.start_at.label("x_start"), appointment.c.doctor_id.label("x_doctor"),
                    appointment.c.new_patient_name.label("x_new_name"), user.c.name.label("x_doctor_name")]
        query = query.outerjoin(appointment, appointment.c.id == draft.appointment_id) \
            .outerjoin(user, user.c.id == appointment.c.doctor_id)
    if draft.rule_id is not None:
        columns += [c.label(f"x_rule_{c.name}") for c in rule.c]
        query = query.outerjoin(rule, rule.c.id == draft.rule_id)
    texts = _batch_texts.get(draft.batch_id) if draft.batch_id is not None else None
    if draft.batch_id is not None and texts is None:
        request = batch.c.filters  # the texts only: the request also lists up to 20,000 patients
        columns += [request["template_code"].as_string().label("x_code"), request["body"].as_string().label("x_body"),
                    request["subject"].as_string().label("x_subject")]
        query = query.outerjoin(batch, batch.c.id == draft.batch_id)
    row = session.execute(query.add_columns(*columns).where(clinic.c.id == draft.clinic_id)).mappings().first()
    if row is None:
        return found
    found.clinics[draft.clinic_id] = Clinic(**{c.name: row[c.name] for c in clinic.c})
    found.links[draft.clinic_id] = row["x_link"] or ""
    if draft.patient_id is not None and (row["x_given"] is not None or row["x_family"] is not None):
        found.patients[draft.patient_id] = (row["x_given"] or "", row["x_family"] or "")
    if draft.appointment_id is not None and row["x_start"] is not None:
        found.appointments[draft.appointment_id] = (row["x_start"], row["x_doctor"], row["x_new_name"])
        if row["x_doctor_name"] is not None:
            found.doctors[row["x_doctor"]] = row["x_doctor_name"]
    code = None
    if draft.rule_id is not None and row["x_rule_id"] is not None:
        found_rule = MessageRule(**{c.name: row[f"x_rule_{c.name}"] for c in rule.c})
        found.rules[draft.rule_id] = found_rule
        code = found_rule.template_code
    if draft.batch_id is not None:
        if texts is None:
            texts = {"template_code": row["x_code"], "body": row["x_body"], "subject": row["x_subject"]}
            _remember_batch(draft.batch_id, texts)
        found.batches[draft.batch_id] = texts
        code = code or texts["template_code"]
    if code:
        found.templates[(draft.clinic_id, code)] = list(session.exec(select(MessageTemplate).where(
            MessageTemplate.clinic_id == draft.clinic_id, MessageTemplate.code == code)).all())
    return found


def context(sources: Sources, draft: Any) -> tpl.RenderContext:
    clinic = sources.clinics[draft.clinic_id]
    given, family = sources.patients.get(draft.patient_id, ("", "")) if draft.patient_id else ("", "")
    appt = sources.appointments.get(draft.appointment_id) if draft.appointment_id is not None else None
    if draft.patient_id is None and appt is not None and appt[2]:
        given, family = appt[2], ""
    rule = sources.rules.get(draft.rule_id) if draft.rule_id is not None else None
    link = ((rule.params or {}).get("link") if rule is not None else None) or sources.links.get(draft.clinic_id, "")
    event, data = sources.events.get(draft.id, (None, {}))
    return tpl.RenderContext(
        language=draft.language or clinic.locale or "en", timezone=clinic.timezone, clinic_id=draft.clinic_id,
        clinic_name=clinic.name, clinic_address=clinic.address, clinic_phone=clinic.phone,
        patient_given_name=given, patient_family_name=family, recipient_name=draft.recipient_name,
        appointment_start=appt[0] if appt is not None else None,
        doctor_name=sources.doctors.get(appt[1]) if appt is not None else None, link=link or "",
        data=dict(data), kind=draft.kind, channel=draft.channel, recipient_kind=draft.recipient_kind,
        patient_id=str(draft.patient_id) if draft.patient_id else None, appointment_id=draft.appointment_id,
        event=event or ((rule.params or {}).get("event") if rule is not None and rule.kind == RuleKind.event
                        else None),
    )


def source_text(sources: Sources, draft: Any) -> tuple[str, str, str | None]:
    """(subject, body, the template's language or None) to fill for a draft; RenderError if there is none."""
    clinic = sources.clinics.get(draft.clinic_id)
    if clinic is None:
        raise tpl.RenderError("template_missing", "the clinic no longer exists")
    code: str | None = None
    if draft.rule_id is not None:
        rule = sources.rules.get(draft.rule_id)
        if rule is None:
            raise tpl.RenderError("rule_disabled", "the rule that planned the message was deleted")
        code = rule.template_code
    elif draft.batch_id is not None:
        filters = sources.batches.get(draft.batch_id, {})
        code = filters.get("template_code")
        if not code:
            if not filters.get("body"):
                raise tpl.RenderError("template_missing", "the sending's text is not on record")
            return str(filters.get("subject") or ""), str(filters["body"]), None
    if not code:
        raise tpl.RenderError("template_missing", "the message has no template")
    template = pick_template(sources.templates.get((draft.clinic_id, code), ()), draft.language, draft.channel,
                             clinic.locale)
    if template is None:
        raise tpl.RenderError("template_missing", f"no template {code!r} for {draft.channel} in any language")
    return template.subject, template.body, template.language


def write(runtime: PluginRuntime | None, sources: Sources, *, plugins: bool = True,
          defer_plugins: bool = False) -> dict[uuid.UUID, Text | tpl.RenderError]:
    """Each draft's text, or the ``RenderError`` saying why it cannot be written. With ``plugins=False``
    (a preview in the message log) plugins are not called and their placeholders stay as ``{name}``; with
    ``defer_plugins`` (inside a transaction) a plugin's placeholder is a ``placeholder_deferred`` error."""
    out: dict[uuid.UUID, Text | tpl.RenderError] = {}
    sets: dict[int, tpl.PlaceholderSet] = {}
    for draft in sources.drafts:
        try:
            subject, body, language = source_text(sources, draft)
            available = sets.get(draft.clinic_id)
            if available is None:
                available = sets[draft.clinic_id] = placeholders.for_clinic(runtime, draft.clinic_id) \
                    if runtime is not None else tpl.core_set()
            ctx = context(sources, draft)
            if language:
                ctx.language = language
            filled = tpl.render(body, ctx, available=available, plugins=plugins, defer_plugins=defer_plugins)
            title = tpl.render(subject, ctx, available=available, plugins=plugins,
                               defer_plugins=defer_plugins) if subject else ""
        except tpl.RenderError as exc:
            out[draft.id] = exc
            continue
        out[draft.id] = text(draft.channel, title, filled)
    return out
