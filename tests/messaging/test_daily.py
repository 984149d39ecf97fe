"""Date-based rules: birthdays, recalls and messages N days after services, planned by the clinic's daily run
(a core outbox item that queues the next day's run before it works), once per occurrence."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session, select

from core.db import transaction
from core.messaging import planner
from core.models.messaging import MessageStatus
from core.models.outbox import OutboxItem
from core.scheduling import appointments
from tests.messaging.conftest import BOSS

MONDAY = date(2026, 1, 5)


def _daily_items(env):
    with Session(env.praxis.engine) as session:
        return sorted((i.payload["day"], i.status) for i in session.exec(
            select(OutboxItem).where(OutboxItem.topic == "core.messaging.daily")).all())


def test_birthday_greetings_on_the_day_and_days_before_once_each(env):
    env.template("bday", "Boldog születésnapot, {given_name}!")
    env.template("soon", "{given_name}, holnap ünnepel!")
    env.patient("Kovács", "Anna", birth=date(1990, 1, 6))  # tomorrow
    env.patient("Szabó", "Béla", phone="+36 20 555 1234", birth=date(1985, 1, 5))  # today
    env.patient("Tóth", "Ida", phone="+36 70 555 1234", birth=date(1970, 7, 1))
    env.rule("birthday", {"at": "10:00"}, template_code="bday")  # plans today's at once
    env.rule("birthday", {"at": "18:00", "days_before": 1}, template_code="soon")
    assert _daily_items(env) == [("2026-01-06", "pending")]
    env.run()
    assert env.vendor.sms() == []  # Béla's greeting is due at 10:00
    env.travel(env.local(MONDAY, 10, 0))
    env.run()
    env.travel(env.local(MONDAY, 18, 0))
    env.run()
    env.travel(env.local(MONDAY + timedelta(days=1), 10, 0))
    env.run()
    env.run()
    assert [s["text"] for s in env.vendor.sms()] == [
        "Boldog születésnapot, Béla!", "Anna, holnap ünnepel!", "Boldog születésnapot, Anna!"]
    assert _daily_items(env) == [("2026-01-06", "done"), ("2026-01-07", "pending")]
    # the same day planned again (a second worker, a restarted run): nothing new
    with transaction(env.praxis.engine) as session:
        assert planner.plan_daily(session, env.clinic_id, MONDAY + timedelta(days=1)) == 0


def test_february_29_birthdays_are_greeted_on_february_28_in_common_years(env):
    env.template("bday", "Isten éltessen, {given_name}!")
    env.rule("birthday", {"at": "10:00"}, template_code="bday")
    leap = env.patient("Kovács", "Léna", birth=date(2000, 2, 29))
    with transaction(env.praxis.engine) as session:
        assert planner.plan_daily(session, env.clinic_id, date(2026, 2, 28)) == 1
        assert planner.plan_daily(session, env.clinic_id, date(2026, 3, 1)) == 0
    [message] = env.messages(patient_id=leap)
    assert message.planned_for == env.local(date(2026, 2, 28), 10, 0)


def _visit(env, patient, when, **extra):
    appt = env.book(when, patient, **extra)
    return appointments.set_status(env.praxis, env.clinic_id, appt["id"], BOSS, status="done", overbook=True)


def test_recall_after_the_last_visit_unless_one_is_booked(env):
    env.template("recall", "{given_name}, ideje a kontrollnak! {link}")
    anna = env.patient("Kovács", "Anna")
    bela = env.patient("Szabó", "Béla", phone="+36 20 555 1234")
    cili = env.patient("Kiss", "Cili", phone="+36 70 555 1234")
    six_months_ago = date(2025, 7, 5)
    _visit(env, anna, env.local(six_months_ago, 10, 0), type_code="hygiene")
    _visit(env, bela, env.local(six_months_ago, 11, 0), type_code="hygiene")
    env.book(env.local(MONDAY + timedelta(days=20), 10, 0), bela, type_code="hygiene")  # already booked again
    _visit(env, cili, env.local(six_months_ago, 12, 0), type_code="treatment")  # another type
    env.rule("recall", {"months": 6, "type_codes": ["hygiene"], "at": "11:00", "link": "https://example.org/book"},
             template_code="recall")
    [message] = env.messages()
    assert message.patient_id == anna and message.planned_for == env.local(MONDAY, 11, 0)
    env.travel(env.local(MONDAY, 11, 0))
    env.run()
    assert [s["text"] for s in env.vendor.sms()] == ["Anna, ideje a kontrollnak! https://example.org/book"]


def test_n_days_after_given_services(env):
    env.template("care", "{given_name}, hogy van a kezelés után?")
    anna = env.patient("Kovács", "Anna")
    bela = env.patient("Szabó", "Béla", phone="+36 20 555 1234")
    two_weeks_ago = MONDAY - timedelta(days=14)
    _visit(env, anna, env.local(two_weeks_ago, 10, 0), services=["X01", {"code": "X02", "qty": 1}])
    _visit(env, bela, env.local(two_weeks_ago, 11, 0), services=["Y99"])
    env.rule("after_services", {"days": 14, "services": ["X02"], "at": "09:30"}, template_code="care")
    env.run()
    assert env.vendor.sms() == []
    env.travel(env.local(MONDAY, 9, 30))
    env.run()
    assert [(s["to"], s["text"]) for s in env.vendor.sms()] == [("+36301234567", "Anna, hogy van a kezelés után?")]
    assert {m.status for m in env.messages()} == {MessageStatus.sent}


def test_status_change_and_post_treatment_rules(env):
    env.template("review", "Köszönjük, hogy nálunk járt, {given_name}! {link}")
    env.template("aftercare", "{given_name}: 2 óráig ne egyen.")
    env.rule("status_changed", {"status": "done", "delay_minutes": 180, "link": "https://example.org/review"},
             template_code="review")
    env.rule("post_treatment", {"type_codes": ["treatment"]}, template_code="aftercare")
    anna = env.patient()
    appt = env.book(env.local(MONDAY, 9, 30), anna, type_code="treatment")
    hygiene = env.book(env.local(MONDAY, 11, 0), env.patient("Szabó", "Béla", phone="+36 20 555 1234"),
                       type_code="hygiene")
    assert env.messages() == []
    appointments.set_status(env.praxis, env.clinic_id, appt["id"], BOSS, status="done", overbook=True)
    appointments.set_status(env.praxis, env.clinic_id, hygiene["id"], BOSS, status="done", overbook=True)
    env.run()
    assert [s["text"] for s in env.vendor.sms()] == ["Anna: 2 óráig ne egyen."]
    env.advance(hours=3)
    env.run()
    assert sorted(s["text"] for s in env.vendor.sms())[1:] == [
        "Köszönjük, hogy nálunk járt, Anna! https://example.org/review",
        "Köszönjük, hogy nálunk járt, Béla! https://example.org/review"]
