"""Planning many appointments at once (a new rule over the clinic's book) goes through the bulk writers: plain
statements on SQLite, unnest or COPY on PostgreSQL. What they write must read back through the ORM exactly like
what the ORM would write, dedupe keys must hold, and every sendable message gets one outbox item."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, insert
from sqlmodel import Session, select

from core.db import transaction
from core.messaging import planner, service
from core.messaging.schemas import OptOutsIn, RulePatch
from core.models.appointment import Appointment
from core.models.clinic import Clinic
from core.models.messaging import Message, MessageStatus, MessageTemplate
from core.models.outbox import OutboxItem
from core.models.patient import Patient, PatientPhone
from tests.messaging.conftest import ACTOR

MONDAY = date(2026, 1, 5)


def _fill(env, patients: int, appointments: int, first: date = MONDAY + timedelta(days=2)) -> list[uuid.UUID]:
    """Patients with mobile numbers (every 7th a landline: it fails at planning) and appointments, bulk-inserted."""
    at = env.clock.now
    ids = [uuid.uuid4() for _ in range(patients)]
    people = [{"id": pid, "clinic_id": env.clinic_id, "chart_number": f"B{i:05d}", "family_name": f"Teszt{i}",
               "given_name": "Anna", "name_key": f"teszt{i} anna", "birth_date": date(1980, 1, 1), "sex": "female",
               "address": "", "preferred_channel": "sms", "vip": False, "notes": "", "tags": [], "status": "active",
               "created_at": at, "updated_at": at, "version": 1} for i, pid in enumerate(ids)]
    phones = [{"id": uuid.uuid4(), "clinic_id": env.clinic_id, "patient_id": pid, "position": 0, "kind": "mobile",
               "e164": f"+361{2000000 + i:07d}" if i % 7 == 0 else f"+3630{1000000 + i:07d}",
               "digits": f"3630{1000000 + i:07d}"} for i, pid in enumerate(ids)]
    start = env.local(first, 8, 0)
    appts = [{"clinic_id": env.clinic_id, "patient_id": ids[i % patients], "doctor_id": env.doctor_id,
              "start_at": start + timedelta(minutes=15 * i), "end_at": start + timedelta(minutes=15 * i + 15),
              "services": [], "notes": "", "status": "booked", "status_changed_at": at, "is_new_patient": False,
              "cancel_note": "", "delete_reason": "", "pin_note": "", "overbooked": True, "active": True,
              "version": 1, "created_at": at, "updated_at": at} for i in range(appointments)]
    with transaction(env.praxis.engine) as session:
        for table, rows in ((Patient, people), (PatientPhone, phones), (Appointment, appts)):
            if rows:
                session.execute(insert(table), rows)
    return ids


@pytest.mark.parametrize("copy_from", [planner.COPY_FROM, 50])
def test_a_new_rule_plans_the_whole_book_in_bulk(env, monkeypatch, copy_from):
    monkeypatch.setattr(planner, "COPY_FROM", copy_from)  # PostgreSQL: arrays, or COPY from 50 rows on
    monkeypatch.setattr(planner, "INSERT_CHUNK", 120)
    monkeypatch.setattr(service, "PLAN_CHUNK", 250)
    ids = _fill(env, 70, 400)
    service.set_opt_outs(env.praxis, env.clinic_id, ids[1], OptOutsIn(channels=["sms", "email"]), ACTOR)
    env.template("reminder", "{given_name} {time}")
    rule = env.rule("days_before", {"days": 1, "at": "18:00"})
    assert rule["planned"] == {"created": 400, "updated": 0, "cancelled": 0}
    messages = env.messages()
    assert len(messages) == 400 and len({m.dedupe_key for m in messages}) == 400
    by_status: dict[str, int] = {}
    for m in messages:
        by_status[m.status] = by_status.get(m.status, 0) + 1
    landlines = sum(1 for i in range(400) if (i % 70) % 7 == 0)
    opted_out = sum(1 for i in range(400) if i % 70 == 1)
    assert by_status == {MessageStatus.queued: 400 - landlines - opted_out, MessageStatus.failed: landlines,
                         MessageStatus.cancelled: opted_out}
    first = next(m for m in messages if m.status == MessageStatus.queued)
    assert first.planned_for == env.local(MONDAY + timedelta(days=1), 18, 0) and first.planned_for.tzinfo is UTC
    assert first.expires_at is not None and first.expires_at > first.planned_for
    assert first.idempotency_key == first.id.hex and first.id.version == 7 and first.kind == "days_before"
    assert first.created_at == env.clock.now and first.language == "hu" and first.attempts == 0
    failed = next(m for m in messages if m.status == MessageStatus.failed)
    assert failed.error_code == "invalid_address" and "landline" in (failed.reason or "")
    assert failed.finished_at == env.clock.now and failed.outbox_item_id is None
    with Session(env.praxis.engine) as session:
        items = {i.id: i for i in session.exec(select(OutboxItem).where(OutboxItem.topic == planner.SEND_TOPIC))}
    queued = [m for m in messages if m.status == MessageStatus.queued]
    assert len(items) == len(queued)
    for m in queued:
        item = items[m.outbox_item_id]
        assert item.payload == {"message_id": str(m.id), "channel": "sms"}
        assert (item.available_at, item.status, item.plugin, item.clinic_id, item.max_attempts) == (
            m.planned_for, "pending", "core", env.clinic_id, planner.SEND_MAX_ATTEMPTS)
    # planned again (the rule edited): nothing new, every message re-timed, its outbox item with it
    service.update_rule(env.praxis, env.clinic_id, rule["id"], RulePatch(params={"days": 1, "at": "17:00"}), ACTOR)
    again = env.messages(status=MessageStatus.queued)
    assert len(again) == len(queued) and len(env.messages()) == 400
    assert {m.planned_for.astimezone(env.tz).time().hour for m in again} == {17}
    with Session(env.praxis.engine) as session:
        assert session.exec(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.topic == planner.SEND_TOPIC, OutboxItem.status == "pending")).one() == len(queued)
    env.travel(first.planned_for.replace(hour=16))  # 17:00 Budapest
    env.run(rounds=60)
    assert len(env.vendor.sms()) == sum(1 for m in again if m.planned_for <= env.clock.now)


def test_a_failing_insert_rolls_the_whole_planning_back(env, monkeypatch):
    monkeypatch.setattr(service, "PLAN_CHUNK", 100)
    _fill(env, 20, 300)
    env.template("reminder", "{given_name} {time}")
    written = []
    real = planner._write

    def flaky(connection, rows, at, want_rows):  # the second batch's insert fails (on PostgreSQL in the helper)
        if written:
            raise RuntimeError("disk full")
        written.append(len(rows))
        return real(connection, rows, at, want_rows)

    monkeypatch.setattr(planner, "_write", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        env.rule("days_before", {"days": 1, "at": "18:00"}, name="Day before")
    assert written == [100] and env.messages() == []
    assert service.list_rules(env.praxis, env.clinic_id) == []
    with Session(env.praxis.engine) as session:
        assert session.exec(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.topic == planner.SEND_TOPIC)).one() == 0


@pytest.mark.parametrize("count", [3, 60])
def test_rows_whose_dedupe_key_is_taken_are_skipped_and_get_no_outbox_item(env, monkeypatch, count):
    monkeypatch.setattr(planner, "COPY_FROM", 50)
    ids = _fill(env, count, 0)
    env.template("reminder", "{given_name}")
    with transaction(env.praxis.engine) as session:
        clinic = session.get(Clinic, env.clinic_id)
        assert clinic is not None
        plan = planner.ClinicPlan.build(session, clinic, [])
        plan.templates = {"reminder": list(session.exec(select(MessageTemplate)).all())}
        wants = [planner.Want(prefix="x", occurrence="o", kind="manual", planned_for=env.clock.now, patient_id=p,
                              channel="sms", template_code="reminder") for p in ids]
        people = planner.People.load(session, ids)
        first = planner.build_rows(plan, people, wants[: count // 2])
        assert len(planner.insert_new(session, first)) == len(first)
        rows = planner.build_rows(plan, people, wants + wants[-1:])  # the first half again, and a doubled want
        fresh = planner.insert_new(session, rows)
        assert {r["patient_id"] for r in fresh} == set(ids[count // 2:])
        assert planner.insert_count(session, planner.build_rows(plan, people, wants)) == 0
    with Session(env.praxis.engine) as session:
        assert session.exec(select(func.count()).select_from(Message)).one() == count
        queued = session.exec(select(func.count()).select_from(Message).where(Message.status == "queued")).one()
        assert queued == count - len(range(0, count, 7))  # landlines fail at planning
        assert session.exec(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.topic == planner.SEND_TOPIC)).one() == queued


def test_the_sqlite_datetime_text_is_sqlalchemys():
    from sqlalchemy.dialects import sqlite

    stored = Message.__table__.c.planned_for.type._cached_bind_processor(sqlite.dialect())  # type: ignore[attr-defined]
    for value in (datetime(2026, 1, 5, 8, 0, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, 5, 17, tzinfo=UTC),
                  datetime(2026, 10, 25, 2, 30, tzinfo=UTC).astimezone(datetime.now(UTC).astimezone().tzinfo)):
        assert planner._sqlite_datetime(value) == stored(value)
    with pytest.raises(ValueError):
        planner._sqlite_datetime(datetime(2026, 1, 5))  # noqa: DTZ001 - a naive datetime is refused


def test_a_booking_in_a_clinic_without_appointment_rules_costs_messaging_one_query(env):
    from sqlalchemy import event

    env.template("greeting", "{given_name}")
    env.rule("birthday", {"at": "10:00"}, template_code="greeting")  # a rule, but not about appointments
    appt = env.book(env.local(MONDAY + timedelta(days=1), 10, 0), env.patient())
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    with transaction(env.praxis.engine) as session:
        session.connection()  # the transaction's own BEGIN is not messaging's
        event.listen(env.praxis.engine, "before_cursor_execute", seen)
        try:
            counts = planner.plan_appointments(session, env.clinic_id, {appt["id"]: planner.AppointmentChange(
                created=True)})
        finally:
            event.remove(env.praxis.engine, "before_cursor_execute", seen)
    assert counts == {"created": 0, "updated": 0, "cancelled": 0}
    assert len(statements) == 1 and "FROM core_message_rule" in statements[0]


def test_bulk_planning_filters_by_day_type_like_planning_one_booking(env, monkeypatch):
    monkeypatch.setattr(service, "PLAN_CHUNK", 40)
    _fill(env, 10, 500, date(2026, 4, 30))  # every 15 minutes from 30 April 8:00 on: over 1 May, a holiday
    env.template("reminder", "{time}")
    rule = env.rule("minutes_before", {"minutes": 45}, filters={"day_type": "holiday"})
    env.rule("post_treatment", {}, name="after")  # needs the statuses' roles: read before rows are built
    with Session(env.praxis.engine) as session:
        plan = planner.ClinicPlan.load(session, env.clinic_id)
        assert plan is not None
        rows = planner.appointment_rows(session, Appointment.clinic_id == env.clinic_id)
        holidays = {a.id for a in rows if plan.day_type(session, a.start_at.astimezone(env.tz).date()) == "holiday"}
    assert 0 < len(holidays) < 500
    assert {m.appointment_id for m in env.messages(rule_id=rule["id"])} == holidays
