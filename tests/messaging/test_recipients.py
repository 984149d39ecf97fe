"""Who gets a message and when: quiet hours, opt-outs, guardians of minors, channels, bad addresses."""

from __future__ import annotations

from datetime import date, time, timedelta

from core.messaging import service
from core.messaging.schemas import OptOutsIn, QuietHoursIn
from core.models.messaging import MessageStatus
from tests.messaging.conftest import ACTOR

MONDAY = date(2026, 1, 5)


def test_quiet_hours_move_a_message_to_their_end(env):
    service.set_quiet_hours(env.praxis, env.clinic_id, QuietHoursIn(enabled=True, start=time(21), end=time(8, 30)),
                            ACTOR)
    env.template("reminder", "{time}")
    env.rule("days_before", {"days": 1, "at": "22:15"})
    anna = env.patient()
    env.book(env.local(MONDAY + timedelta(days=2), 11, 0), anna)
    [message] = env.messages()
    assert message.planned_for == env.local(MONDAY + timedelta(days=2), 8, 30)  # not Tuesday 22:15
    env.travel(env.local(MONDAY + timedelta(days=1), 22, 15))
    env.run()
    assert env.vendor.sms() == []
    env.travel(env.local(MONDAY + timedelta(days=2), 8, 30))
    env.run()
    assert len(env.vendor.sms()) == 1


def test_quiet_hours_that_last_past_the_appointment_cancel_the_reminder(env):
    service.set_quiet_hours(env.praxis, env.clinic_id, QuietHoursIn(enabled=True, start=time(21), end=time(9)),
                            ACTOR)
    env.template("reminder", "{time}")
    env.rule("minutes_before", {"minutes": 120})
    anna = env.patient()
    env.book(env.local(MONDAY + timedelta(days=1), 8, 30), anna)  # reminder due at 06:30, inside quiet hours
    [message] = env.messages()
    assert message.status == MessageStatus.cancelled and message.error_code == "too_late"
    assert "quiet hours" in message.reason


def test_a_message_that_becomes_due_in_quiet_hours_waits_at_send_time(env):
    env.template("reminder", "{time}")
    env.rule("minutes_before", {"minutes": 60})
    anna = env.patient()
    env.book(env.local(MONDAY + timedelta(days=1), 23, 0), anna)  # due 22:00
    service.set_quiet_hours(env.praxis, env.clinic_id, QuietHoursIn(enabled=True, start=time(21, 30), end=time(7)),
                            ACTOR)
    env.travel(env.local(MONDAY + timedelta(days=1), 22, 0))
    env.run()
    [message] = env.messages()
    assert env.vendor.sms() == [] and message.status == MessageStatus.queued
    assert message.planned_for == env.local(MONDAY + timedelta(days=2), 7, 0)
    env.travel(message.planned_for)
    env.run()
    assert env.message(message.id).status == MessageStatus.failed  # the appointment had started
    assert env.message(message.id).error_code == "expired"
    assert env.vendor.sms() == []


def test_opt_out_cancels_planned_messages_and_the_other_channel_is_used(env):
    env.template("reminder", "{time}", channel="sms")
    env.template("reminder", "{time}", channel="email", subject="Emlékeztető: {date}")
    env.rule("days_before", {"days": 1, "at": "12:00"})
    anna = env.patient(email="anna@example.org")
    env.book(env.local(MONDAY + timedelta(days=2), 10, 0), anna)
    [message] = env.messages()
    assert message.channel == "sms"
    service.set_opt_outs(env.praxis, env.clinic_id, anna, OptOutsIn(channels=["sms"], note="asked by phone"), ACTOR)
    [message] = env.messages()
    assert message.status == MessageStatus.cancelled and message.error_code == "opted_out"
    # the next booking falls back to e-mail
    env.book(env.local(MONDAY + timedelta(days=3), 10, 0), anna)
    email = env.messages(status=MessageStatus.queued)[0]
    assert email.channel == "email" and email.address == "anna@example.org"
    shown = service.get_message(env.praxis, env.clinic_id, email.id)  # written when it goes out; a preview now
    assert email.subject == "" and not shown["text_final"] and shown["subject"] == "Emlékeztető: 2026. január 8."
    service.set_opt_outs(env.praxis, env.clinic_id, anna, OptOutsIn(channels=["sms", "email"]), ACTOR)
    env.book(env.local(MONDAY + timedelta(days=4), 10, 0), anna)
    env.travel(env.local(MONDAY + timedelta(days=4), 12, 0))
    env.run()
    assert env.vendor.effects == []
    assert {m.status for m in env.messages()} == {MessageStatus.cancelled}


def test_minors_are_reached_through_each_guardian_once(env):
    env.template("reminder", "{recipient_name}: {patient_name} holnap {time}")
    env.rule("days_before", {"days": 1, "at": "12:00"})
    child = env.patient("Kiss", "Peti", phone=None, birth=date(2015, 3, 1), guardians=[
        {"name": "Kiss Éva", "relation": "mother", "phone": "+36 30 111 2222"},
        {"name": "Kiss Ádám", "relation": "father", "phone": "+36 30 333 4444"}])
    adult = env.patient("Kiss", "Judit", phone="+36 30 999 8888", birth=date(2007, 1, 5), guardians=[
        {"name": "Kiss Éva", "relation": "mother", "phone": "+36 30 111 2222"}])  # 19 today
    env.book(env.local(MONDAY + timedelta(days=2), 10, 0), child)
    env.book(env.local(MONDAY + timedelta(days=2), 11, 0), adult)
    env.travel(env.local(MONDAY + timedelta(days=1), 12, 0))
    env.run()
    env.run()
    got = sorted((s["to"], s["text"]) for s in env.vendor.sms())
    assert got == [("+36301112222", "Kiss Éva: Kiss Peti holnap 10:00"),
                   ("+36303334444", "Kiss Ádám: Kiss Peti holnap 10:00"),
                   ("+36309998888", "Kiss Judit: Kiss Judit holnap 11:00")]
    assert {m.recipient_kind for m in env.messages(patient_id=child)} == {"guardian"}


def test_an_invalid_phone_number_fails_with_a_clear_reason_and_is_never_retried(env):
    from sqlmodel import Session, select

    from core.models.outbox import OutboxItem

    env.template("reminder", "{time}")
    env.rule("on_booking", {})
    # a phone booking for a new patient: the number only has to look possible at the desk
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), new_patient_name="Új Páciens",
             new_patient_phone="+36 99 123 4567")
    landline = env.patient(phone="+36 1 234 5678")
    env.book(env.local(MONDAY + timedelta(days=1), 11, 0), landline)
    invalid, fixed_line = sorted(env.messages(), key=lambda m: m.appointment_id)
    assert invalid.status == MessageStatus.failed and invalid.error_code == "invalid_address"
    assert invalid.reason == "the phone number +36991234567 is not a valid number (HU)"
    assert fixed_line.status == MessageStatus.failed and fixed_line.error_code == "invalid_address"
    assert "landline" in fixed_line.reason
    env.run()
    assert env.vendor.requests == []
    with Session(env.praxis.engine) as session:
        assert session.exec(select(OutboxItem).where(OutboxItem.topic == "core.message.send")).all() == []


def test_a_number_the_vendor_refuses_is_a_permanent_failure_with_the_vendors_code(env):
    env.template("reminder", "{time}")
    env.rule("on_booking", {})
    anna = env.patient()
    env.vendor.invalid_numbers.add("+36301234567")
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), anna)
    env.run()
    [message] = env.messages()
    assert message.status == MessageStatus.failed and message.error_code == "7"
    assert "cannot receive SMS" in message.reason
    env.advance(days=1)
    env.run()
    assert len(env.vendor.requests) == 1


def test_patients_preferring_email_get_email_and_without_address_fall_back(env):
    env.template("reminder", "{time}")
    env.rule("on_booking", {})
    mailer = env.patient("Tóth", "Ida", email="ida@example.org", channel="email")
    no_email = env.patient("Tóth", "Ede", channel="email")  # only a phone: SMS instead
    nobody = env.patient("Tóth", "Imre", phone=None)
    silent = env.patient("Tóth", "Ilona", channel="none")
    for i, who in enumerate((mailer, no_email, nobody, silent)):
        env.book(env.local(MONDAY + timedelta(days=1), 10 + i, 0), who)
    env.run()
    assert [(e["channel"], e["to"]) for e in sorted(env.vendor.effects, key=lambda e: e["to"])] == [
        ("sms", "+36301234567"), ("email", "ida@example.org")]
    [failed] = env.messages(patient_id=nobody)
    assert failed.status == MessageStatus.failed and failed.error_code == "no_address"
    assert env.messages(patient_id=silent) == []
