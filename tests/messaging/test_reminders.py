"""Appointment reminders end to end: book, advance the clock, run the worker, look at the fake vendor."""

from __future__ import annotations

from datetime import date, timedelta

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
