"""Turn rules into planned messages: ``core_message`` rows plus the outbox items that send them when due.

Everything here runs inside the caller's transaction:

* ``plan_appointments`` is called (through ``core.messaging.listener``) in the very transaction that books,
  changes, moves, cancels or restores appointments. It computes, for every enabled appointment rule, which
  messages the appointment should have now, and brings the stored ones in line: new ones are queued, moved
  ones re-timed (their outbox item's ``available_at`` follows), unwanted ones cancelled. Messages already
  handed to a vendor are never touched. In a clinic without appointment rules it costs one query.
* ``plan_many`` does the same for many appointments (a new or edited rule over the clinic's book).
* ``plan_daily`` plans the date-based rules (birthdays, recalls, N days after services) for one clinic day.
* ``event_rows`` plans the rules listening to an event (``lab.result_ready``, a plugin's own event); the
  caller writes their texts (``core.messaging.render``) and inserts them.
* ``plan_manual`` queues a manual sending to a list of patients.

Planned messages carry no text yet (but those of events): it is written when they go out
(``core.messaging.render``). Planning picks the template's language, so a missing template still fails the
message at planning, with the reason.

A message's ``dedupe_key`` is ``<rule or batch>:<appointment or occurrence>:<recipient>`` and unique, and
inserts use ``ON CONFLICT DO NOTHING``: planning twice (a job run twice, a worker restarted) never makes a
second message. The work is set-based (a few queries per call whatever the number of appointments) so the
same code plans one booking or a hundred thousand: rows are plain tuples and dicts (no ORM objects), recipients,
languages, templates and quiet hours are worked out once per patient or value, and messages and their outbox
items are written by bulk statements (``insert_new``); bench/reminders.py plans 100,000 appointments.
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import operator
import os
import threading
import time as clock
import uuid
from collections import defaultdict, namedtuple
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from sqlalchemy import DateTime, String, Uuid, any_, bindparam, extract, insert, or_, type_coerce, update
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col, select

from core.clock import now
from core.messaging import render
from core.messaging import templates as tpl
from core.messaging.recipients import Contact, Recipient, choose
from core.models.appointment import Appointment
from core.models.auth import User
from core.models.clinic import Clinic
from core.models.messaging import (
    APPOINTMENT_KINDS,
    DAILY_KINDS,
    Message,
    MessageRule,
    MessageStatus,
    MessageTemplate,
    MessagingSettings,
    OptOut,
    QuietHours,
    RuleKind,
)
from core.models.outbox import OutboxItem, OutboxStatus
from core.models.patient import Patient, PatientEmail, PatientGuardian, PatientPhone, PatientStatus

CORE_PLUGIN = "core"  # the ``plugin`` of outbox items the core itself handles (see core.outbox.core_handlers)
SEND_TOPIC = "core.message.send"
SEND_MAX_ATTEMPTS = 20
# Enum members read once: an enum member's attribute access costs in a loop of 100,000.
QUEUED = MessageStatus.queued.value  # rows hold plain text: the bulk writers pass them to the driver as they are
PENDING = OutboxStatus.pending.value
_BEFORE_KINDS = frozenset({RuleKind.days_before.value, RuleKind.minutes_before.value, RuleKind.on_booking.value})
_DAYS_BEFORE, _MINUTES_BEFORE = RuleKind.days_before.value, RuleKind.minutes_before.value
_STATUS_CHANGED = RuleKind.status_changed.value
CHUNK = 400

# Reasons a message was not sent that planning itself decided; such a message may be planned again (the
# appointment is restored, the phone number corrected, the opt-out withdrawn).
PLANNING_CODES = frozenset({"invalid_address", "no_address", "opted_out", "appointment_inactive",
                            "appointment_moved", "too_late", "template_missing", "status_changed",
                            "rule_disabled", "filtered"})


# --- time helpers ----------------------------------------------------------------------------------


def local_at(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A clinic-local wall time as aware UTC (a skipped hour moves on, a repeated one takes the first)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def parse_hhmm(value: Any, default: time = time(10, 0)) -> time:
    if value in (None, ""):
        return default
    hh, mm = str(value).split(":")
    return time(int(hh), int(mm))


def out_of_quiet_hours(at: datetime, quiet: QuietHours | None, tz: ZoneInfo) -> datetime:
    """``at``, or the end of the quiet hours it falls in."""
    if quiet is None or not quiet.enabled or quiet.start == quiet.end:
        return at
    local = at.astimezone(tz)
    t = local.time()
    if quiet.start < quiet.end:
        if quiet.start <= t < quiet.end:
            return max(at, local_at(local.date(), quiet.end, tz))
        return at
    if t >= quiet.start:
        return max(at, local_at(local.date() + timedelta(days=1), quiet.end, tz))
    if t < quiet.end:
        return max(at, local_at(local.date(), quiet.end, tz))
    return at


# --- what one planning call knows about the clinic ---------------------------------------------------


@dataclass
class ClinicPlan:
    clinic: Clinic
    tz: ZoneInfo
    now: datetime
    today: date
    rules: list[MessageRule]
    templates: dict[str, list[MessageTemplate]]
    settings: MessagingSettings
    quiet: QuietHours | None
    _status_roles: dict[str, str | None] | None = None
    _day_open: dict[date, bool] = field(default_factory=dict)
    _calendar: Any = None
    _calendar_days: tuple[date, date] = (date.min, date.min)
    # kept across the chunks of one planning call (one transaction): patients' data and chosen recipients
    people: People | None = None
    recipients: dict[tuple[uuid.UUID, str], list[Recipient]] = field(default_factory=dict)
    languages: dict[uuid.UUID | None, str] = field(default_factory=dict)
    _templates: dict[tuple[str, str, str], MessageTemplate | None] = field(default_factory=dict)
    _quiet: dict[datetime, datetime] = field(default_factory=dict)
    _planned_at: dict[tuple[int, date], datetime] = field(default_factory=dict)
    _rule_fields: dict[int, tuple[Any, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, clinic_id: int, kinds: Iterable[str] | None = None,
             rule_ids: Iterable[int] | None = None) -> ClinicPlan | None:
        """The clinic's enabled rules (of these kinds / ids) and what planning them needs; None if there is no
        such rule (or no such clinic)."""
        query = select(MessageRule).where(MessageRule.clinic_id == clinic_id, MessageRule.enabled == True)  # noqa: E712
        if kinds is not None:
            query = query.where(col(MessageRule.kind).in_(list(kinds)))
        if rule_ids is not None:
            query = query.where(col(MessageRule.id).in_(list(rule_ids)))
        rules = list(session.exec(query.order_by(col(MessageRule.id))).all())
        if not rules:  # the usual booking in a clinic without such rules: this one query, nothing else
            return None
        clinic = session.get(Clinic, clinic_id)
        if clinic is None:
            return None
        return cls.build(session, clinic, rules)

    @classmethod
    def build(cls, session: Session, clinic: Clinic, rules: list[MessageRule]) -> ClinicPlan:
        assert clinic.id is not None
        tz = ZoneInfo(clinic.timezone)
        at = now()
        codes = {r.template_code for r in rules}
        templates: dict[str, list[MessageTemplate]] = defaultdict(list)
        if codes:
            for t in session.exec(select(MessageTemplate).where(MessageTemplate.clinic_id == clinic.id,
                                                                col(MessageTemplate.code).in_(sorted(codes)))).all():
                templates[t.code].append(t)
        return cls(clinic, tz, at, at.astimezone(tz).date(), rules, dict(templates), settings_of(session, clinic.id),
                   session.get(QuietHours, clinic.id))

    def status_role(self, session: Session | None, code: str) -> str | None:
        if self._status_roles is None:
            from core.scheduling.options import Options

            if session is None:
                raise RuntimeError("status roles not loaded (plan_many warms them before building rows)")

            assert self.clinic.id is not None
            self._status_roles = {o.code: o.role for o in Options(session, self.clinic.id).lists["status"]}
        return self._status_roles.get(code)

    def day_type(self, session: Session | None, day: date) -> str:
        """'working' or 'holiday' (public holiday, clinic day off, or a day without opening hours)."""
        if day not in self._day_open:
            from core.scheduling.calendar import ClinicCalendar

            if session is None:
                raise RuntimeError(f"day {day} not loaded (plan_many warms the days before building rows)")

            if self._calendar is None or not self._calendar_days[0] <= day <= self._calendar_days[1]:
                first, last = day - timedelta(days=31), day + timedelta(days=62)
                self._calendar = ClinicCalendar.load(session, self.clinic, [], first, last)
                self._calendar_days = (first, last)
            info = self._calendar.day_info(day)
            hours = self._calendar.clinic_intervals(info)
            self._day_open[day] = info.open and hours != []
        return "working" if self._day_open[day] else "holiday"

    def template(self, code: str, language: str, channel: str) -> MessageTemplate | None:
        """The template of ``code`` for the language and channel (``render.pick_template``)."""
        key = (code, language, channel)
        if key not in self._templates:
            self._templates[key] = render.pick_template(self.templates.get(code) or [], language, channel,
                                                        self.clinic.locale)
        return self._templates[key]

    def rule_fields(self, rule: MessageRule) -> tuple[Any, ...]:
        """(id, kind, params, filters, channel, template code) of a rule, read from the ORM object once."""
        found = self._rule_fields.get(id(rule))
        if found is None:
            found = self._rule_fields[id(rule)] = (rule.id, str(rule.kind), rule.params or {}, rule.filters or {},
                                                   rule.channel, rule.template_code)
        return found

    def send_time(self, at: datetime) -> datetime:
        """``at`` (not before now), moved out of the quiet hours."""
        found = self._quiet.get(at)
        if found is None:
            found = self._quiet[at] = out_of_quiet_hours(max(at, self.now), self.quiet, self.tz)
        return found

    def day_before_at(self, rule: MessageRule, day: date) -> datetime:
        """When a ``days_before`` rule sends for an appointment on clinic day ``day``."""
        assert rule.id is not None
        key = (rule.id, day)
        found = self._planned_at.get(key)
        if found is None:
            params = rule.params or {}
            found = self._planned_at[key] = local_at(day - timedelta(days=int(params.get("days", 1))),
                                                     parse_hhmm(params.get("at")), self.tz)
        return found


def settings_of(session: Session, clinic_id: int) -> MessagingSettings:
    return session.get(MessagingSettings, clinic_id) or MessagingSettings(clinic_id=clinic_id)


# --- what a rule wants -------------------------------------------------------------------------------


@dataclass(slots=True)
class Want:
    """One message a rule (or a manual sending) wants for one patient, before recipients are chosen."""

    prefix: str  # "r<rule id>" or "b<batch id>"
    occurrence: str  # "a<appointment id>", "bday2026", "recall:a12", "e<event id>" ...
    kind: str
    planned_for: datetime
    rule: MessageRule | None = None
    patient_id: uuid.UUID | None = None
    appointment: Appointment | None = None
    expires_at: datetime | None = None
    channel: str = "patient"
    template_code: str | None = None
    body: str | None = None  # manual sending without a template
    subject: str | None = None
    batch_id: uuid.UUID | None = None
    data: dict[str, Any] = field(default_factory=dict)
    link: str | None = None


@dataclass
class People:
    """Patients, their addresses, guardians and opt-outs, loaded in bulk."""

    patients: dict[uuid.UUID, Any]  # rows with Patient's columns (plain rows: ORM objects cost ~0.1 ms each)
    phones: dict[uuid.UUID, list[tuple[str, str]]]
    emails: dict[uuid.UUID, list[str]]
    guardians: dict[uuid.UUID, list[PatientGuardian]]
    opt_outs: dict[uuid.UUID, set[str]]
    doctors: dict[int, str]

    @classmethod
    def load(cls, session: Session, patient_ids: Iterable[uuid.UUID], doctor_ids: Iterable[int] = (),
             into: People | None = None) -> People:
        """Load these patients (and doctors' names); with ``into``, only those not loaded there yet."""
        people = into or cls({}, defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(set), {})
        ids = sorted({p for p in patient_ids if p not in people.patients}, key=str)
        doctor_ids = [d for d in set(doctor_ids) if d not in people.doctors]
        patient = Patient.__table__  # type: ignore[attr-defined]
        size = chunk_size(session)
        for chunk in _chunks(ids, size):
            for p in session.execute(select(patient.c.id, patient.c.status, patient.c.given_name,
                                            patient.c.family_name, patient.c.birth_date, patient.c.preferred_channel,
                                            patient.c.preferred_language).where(
                                                among(session, patient.c.id, chunk))).all():
                people.patients[p.id] = p
            for patient_id, e164, kind in session.execute(
                    select(PatientPhone.patient_id, PatientPhone.e164, PatientPhone.kind)
                    .where(among(session, col(PatientPhone.patient_id), chunk))
                    .order_by(col(PatientPhone.position))).all():
                people.phones[patient_id].append((e164, kind))
            for patient_id, email in session.execute(
                    select(PatientEmail.patient_id, PatientEmail.email)
                    .where(among(session, col(PatientEmail.patient_id), chunk))
                    .order_by(col(PatientEmail.position))).all():
                people.emails[patient_id].append(email)
            for g in session.exec(select(PatientGuardian).where(among(session, col(PatientGuardian.patient_id), chunk))
                                  .order_by(col(PatientGuardian.name))).all():
                people.guardians[g.patient_id].append(g)
            for patient_id, channel in session.execute(
                    select(OptOut.patient_id, OptOut.channel)
                    .where(among(session, col(OptOut.patient_id), chunk))).all():
                people.opt_outs[patient_id].add(channel)
        doctors = sorted(set(doctor_ids))
        for chunk in _chunks(doctors, size):
            for user_id, name in session.exec(select(User.id, User.name).where(
                    among(session, col(User.id), chunk))).all():
                people.doctors[user_id] = name
        return people


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def chunk_size(session: Session) -> int:
    """How many keys one look-up takes (an array on PostgreSQL; SQLite has a limit on parameters)."""
    return 10000 if _postgresql(session) else 900


def among(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)``: one parameter instead of thousands, which
    the driver would otherwise parse out of the statement one by one."""
    if _postgresql(session):
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


_random = bytearray()
_random_lock = threading.Lock()


def new_id() -> uuid.UUID:
    """A random id whose first 48 bits are the time in milliseconds (UUID version 7, RFC 9562): rows inserted
    together land next to each other in the primary-key index instead of all over it. The random bits come from
    the operating system, drawn in blocks."""
    global _random
    with _random_lock:
        if len(_random) < 10:
            _random = bytearray(os.urandom(10 * 1024))
        rand = int.from_bytes(_random[-10:], "big")
        del _random[-10:]
    value = ((clock.time_ns() // 1_000_000) << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62) \
        | (rand & ((1 << 62) - 1))
    made = object.__new__(uuid.UUID)  # what UUID(int=value) makes, without re-checking a value built valid
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def _recipients(plan: ClinicPlan, people: People, want: Want) -> list[Recipient]:
    country = plan.clinic.country
    if want.patient_id is None:  # an appointment of a new patient: the name and phone typed at booking
        appt = want.appointment
        if appt is None or not appt.new_patient_phone:
            return []
        contact = Contact("patient", f"phone:{appt.new_patient_phone}", appt.new_patient_name or "",
                          ((appt.new_patient_phone, "mobile"),), ())
        return choose(contact, [], birth_date=None, today=plan.today, rule_channel=want.channel,
                      preferred="sms", opted_out=(), country=country)
    patient = people.patients.get(want.patient_id)
    if patient is None or patient.status != PatientStatus.active:
        return []
    contact = Contact("patient", f"p{patient.id}", tpl.full_name(patient.given_name, patient.family_name,
                                                          plan.clinic.locale),
                      tuple(people.phones.get(patient.id, ())), tuple(people.emails.get(patient.id, ())))
    guardians = [Contact("guardian", f"guardian:{g.id}", g.name, ((g.phone, "mobile"),) if g.phone else (),
                         (g.email,) if g.email else (), g.id) for g in people.guardians.get(patient.id, ())]
    return choose(contact, guardians, birth_date=patient.birth_date, today=plan.today, rule_channel=want.channel,
                  preferred=patient.preferred_channel, opted_out=people.opt_outs.get(patient.id, ()),
                  country=country)


def _language(plan: ClinicPlan, people: People, want: Want) -> str:
    patient = people.patients.get(want.patient_id) if want.patient_id else None
    return (patient.preferred_language if patient and patient.preferred_language else plan.clinic.locale) or "en"


def build_rows(plan: ClinicPlan, people: People, wants: Iterable[Want]) -> list[dict[str, Any]]:
    """The message rows (as column dicts) the wants stand for, one per recipient."""
    rows = []
    at = plan.now
    clinic_id = plan.clinic.id
    chosen = plan.recipients  # a patient's recipients, chosen once per channel choice
    rules: dict[int, tuple[int | None, str | None]] = {}  # id(rule) -> (its id, its communication status)
    for want in wants:
        rule = want.rule
        if rule is None:
            rule_id, communication = None, None
        else:
            found = rules.get(id(rule))
            if found is None:
                found = rules[id(rule)] = (rule.id, rule.set_communication_status)
            rule_id, communication = found
        if want.patient_id is not None:
            key = (want.patient_id, want.channel)
            recipients = chosen.get(key)
            if recipients is None:
                recipients = chosen[key] = _recipients(plan, people, want)
        else:
            recipients = _recipients(plan, people, want)
        language = plan.languages.get(want.patient_id)
        if language is None:
            language = plan.languages[want.patient_id] = _language(plan, people, want)
        for r in recipients:
            key = f"{want.prefix}:{want.occurrence}:{r.key}"[:200]
            message_id = new_id()
            row: dict[str, Any] = {
                "id": message_id, "clinic_id": clinic_id, "patient_id": want.patient_id,
                "appointment_id": want.appointment.id if want.appointment is not None else None,
                "rule_id": rule_id, "batch_id": want.batch_id, "kind": want.kind,
                "recipient_kind": r.kind, "guardian_id": r.guardian_id, "recipient_name": r.name[:200],
                "address": r.address, "channel": r.channel, "language": language, "subject": "", "body": "",
                "length": 0, "segments": 0, "encoding": "", "status": QUEUED, "error_code": None,
                "reason": None, "idempotency_key": message_id.hex, "dedupe_key": key,
                "set_communication_status": communication,
                "attempts": 0, "outbox_item_id": None, "planned_for": want.planned_for,
                "expires_at": want.expires_at, "created_at": at, "updated_at": at, "finished_at": None,
            }
            if r.problem is not None:
                _close(row, MessageStatus.cancelled if r.opted_out else MessageStatus.failed, r.problem_code,
                       r.problem, at)
                rows.append(row)
                continue
            if want.body is None:
                template = plan.template(want.template_code or "", language, r.channel)
                if template is None:
                    _close(row, MessageStatus.failed, "template_missing",
                           f"no template {want.template_code!r} for {r.channel} in any language", at)
                    rows.append(row)
                    continue
                row["language"] = template.language
            planned = plan.send_time(want.planned_for)
            row["planned_for"] = planned
            if want.expires_at is not None and planned >= want.expires_at:
                reason = ("the quiet hours last until after the appointment starts" if planned != want.planned_for
                          else "it is too late: the appointment has started")
                _close(row, MessageStatus.cancelled, "too_late", reason, at)
            rows.append(row)
    return rows


def _close(row: dict[str, Any], status: str, code: str | None, reason: str, at: datetime) -> None:
    row["status"], row["error_code"], row["reason"], row["finished_at"] = str(status), code, reason[:1000], at


# --- writing -----------------------------------------------------------------------------------------


def _outbox_row(message_id: uuid.UUID, item_id: uuid.UUID, clinic_id: int, channel: str, available_at: datetime,
                at: datetime) -> dict[str, Any]:
    return {"id": item_id, "plugin": CORE_PLUGIN, "topic": SEND_TOPIC,
            "payload": {"message_id": str(message_id), "channel": channel},
            "clinic_id": clinic_id, "dedupe_key": None, "status": OutboxStatus.pending, "available_at": available_at,
            "attempts": 0, "max_attempts": SEND_MAX_ATTEMPTS, "created_at": at}


#: The columns of a planned message row (``build_rows``), in the order the bulk inserts use.
MESSAGE_COLUMNS = ("id", "clinic_id", "patient_id", "appointment_id", "rule_id", "batch_id", "kind", "recipient_kind",
                   "guardian_id", "recipient_name", "address", "channel", "language", "subject", "body", "length",
                   "segments", "encoding", "status", "error_code", "reason", "idempotency_key", "dedupe_key",
                   "set_communication_status", "attempts", "outbox_item_id", "planned_for", "expires_at",
                   "created_at", "updated_at", "finished_at")
OUTBOX_COLUMNS = ("id", "plugin", "topic", "payload", "clinic_id", "status", "available_at", "attempts",
                  "max_attempts", "created_at")
INSERT_CHUNK = 10000
OVERLAP_INSERTS = True  # plan_many on PostgreSQL: insert one batch while building the next (bench/reminders.py)


def insert_new(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert message rows whose dedupe key is new (others are skipped: planned before, or by a concurrent
    transaction) and queue an outbox item for each sendable one, in the session's transaction. Returns the rows
    actually inserted (``insert_count`` when the number is enough)."""
    fresh = _insert(session, rows, True)
    assert isinstance(fresh, list)
    return fresh


def insert_count(session: Session, rows: list[dict[str, Any]]) -> int:
    """``insert_new``, returning how many rows were inserted."""
    count = _insert(session, rows, False)
    return count if isinstance(count, int) else len(count)


def _insert(session: Session, rows: list[dict[str, Any]], want_rows: bool) -> list[dict[str, Any]] | int:
    """Bulk statements without ORM or per-row SQLAlchemy processing, since a rule may plan a hundred thousand
    messages in one go. PostgreSQL: one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per chunk (from
    ``unnest`` of arrays, or for many rows from a temporary table filled by ``COPY``) that also inserts the outbox
    items of the rows it inserted (a data-modifying CTE). SQLite: two ``executemany`` (values converted by the
    columns' own bind processors, once per distinct datetime), whose row count tells whether a dedupe key was
    taken."""
    staged = _staged(rows)
    if not staged:
        return [] if want_rows else 0
    session.flush()
    return _write(session.connection(), staged, now(), want_rows)


def _staged(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows to insert: one per dedupe key (the first, as ON CONFLICT would), sendable ones with the id of
    their outbox item."""
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["dedupe_key"], row)
        if row["status"] == QUEUED and row.get("outbox_item_id") is None:
            row["outbox_item_id"] = new_id()
    return list(unique.values())


def _write(connection: Any, rows: list[dict[str, Any]], at: datetime, want_rows: bool) -> list[dict[str, Any]] | int:
    """Insert staged rows on the connection's DBAPI connection (no use of the ORM session)."""
    insert = _insert_postgresql if connection.dialect.name == "postgresql" else _insert_sqlite
    fresh: list[dict[str, Any]] = []
    count = 0
    for chunk in _chunks(rows, INSERT_CHUNK):
        done = insert(connection, list(chunk), at, want_rows)
        if isinstance(done, int):
            count += done
        else:
            fresh.extend(done)
            count += len(done)
    return fresh if want_rows else count


_PG_TYPES = {"id": "uuid", "clinic_id": "int", "patient_id": "uuid", "appointment_id": "int", "rule_id": "int",
             "batch_id": "uuid", "guardian_id": "uuid", "length": "int", "segments": "int", "attempts": "int",
             "outbox_item_id": "uuid", "planned_for": "timestamptz", "expires_at": "timestamptz",
             "created_at": "timestamptz", "updated_at": "timestamptz", "finished_at": "timestamptz"}
_PG_RETURNING = "RETURNING id, clinic_id, outbox_item_id, channel, planned_for"
_PG_OUTBOX = f"""
, box AS (
    INSERT INTO core_outbox ({", ".join(OUTBOX_COLUMNS)})
    SELECT outbox_item_id, '{CORE_PLUGIN}', '{SEND_TOPIC}',
           json_build_object('message_id', id::text, 'channel', channel), clinic_id, '{PENDING}',
           planned_for, 0, {SEND_MAX_ATTEMPTS}, %(now)s::timestamptz
    FROM ins WHERE outbox_item_id IS NOT NULL
)
"""
_PG_UNNEST = f"""
WITH ins AS (
    INSERT INTO core_message ({", ".join(MESSAGE_COLUMNS)})
    SELECT {", ".join(MESSAGE_COLUMNS)}
    FROM unnest({", ".join(f"%({c})s::{_PG_TYPES.get(c, 'text')}[]" for c in MESSAGE_COLUMNS)})
         AS s({", ".join(MESSAGE_COLUMNS)})
    ON CONFLICT (dedupe_key) DO NOTHING
    {_PG_RETURNING}
){_PG_OUTBOX}"""
_PG_STAGE = "praxis_planned_message"
#: Columns often alike in every row of a planning call: sent once as parameters instead of in every COPY row.
_PG_ALIKE = ("clinic_id", "rule_id", "batch_id", "kind", "subject", "body", "length", "segments", "encoding",
             "status", "error_code", "reason", "set_communication_status", "attempts", "created_at", "updated_at",
             "finished_at")
COPY_FROM = 500  # from this many rows on, PostgreSQL gets them by COPY (arrays are dumped value by value in Python)


def _insert_postgresql(connection: Any, rows: list[dict[str, Any]], at: datetime,
                       want_rows: bool) -> list[dict[str, Any]] | int:
    tail = "SELECT id FROM ins" if want_rows else "SELECT count(*) FROM ins"
    cursor = connection.connection.cursor()  # the session's connection, inside its transaction
    try:
        if len(rows) < COPY_FROM:
            params: dict[str, Any] = {c: [r[c] for r in rows] for c in MESSAGE_COLUMNS}
            for name in ("status", "kind"):  # enum members as their text
                params[name] = [str(v) for v in params[name]]
            params["now"] = at
            cursor.execute(_PG_UNNEST + tail, params)
        else:  # a temporary table of this transaction (no NOT NULLs: alike columns stay out) filled by COPY
            first = rows[0]
            alike = [c for c in _PG_ALIKE if all(r[c] == first[c] for r in rows)]
            staged = [c for c in MESSAGE_COLUMNS if c not in alike]
            params = {f"v_{c}": str(first[c]) if c in ("status", "kind") else first[c] for c in alike}
            params["now"] = at
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_PG_STAGE} ON COMMIT DROP "
                           "AS SELECT * FROM core_message WITH NO DATA")
            texts = [staged.index(c) for c in ("status", "kind") if c in staged]
            get = operator.itemgetter(*staged)
            with cursor.copy(f"COPY {_PG_STAGE} ({', '.join(staged)}) FROM STDIN") as copy:
                for row in rows:
                    values = list(get(row))
                    for i in texts:
                        values[i] = str(values[i])  # enum members as their text
                    copy.write_row(values)
            chosen = ", ".join(f"%(v_{c})s::{_PG_TYPES.get(c, 'text')}" if c in alike else c for c in MESSAGE_COLUMNS)
            cursor.execute(f"WITH ins AS (INSERT INTO core_message ({', '.join(MESSAGE_COLUMNS)}) "
                           f"SELECT {chosen} FROM {_PG_STAGE} ON CONFLICT (dedupe_key) DO NOTHING {_PG_RETURNING})"
                           f"{_PG_OUTBOX}{tail}", params)
        found = cursor.fetchall()
        if len(rows) >= COPY_FROM:
            cursor.execute(f"DELETE FROM {_PG_STAGE}")
    finally:
        cursor.close()
    if not want_rows:
        return int(found[0][0])
    inserted = {row_id for (row_id,) in found}
    return [r for r in rows if r["id"] in inserted]


_SQLITE_MESSAGE = (f"INSERT INTO core_message ({', '.join(MESSAGE_COLUMNS)}) VALUES "
                   f"({', '.join('?' for _ in MESSAGE_COLUMNS)}) ON CONFLICT (dedupe_key) DO NOTHING")
_SQLITE_OUTBOX = (f"INSERT INTO core_outbox ({', '.join(OUTBOX_COLUMNS)}) VALUES "
                  f"({', '.join('?' for _ in OUTBOX_COLUMNS)})")


def _bind(table: Any, columns: Sequence[str], dialect: Any) -> list[tuple[int, Any]]:
    """(position, bind processor) of the columns whose values the driver cannot take as they are; datetimes
    are memoised (many messages share a planned time)."""
    out = []
    for i, name in enumerate(columns):
        kind = table.c[name].type
        process = kind._cached_bind_processor(dialect)
        if process is None:
            continue
        if isinstance(getattr(kind, "impl_instance", kind), DateTime):
            process = _memo(_sqlite_datetime if dialect.name == "sqlite" else process)
        elif isinstance(kind, Uuid) and dialect.name == "sqlite":
            process = _hex
        out.append((i, process))
    return out


def _sqlite_datetime(value: datetime) -> str:
    """What SQLAlchemy stores for an aware datetime on SQLite (UTC wall time, always with microseconds),
    written by the C ``isoformat``."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: use core.clock.now() or an aware UTC datetime")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


_hex = operator.attrgetter("hex")


def _memo(process: Any) -> Any:
    seen: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        found = seen.get(value)
        if found is None:
            found = seen[value] = process(value)
        return found
    return cached


def _tuples(rows: Iterable[Sequence[Any]], processors: list[tuple[int, Any]]) -> list[list[Any]]:
    out = []
    for values in rows:
        values = list(values)
        for i, process in processors:
            value = values[i]
            if value is not None:
                values[i] = process(value)
        out.append(values)
    return out


def _insert_sqlite(connection: Any, rows: list[dict[str, Any]], at: datetime,
                   want_rows: bool) -> list[dict[str, Any]] | int:
    dialect = connection.dialect
    message_table, outbox_table = Message.__table__, OutboxItem.__table__  # type: ignore[attr-defined]
    processors = _bind(message_table, MESSAGE_COLUMNS, dialect)
    values = _tuples(map(operator.itemgetter(*MESSAGE_COLUMNS), rows), processors)
    cursor = connection.connection.cursor()  # the session's connection, inside its transaction
    try:
        cursor.executemany(_SQLITE_MESSAGE, values)
        if cursor.rowcount == len(rows):
            fresh = rows
        else:  # some dedupe keys were taken: the rows inserted are those whose (fresh) id is now stored
            ids = [r["id"].hex for r in rows]
            stored: set[str] = set()
            for part in _chunks(ids, 900):
                cursor.execute(f"SELECT id FROM core_message WHERE id IN ({', '.join('?' for _ in part)})", part)
                stored.update(found for (found,) in cursor.fetchall())
            fresh = [r for r in rows if r["id"].hex in stored]
        items = [(r["outbox_item_id"], CORE_PLUGIN, SEND_TOPIC,
                  f'{{"message_id": "{r["id"]}", "channel": {json.dumps(r["channel"])}}}', r["clinic_id"],
                  PENDING, r["planned_for"], 0, SEND_MAX_ATTEMPTS, at)
                 for r in fresh if r["outbox_item_id"] is not None]
        if items:
            processors = [(i, p) for i, p in _bind(outbox_table, OUTBOX_COLUMNS, dialect)
                          if OUTBOX_COLUMNS[i] != "payload"]  # the payload is JSON text already
            cursor.executemany(_SQLITE_OUTBOX, _tuples(items, processors))
    finally:
        cursor.close()
    return fresh if want_rows else len(fresh)

def requeue(session: Session, message: Message, available_at: datetime) -> uuid.UUID:
    """Give ``message`` a fresh outbox item due at ``available_at`` (the caller updates the row)."""
    item_id = uuid.uuid4()
    session.execute(insert(OutboxItem).values(
        **_outbox_row(message.id, item_id, message.clinic_id, message.channel, available_at, now())))
    return item_id


def retire_item(session: Session, item_id: uuid.UUID | None, why: str) -> None:
    """Close a message's pending outbox item that no worker holds (one a worker holds sees the message's state)."""
    if item_id is None:
        return
    at = now()
    session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.status == OutboxStatus.pending,
               or_(col(OutboxItem.locked_until).is_(None), col(OutboxItem.locked_until) < at))
        .values(status=OutboxStatus.done, finished_at=at, result={"skipped": why})
        .execution_options(synchronize_session=False)
    )


# --- appointments ------------------------------------------------------------------------------------


@dataclass
class AppointmentChange:
    created: bool = False
    status_changed: bool = False


def _done_like(role: str | None) -> bool:
    return role == "done"


def appointment_wants(session: Session, plan: ClinicPlan, appt: Appointment, change: AppointmentChange,
                      rule: MessageRule) -> tuple[list[Want], str | None]:
    """What ``rule`` wants for ``appt`` now, or ([], why not) for the messages it had."""
    rule_id, kind, params, filters, channel, template_code = plan.rule_fields(rule)
    if appt.deleted_at is not None:
        return [], "appointment_inactive"
    if filters.get("doctor_ids") and appt.doctor_id not in filters["doctor_ids"]:
        return [], "filtered"
    if filters.get("type_codes") and appt.type_code not in filters["type_codes"]:
        return [], "filtered"
    start = appt.start_at
    expires: datetime | None = None
    if kind in _BEFORE_KINDS:
        if not appt.active:
            return [], "appointment_inactive"
        if start <= plan.now:
            return [], "too_late"
        expires = start
        if kind == _DAYS_BEFORE:
            planned = plan.day_before_at(rule, start.astimezone(plan.tz).date())
            if planned >= start:
                return [], "too_late"
        elif kind == _MINUTES_BEFORE:
            planned = start - timedelta(minutes=int(params.get("minutes", 60)))
        else:
            if not change.created:
                return [], None  # a confirmation is only planned at booking; keep what exists
            planned = plan.now + timedelta(minutes=int(params.get("delay_minutes", 0)))
    else:  # status_changed, post_treatment
        role = plan.status_role(session, appt.status)
        if kind == _STATUS_CHANGED:
            matches = appt.status == params.get("status")
        else:
            matches = _done_like(role) and (not params.get("type_codes") or appt.type_code in params["type_codes"])
        if not matches:
            return [], "status_changed"
        if not change.status_changed:
            return [], None
        changed_at = appt.status_changed_at or plan.now
        planned = changed_at + timedelta(minutes=int(params.get("delay_minutes", params.get("minutes", 0))))
    if filters.get("day_type") and plan.day_type(session, start.astimezone(plan.tz).date()) != filters["day_type"]:
        return [], "filtered"
    if filters.get("created_today"):
        created_day = appt.created_at.astimezone(plan.tz).date()
        if created_day != max(planned, plan.now).astimezone(plan.tz).date():
            return [], "filtered"
    return [Want(prefix=f"r{rule_id}", occurrence=f"a{appt.id}", kind=kind, planned_for=planned, rule=rule,
                 patient_id=appt.patient_id, appointment=appt, expires_at=expires, channel=channel,
                 template_code=template_code)], None


#: The appointment columns planning reads (``appointment_rows``).
APPOINTMENT_COLUMNS = ("id", "clinic_id", "patient_id", "doctor_id", "start_at", "status", "active", "deleted_at",
                       "type_code", "created_at", "status_changed_at", "new_patient_phone", "new_patient_name")


AppointmentRow = namedtuple("AppointmentRow", APPOINTMENT_COLUMNS)  # type: ignore[misc]
_UUIDS = ("patient_id",)
_DATETIMES = ("start_at", "deleted_at", "created_at", "status_changed_at")


def appointment_rows(session: Session, *conditions: Any) -> list[Any]:
    """Appointments as plain rows of ``APPOINTMENT_COLUMNS`` (no ORM objects), ordered by start.

    UUIDs and datetimes are read as the driver gives them and converted here (datetimes with the C
    ``fromisoformat``, ids once per distinct value): SQLAlchemy's own conversion of a hundred thousand rows
    (a regular expression per SQLite datetime) costs more than the rest of the planning of a row."""
    table = Appointment.__table__  # type: ignore[attr-defined]
    raw = set(_UUIDS) | set(_DATETIMES)
    columns = [type_coerce(table.c[c], String) if c in raw else table.c[c] for c in APPOINTMENT_COLUMNS]
    rows = session.execute(select(*columns).where(*conditions).order_by(table.c.start_at, table.c.id)).all()
    ids: dict[Any, uuid.UUID] = {}
    times: dict[Any, datetime] = {}  # created / changed times repeat (bulk bookings, series)
    at_uuid = [APPOINTMENT_COLUMNS.index(c) for c in _UUIDS]
    at_datetime = [APPOINTMENT_COLUMNS.index(c) for c in _DATETIMES]
    out = []
    for row in rows:
        values = list(row)
        for i in at_uuid:
            value = values[i]
            if value is not None and not isinstance(value, uuid.UUID):
                found = ids.get(value)
                if found is None:
                    found = ids[value] = uuid.UUID(value)
                values[i] = found
        for i in at_datetime:
            value = values[i]
            if value is not None:
                found = times.get(value)
                if found is None:
                    found = times[value] = _utc(value)
                values[i] = found
        if not isinstance(values[6], bool):  # active: SQLite gives 0 / 1
            values[6] = bool(values[6])
        out.append(AppointmentRow._make(values))
    return out


def _utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite: UTC wall time as text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class _Batch:
    """One batch of appointments being planned: what the rules want, and the messages they have."""

    wants: list[Want]
    why_not: dict[tuple[int, int], str | None]  # (rule, appointment) -> why its messages are unwanted
    people: People
    existing: dict[str, Message]
    by_scope: dict[tuple[int, int], list[Message]]


def _wants(session: Session | None, plan: ClinicPlan, changes: dict[int, AppointmentChange],
           appointments: dict[int, Any]) -> tuple[list[Want], dict[tuple[int, int], str | None]]:
    """What the rules want for these appointments. Reads nothing with ``session=None`` (caches warmed)."""
    wants: list[Want] = []
    why_not: dict[tuple[int, int], str | None] = {}
    for appt_id, appt in appointments.items():
        for rule in plan.rules:
            found, reason = appointment_wants(session, plan, appt, changes[appt_id], rule)  # type: ignore[arg-type]
            assert rule.id is not None
            if found:
                wants.extend(found)
            else:
                why_not[(rule.id, appt_id)] = reason
    return wants, why_not


def _stored(session: Session, plan: ClinicPlan, appointment_ids: Sequence[int]
            ) -> tuple[dict[str, Message], dict[tuple[int, int], list[Message]]]:
    """The rules' stored messages for these appointments: by dedupe key, and by (rule, appointment)."""
    existing: dict[str, Message] = {}
    by_scope: dict[tuple[int, int], list[Message]] = defaultdict(list)
    rule_ids = {r.id for r in plan.rules}
    for chunk in _chunks(list(appointment_ids), chunk_size(session)):
        # by appointment only (its index): "AND rule_id IN" let SQLite walk the rule's index instead, i.e. every
        # message the rule has, once per chunk
        for m in session.exec(select(Message).where(among(session, col(Message.appointment_id), chunk))).all():
            if m.rule_id not in rule_ids:
                continue
            existing[m.dedupe_key] = m
            assert m.rule_id is not None and m.appointment_id is not None
            by_scope[(m.rule_id, m.appointment_id)].append(m)
    return existing, by_scope


def _apply(session: Session, batch: _Batch, desired: list[dict[str, Any]], counts: dict[str, int]
           ) -> list[dict[str, Any]]:
    """Re-time or cancel the stored messages of a batch; returns the rows to insert."""
    fresh = []
    wanted_keys = set()
    for row in desired:
        wanted_keys.add(row["dedupe_key"])
        old = batch.existing.get(row["dedupe_key"])
        if old is None:
            fresh.append(row)
        elif _rewrite(session, old, row):
            counts["updated"] += 1
    for (rule_id, appt_id), reason in batch.why_not.items():
        if reason is None:
            continue
        for m in batch.by_scope.get((rule_id, appt_id), ()):
            if cancel_open(session, m, reason, _REASONS.get(reason, reason)):
                counts["cancelled"] += 1
    for scope, messages in batch.by_scope.items():  # recipients that are no longer wanted (guardian removed...)
        if scope in batch.why_not:
            continue
        for m in messages:
            if m.dedupe_key not in wanted_keys and cancel_open(session, m, "filtered", "no longer a recipient"):
                counts["cancelled"] += 1
    return fresh


def plan_appointments(session: Session, clinic_id: int, changes: dict[int, AppointmentChange],
                      plan: ClinicPlan | None = None, rows: Sequence[Any] | None = None) -> dict[str, int]:
    """Bring the messages of the appointment rules in line with these appointments (in the caller's
    transaction). ``rows`` may give the appointments already read (``appointment_rows``). Returns counts:
    created, updated, cancelled."""
    counts = {"created": 0, "updated": 0, "cancelled": 0}
    if not changes:
        return counts
    plan = plan or ClinicPlan.load(session, clinic_id, kinds=APPOINTMENT_KINDS)
    if plan is None or not plan.rules:
        return counts
    table = Appointment.__table__  # type: ignore[attr-defined]
    session.flush()
    if rows is None:
        rows = []
        for chunk in _chunks(sorted(changes), chunk_size(session)):
            rows.extend(appointment_rows(session, among(session, table.c.id, chunk), table.c.clinic_id == clinic_id))
    appointments: dict[int, Any] = {a.id: a for a in rows if a.id in changes and a.clinic_id == clinic_id}
    wants, why_not = _wants(session, plan, changes, appointments)
    people = plan.people = People.load(session, [a.patient_id for a in appointments.values() if a.patient_id],
                                       [a.doctor_id for a in appointments.values()], into=plan.people)
    batch = _Batch(wants, why_not, people, *_stored(session, plan, list(appointments)))
    fresh = _apply(session, batch, build_rows(plan, people, wants), counts)
    counts["created"] = insert_count(session, fresh)
    return counts


def plan_many(session: Session, plan: ClinicPlan, rows: Sequence[Any], size: int = 5000) -> dict[str, int]:
    """``plan_appointments`` for many appointments (``appointment_rows``), in batches of ``size``, in the caller's
    transaction. Patients and the caches the rules need are read first; then, on PostgreSQL, the server's work on
    inserting one batch overlaps with building the next batch's rows: a single helper thread runs the inserts on
    the transaction's connection, and this thread touches the session only while the helper is idle (building
    rows reads nothing). Returns counts: created, updated, cancelled."""
    counts = {"created": 0, "updated": 0, "cancelled": 0}
    batches = [rows[i:i + size] for i in range(0, len(rows), size)]
    if not batches or not plan.rules:
        return counts
    assert plan.clinic.id is not None
    session.flush()
    plan.people = People.load(session, [a.patient_id for a in rows if a.patient_id], [a.doctor_id for a in rows],
                              into=plan.people)
    plan.status_role(session, "")  # warm the caches building rows would otherwise fill from the database
    if any((r.filters or {}).get("day_type") for r in plan.rules):
        for day in sorted({a.start_at.astimezone(plan.tz).date() for a in rows}):
            plan.day_type(session, day)
    connection = session.connection()
    at = now()
    # PostgreSQL inserts in its own process, so its work can overlap with ours; SQLite's executemany would only
    # compete with this thread for the interpreter (measured: no gain, more CPU).
    overlap = OVERLAP_INSERTS and connection.dialect.name == "postgresql"
    clinic_id = plan.clinic.id
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="messaging-insert") as helper:
        writing: concurrent.futures.Future[Any] | None = None
        try:
            stored = _stored(session, plan, [a.id for a in batches[0]])
            for k, batch in enumerate(batches):
                # while the helper inserts the previous batch: nothing here may use the session
                changes = {a.id: AppointmentChange() for a in batch}
                wants, why_not = _wants(None, plan, changes, {a.id: a for a in batch if a.clinic_id == clinic_id})
                desired = build_rows(plan, plan.people, wants)
                if writing is not None:
                    counts["created"] += writing.result()
                    writing = None
                fresh = _apply(session, _Batch(wants, why_not, plan.people, *stored), desired, counts)
                if k + 1 < len(batches):
                    stored = _stored(session, plan, [a.id for a in batches[k + 1]])
                session.flush()
                staged = _staged(fresh)
                if staged and overlap:
                    writing = helper.submit(_write, connection, staged, at, False)
                elif staged:
                    counts["created"] += _write(connection, staged, at, False)
            if writing is not None:
                counts["created"] += writing.result()
                writing = None
        finally:
            if writing is not None:  # an error here: let the insert finish before the caller rolls back
                concurrent.futures.wait([writing])
    return counts


@contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk planning: it would walk every object of the process again
    and again while a hundred thousand rows that stay alive are made (about 2 s of 11 in bench/reminders.py);
    they make no reference cycles, and it runs again right after."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


_REASONS = {
    "appointment_inactive": "the appointment was cancelled, deleted or taken off the book",
    "too_late": "it is too late: the appointment has started",
    "filtered": "the appointment no longer matches the rule",
    "status_changed": "the appointment's status changed again",
}


def _rewritable(m: Message) -> bool:
    if m.status == MessageStatus.queued:
        return True
    return (m.status in (MessageStatus.cancelled, MessageStatus.failed) and m.error_code in PLANNING_CODES
            and m.resolved_by is None)


def _rewrite(session: Session, old: Message, row: dict[str, Any]) -> bool:
    """Update a stored message that was not handed to a vendor yet to what is wanted now."""
    if not _rewritable(old):
        return False
    fields = ("address", "channel", "language", "planned_for", "expires_at", "recipient_name",
              "set_communication_status")
    changed = {f: row[f] for f in fields if getattr(old, f) != row[f]}
    new_status = row["status"]
    if not changed and old.status == new_status and old.error_code == row["error_code"]:
        return False
    if old.body and render.written_at_send(old.kind):  # written for a send that failed: write it again
        changed.update(subject="", body="", length=0, segments=0, encoding="")
    values: dict[str, Any] = {**changed, "updated_at": now()}
    if new_status != MessageStatus.queued:
        values.update(status=new_status, error_code=row["error_code"], reason=row["reason"],
                      finished_at=row["finished_at"], outbox_item_id=None)
        retire_item(session, old.outbox_item_id, "message no longer sendable")
    elif old.status != MessageStatus.queued:  # back from cancelled / failed at planning
        values.update(status=MessageStatus.queued, error_code=None, reason=None, finished_at=None,
                      outbox_item_id=requeue(session, old, row["planned_for"]))
    elif "planned_for" in changed and old.outbox_item_id is not None:
        session.execute(update(OutboxItem).where(OutboxItem.id == old.outbox_item_id,
                                                 OutboxItem.status == OutboxStatus.pending)
                        .values(available_at=row["planned_for"]).execution_options(synchronize_session=False))
    result = session.execute(update(Message).where(Message.id == old.id, Message.status == old.status)
                             .values(**values).returning(col(Message.id))
                             .execution_options(synchronize_session=False)).first()
    if result is None:
        return False
    for name, value in values.items():
        setattr(old, name, value)
    return True


def cancel_open(session: Session, m: Message, code: str, reason: str) -> bool:
    """Cancel a message that is still only queued (a message being sent is past recall)."""
    if m.status != MessageStatus.queued:
        return False
    at = now()
    done = session.execute(
        update(Message).where(Message.id == m.id, Message.status == MessageStatus.queued)
        .values(status=MessageStatus.cancelled, error_code=code, reason=reason[:1000], finished_at=at,
                updated_at=at, outbox_item_id=None)
        .returning(col(Message.id)).execution_options(synchronize_session=False)
    ).first()
    if done is None:
        return False
    retire_item(session, m.outbox_item_id, f"message cancelled: {reason}")
    m.status, m.error_code, m.reason, m.outbox_item_id = MessageStatus.cancelled, code, reason, None
    return True


# --- date-based rules ----------------------------------------------------------------------------------


def _local_day_range(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return local_at(day, time(0), tz), local_at(day + timedelta(days=1), time(0), tz)


def _service_codes(services: Any) -> set[str]:
    codes = set()
    for s in services or []:
        if isinstance(s, str):
            codes.add(s)
        elif isinstance(s, dict) and s.get("code"):
            codes.add(str(s["code"]))
    return codes


def daily_wants(session: Session, plan: ClinicPlan, day: date) -> list[Want]:
    wants: list[Want] = []
    tz = plan.tz
    day_end = _local_day_range(day, tz)[1]
    done_codes: list[str] | None = None
    for rule in plan.rules:
        params = rule.params or {}
        at = local_at(day, parse_hhmm(params.get("at")), tz)
        base = {"kind": rule.kind, "planned_for": at, "rule": rule, "expires_at": day_end, "channel": rule.channel,
                "template_code": rule.template_code, "prefix": f"r{rule.id}"}
        if rule.kind == RuleKind.birthday:
            target = day + timedelta(days=int(params.get("days_before", 0)))
            pairs = [(target.month, target.day)]
            if target.month == 2 and target.day == 28 and not _leap(target.year):
                pairs.append((2, 29))
            for month, dom in pairs:
                rows = session.exec(select(Patient.id).where(
                    Patient.clinic_id == plan.clinic.id, Patient.status == PatientStatus.active,
                    extract("month", col(Patient.birth_date)) == month, extract("day", col(Patient.birth_date)) == dom,
                )).all()
                wants += [Want(occurrence=f"bday{target.year}", patient_id=pid, **base) for pid in rows]
            continue
        if done_codes is None:
            from core.scheduling.options import Options

            assert plan.clinic.id is not None
            done_codes = [o.code for o in Options(session, plan.clinic.id).lists["status"] if _done_like(o.role)]
        if rule.kind == RuleKind.after_services:
            source = day - timedelta(days=int(params.get("days", 1)))
            first, last = _local_day_range(source, tz)
            wanted = set(params.get("services") or [])
            for appt in session.exec(select(Appointment).where(
                    Appointment.clinic_id == plan.clinic.id, col(Appointment.start_at) >= first,
                    col(Appointment.start_at) < last, col(Appointment.status).in_(done_codes),
                    col(Appointment.deleted_at).is_(None), col(Appointment.patient_id).is_not(None))).all():
                if wanted & _service_codes(appt.services):
                    wants.append(Want(occurrence=f"a{appt.id}", patient_id=appt.patient_id, **base))
        elif rule.kind == RuleKind.recall:
            months = int(params.get("months", 6))
            types = list(params.get("type_codes") or [])
            source = day - relativedelta(months=months)
            first = _local_day_range(source - timedelta(days=3), tz)[0]
            last = _local_day_range(source, tz)[1]
            query = select(Appointment).where(
                Appointment.clinic_id == plan.clinic.id, col(Appointment.start_at) >= first,
                col(Appointment.start_at) < last, col(Appointment.status).in_(done_codes),
                col(Appointment.deleted_at).is_(None), col(Appointment.patient_id).is_not(None))
            if types:
                query = query.where(col(Appointment.type_code).in_(types))
            visits = [a for a in session.exec(query).all()
                      if a.start_at.astimezone(tz).date() + relativedelta(months=months) == day]
            for visit in visits:
                later = select(Appointment.id).where(
                    Appointment.patient_id == visit.patient_id, col(Appointment.start_at) > visit.start_at,
                    col(Appointment.deleted_at).is_(None),
                    or_(col(Appointment.status).in_(done_codes), Appointment.active == True))  # noqa: E712
                if types:
                    later = later.where(col(Appointment.type_code).in_(types))
                if session.exec(later.limit(1)).first() is not None:
                    continue  # a later visit, or one already booked: no recall
                wants.append(Want(occurrence=f"recall:a{visit.id}", patient_id=visit.patient_id, **base))
    return wants


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def plan_daily(session: Session, clinic_id: int, day: date, rule_ids: Iterable[int] | None = None) -> int:
    """Plan the birthday, recall and after-services messages of ``day`` (clinic date). Returns messages made."""
    plan = ClinicPlan.load(session, clinic_id, kinds=DAILY_KINDS, rule_ids=rule_ids)
    if plan is None or not plan.rules:
        return 0
    wants = daily_wants(session, plan, day)
    people = People.load(session, [w.patient_id for w in wants if w.patient_id])
    return insert_count(session, build_rows(plan, people, wants))


# --- events and manual sendings ------------------------------------------------------------------------


def event_rows(session: Session, clinic_id: int, name: str, *, patient_id: uuid.UUID | None, event_id: str,
               occurred_at: datetime | None = None, data: dict[str, Any] | None = None,
               appointment_id: int | None = None) -> list[dict[str, Any]]:
    """The messages (rows without text) of the rules listening to event ``name`` for one patient or appointment
    of the clinic; the caller writes their texts and inserts them (``insert_new``). Raises ValueError for a
    patient or appointment of another clinic."""
    plan = ClinicPlan.load(session, clinic_id, kinds=[RuleKind.event])
    if plan is None:
        return []
    rules = [r for r in plan.rules if (r.params or {}).get("event") == name]
    if not rules:
        return []
    appt = session.get(Appointment, appointment_id) if appointment_id is not None else None
    if appointment_id is not None and (appt is None or appt.clinic_id != clinic_id):
        raise ValueError(f"appointment {appointment_id} is not an appointment of this clinic")
    if patient_id is None and appt is not None:
        patient_id = appt.patient_id
    if patient_id is not None:
        owner = session.exec(select(Patient.clinic_id).where(Patient.id == patient_id)).first()
        if owner != clinic_id:
            raise ValueError(f"patient {patient_id} is not a patient of this clinic")
    elif appt is None:
        raise ValueError("the event names neither a patient nor an appointment")
    at = occurred_at or plan.now
    wants = [Want(prefix=f"r{r.id}", occurrence=f"e{event_id}"[:80], kind=r.kind, rule=r, patient_id=patient_id,
                  appointment=appt,
                  planned_for=at + timedelta(minutes=int((r.params or {}).get("delay_minutes", 0))),
                  channel=r.channel, template_code=r.template_code, data=dict(data or {}))
             for r in rules]
    people = People.load(session, [patient_id] if patient_id else [], [appt.doctor_id] if appt is not None else [])
    return build_rows(plan, people, wants)


def plan_manual(session: Session, plan: ClinicPlan, batch_id: uuid.UUID, patient_ids: Sequence[uuid.UUID], *,
                channel: str, template_code: str | None, body: str | None, subject: str | None,
                planned_for: datetime | None = None) -> list[dict[str, Any]]:
    wants = [Want(prefix=f"b{batch_id}", occurrence="m", kind="manual", patient_id=pid,
                  planned_for=planned_for or plan.now, channel=channel, template_code=template_code, body=body,
                  subject=subject, batch_id=batch_id) for pid in patient_ids]
    people = People.load(session, patient_ids)
    return insert_new(session, build_rows(plan, people, wants))
