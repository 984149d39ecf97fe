"""Appointment reminders end to end: book, advance the clock, run the worker, look at the fake vendor."""

from __future__ import annotations

from datetime import date, timedelta

from core.messaging import service
from core.models.messaging import MessageStatus

MONDAY = date(2026, 1, 5)


def test_day_before_reminder_reaches_the_vendor_once_at_the_planned_time(env):
    env.template("reminder", "Kedves {patient_name}! Emlékeztető: {date} {time}, {doctor}, {clinic}.")
    env.rule("days_before", {"days": 1, "at": "12:00"})
    anna = env.patient()
    appt = env.book(env.local(MONDAY + timedelta(days=2), 10, 30), anna)  # Wednesday 10:30

    [message] = env.messages()
    assert message.status == MessageStatus.queued
    assert message.planned_for == env.local(MONDAY + timedelta(days=1), 12, 0)  # Tuesday 12:00 Budapest
    assert message.appointment_id == appt["id"]
    assert message.address == "+36301234567"

    env.run()
    assert env.vendor.sms() == []  # not due yet

    env.travel(env.local(MONDAY + timedelta(days=1), 11, 59))
    env.run()
    assert env.vendor.sms() == []
    env.travel(env.local(MONDAY + timedelta(days=1), 12, 0))
    env.run()
    [sms] = env.vendor.sms()
    assert sms["to"] == "+36301234567"
    assert sms["text"] == "Kedves Kovács Anna! Emlékeztető: 2026. január 7. 10:30, Dr. Nagy Péter, Budapest."
    sent = env.message(message.id)
    assert sent.status == MessageStatus.sent and sent.vendor_message_id == sms["id"]
    env.advance(hours=3)
    env.run()
    assert len(env.vendor.sms()) == 1


def test_each_rule_sends_exactly_its_messages_and_nothing_twice(env):
    env.template("reminder", "{given_name}, holnap {time}-kor várjuk.")
    env.template("soon", "{given_name}, egy óra múlva: {time}.")
    env.template("booked", "Időpont rögzítve: {date} {time}.")
    env.rule("days_before", {"days": 1, "at": "18:00"})
    env.rule("minutes_before", {"minutes": 60}, template_code="soon")
    env.rule("on_booking", {}, template_code="booked")
    anna = env.patient()
    bela = env.patient("Szabó", "Béla", phone="+36 20 555 1234")
    wednesday = MONDAY + timedelta(days=2)
    env.book(env.local(wednesday, 10, 0), anna)
    env.book(env.local(wednesday, 14, 0), bela)
    assert len(env.messages()) == 6

    env.run()  # the two confirmations go at once
    assert sorted(s["text"] for s in env.vendor.sms()) == [
        "Időpont rögzítve: 2026. január 7. 10:00.", "Időpont rögzítve: 2026. január 7. 14:00."]
    def new_texts():
        seen = len(new_texts.sent)
        new_texts.sent = [(s["to"], s["text"]) for s in env.vendor.sms()]
        return sorted(new_texts.sent[seen:])

    new_texts.sent = list(range(2))
    env.travel(env.local(MONDAY + timedelta(days=1), 17, 59))
    env.run()
    assert new_texts() == []
    env.travel(env.local(MONDAY + timedelta(days=1), 18, 0))
    env.run()
    assert new_texts() == [("+36205551234", "Béla, holnap 14:00-kor várjuk."),
                           ("+36301234567", "Anna, holnap 10:00-kor várjuk.")]
    env.travel(env.local(wednesday, 9, 0))
    env.run()
    assert new_texts() == [("+36301234567", "Anna, egy óra múlva: 10:00.")]
    env.travel(env.local(wednesday, 13, 0))
    env.run()
    assert new_texts() == [("+36205551234", "Béla, egy óra múlva: 14:00.")]
    env.travel(env.local(wednesday, 20, 0))
    env.run()
    assert new_texts() == []
    assert len({s["ref"] for s in env.vendor.sms()}) == 6
    assert {m.status for m in env.messages()} == {MessageStatus.sent}
    # planning again (a rule edited, a restarted worker) changes nothing
    from core.db import transaction
    from core.messaging import planner

    ids = {m.appointment_id for m in env.messages()}
    with transaction(env.praxis.engine) as session:
        counts = planner.plan_appointments(session, env.clinic_id,
                                           {i: planner.AppointmentChange(created=True) for i in ids})
    assert counts == {"created": 0, "updated": 0, "cancelled": 0}
    env.run()
    assert len(env.vendor.sms()) == 6


def test_moving_re_plans_and_cancelling_cancels_in_the_same_transaction(env):
    from sqlmodel import Session

    from core.models.outbox import OutboxItem
    from core.scheduling import appointments
    from tests.messaging.conftest import BOSS

    env.template("reminder", "{date} {time}")
    env.rule("days_before", {"days": 1, "at": "12:00"})
    anna = env.patient()
    appt = env.book(env.local(MONDAY + timedelta(days=2), 10, 0), anna)
    [first] = env.messages()
    moved = appointments.move(env.praxis, env.clinic_id, appt["id"], BOSS,
                              start_at=env.local(MONDAY + timedelta(days=3), 15, 0), overbook=True)
    [message] = env.messages()
    assert message.id == first.id and message.status == MessageStatus.queued
    assert message.planned_for == env.local(MONDAY + timedelta(days=2), 12, 0)
    shown = service.get_message(env.praxis, env.clinic_id, message.id)  # the text is written when it goes out
    assert message.body == "" and shown["body"] == "2026. január 8. 15:00" and shown["text_final"] is False
    with Session(env.praxis.engine) as session:
        item = session.get(OutboxItem, message.outbox_item_id)
        assert item is not None and item.available_at == message.planned_for

    appointments.cancel(env.praxis, env.clinic_id, appt["id"], BOSS, reason="patient_request",
                        version=moved["version"])
    [message] = env.messages()
    assert message.status == MessageStatus.cancelled and message.error_code == "appointment_inactive"
    env.travel(env.local(MONDAY + timedelta(days=2), 12, 0))
    env.run()
    assert env.vendor.sms() == []

    appointments.restore(env.praxis, env.clinic_id, appt["id"], BOSS, overbook=True)
    [message] = env.messages()
    assert message.status == MessageStatus.queued  # planned again: it is due now (12:00 passed)
    env.run()
    assert [s["text"] for s in env.vendor.sms()] == ["2026. január 8. 15:00"]


def test_a_booking_that_rolls_back_leaves_no_message(env):
    import pytest

    from core.scheduling import appointments
    from plugin_sdk.events import EventName
    from tests.messaging.conftest import BOSS

    env.template("reminder", "{time}")
    env.rule("on_booking", {})
    anna = env.patient()
    start = env.local(MONDAY + timedelta(days=1), 10, 0)
    with pytest.raises(RuntimeError), appointments.write(env.praxis) as session:
        book = appointments.Book(env.praxis, session, env.clinic_id, BOSS)
        appt, placement = book.create({"doctor_id": env.doctor_id, "start_at": start, "patient_id": anna,
                                       "end_at": start + timedelta(minutes=30)}, overbook=True)
        book.record(appt, "created", EventName.appointment_created, {}, placement)
        session.flush()
        raise RuntimeError("the transaction fails after the appointment was written")
    assert env.messages() == []
    env.book(start, anna)
    assert len(env.messages()) == 1  # committed together with the booking


def test_filters_doctor_type_day_type_and_created_today(env):
    from tests.auth_helpers import create_user

    env.template("reminder", "{time}")
    other_doctor = create_user(env.praxis, [env.clinic_id], role="doctor", name="Dr. Kiss")
    treatments = env.rule("minutes_before", {"minutes": 30}, name="treatments",
                          filters={"doctor_ids": [env.doctor_id], "type_codes": ["treatment"]})
    holidays = env.rule("minutes_before", {"minutes": 45}, filters={"day_type": "holiday"}, name="holidays")
    same_day = env.rule("minutes_before", {"minutes": 90}, filters={"created_today": True}, name="same day")
    anna = env.patient()
    tuesday = MONDAY + timedelta(days=1)
    treatment = env.book(env.local(tuesday, 10, 0), anna, type_code="treatment")
    env.book(env.local(tuesday, 11, 0), anna, type_code="hygiene")
    env.book(env.local(tuesday, 12, 0), anna, type_code="treatment", doctor_id=other_doctor)
    labour_day = env.book(env.local(date(2026, 5, 1), 10, 0), anna)  # a Friday, a public holiday in Hungary
    today = env.book(env.local(MONDAY, 15, 0), anna)  # reminded today, booked today
    got = sorted((m.rule_id, m.appointment_id) for m in env.messages())
    assert got == sorted([(treatments["id"], treatment["id"]), (holidays["id"], labour_day["id"]),
                          (same_day["id"], today["id"])])
