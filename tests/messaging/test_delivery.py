"""Delivery: crashes, lost leases, vendor outages and timeouts never lose or duplicate a message; undecided
outcomes go to a person; delivery reports by callback and by polling; replies confirm or cancel."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from core.api.app import create_app
from core.messaging import delivery, service
from core.messaging.schemas import ResolveIn
from core.models.appointment import AppointmentChange
from core.models.messaging import InboundReply, MessageStatus
from core.models.outbox import OutboxItem
from core.outbox.worker import Worker
from plugin_sdk.context import OutboxMessage
from tests.messaging.conftest import ACTOR, SECRET
from tests.messaging.plugins.fakesms import sign

MONDAY = date(2026, 1, 5)


def _three_due_messages(env):
    env.template("reminder", "{given_name} {time}")
    env.rule("on_booking", {})
    people = [env.patient("Kovács", name, phone=f"+36 30 123 45{i:02d}") for i, name in
              enumerate(("Anna", "Béla", "Cili"))]
    for i, who in enumerate(people):
        env.book(env.local(MONDAY + timedelta(days=1), 10 + i, 0), who)
    return people


def _as_message(item: OutboxItem) -> OutboxMessage:
    return OutboxMessage(id=item.id, topic=item.topic, clinic_id=item.clinic_id, payload=dict(item.payload),
                         attempt=item.attempts, idempotency_key=str(item.id), created_at=item.created_at)


class Died(BaseException):
    """The process died (not an Exception: nothing in the handler may catch it)."""


def test_a_worker_killed_after_the_vendor_accepted_duplicates_nothing(env, monkeypatch):
    _three_due_messages(env)
    first_worker = Worker(env.praxis, name="doomed", handler_timeout=5.0)
    items = first_worker.claim()
    assert len(items) == 3
    real_record = delivery._record

    def die(*args, **kwargs):
        raise Died("killed between the vendor's answer and the commit")

    monkeypatch.setattr(delivery, "_record", die)
    with pytest.raises(Died):
        delivery.send_message(env.praxis, _as_message(items[0]), "core")  # the vendor has it; nothing recorded
    monkeypatch.setattr(delivery, "_record", real_record)
    assert len(env.vendor.sms()) == 1
    # the other two were never started; nobody finishes the batch. Another worker after the lease:
    env.advance(seconds=first_worker.lease.total_seconds() + 1)
    env.run()
    assert sorted(s["to"] for s in env.vendor.sms()) == ["+36301234500", "+36301234501", "+36301234502"]
    assert {m.status for m in env.messages()} == {MessageStatus.sent}
    statuses = env.vendor.requests
    assert sum(1 for r in statuses if r.path == "/sms/status") == 1  # asked before resending the first one


def test_a_handler_crash_after_sending_is_checked_with_the_vendor_not_resent(env, monkeypatch):
    _three_due_messages(env)
    calls = {"n": 0}
    real_record = delivery._record

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(delivery, "_record", flaky)
    env.run()
    env.advance(hours=1)
    env.run()
    assert len(env.vendor.sms()) == 3
    assert {m.status for m in env.messages()} == {MessageStatus.sent}


def test_vendor_outage_then_recovery_delivers_everything_once(env):
    env.vendor.fail_next(8, status=503, path="/sms")
    _three_due_messages(env)
    for _ in range(40):
        env.run()
        if {m.status for m in env.messages()} == {MessageStatus.sent}:
            break
        env.advance(minutes=3)
    assert {m.status for m in env.messages()} == {MessageStatus.sent}
    assert sorted(s["to"] for s in env.vendor.sms()) == ["+36301234500", "+36301234501", "+36301234502"]
    failed_requests = [r for r in env.vendor.requests if r.fault]
    assert len(failed_requests) == 8
    # the circuit opened after repeated failures and its cooldown was waited out
    with Session(env.praxis.engine) as session:
        from core.models.plugin import PluginHealth

        health = session.exec(select(PluginHealth).where(PluginHealth.plugin == "fakesms")).one()
        assert health.total_failures >= 3 and not health.circuit_open


def test_a_timeout_after_the_vendor_acted_is_resolved_by_asking_it(env):
    env.template("reminder", "{time}")
    env.rule("on_booking", {})
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), env.patient())
    env.vendor.hang_next(1, after=True, path="/sms")  # the SMS goes out, the answer never comes
    env.run()
    env.vendor.release()
    [message] = env.messages()
    assert message.status == MessageStatus.sending and message.error_code == "unknown_outcome"
    assert len(env.vendor.sms()) == 1
    env.advance(seconds=61)
    env.run()
    [message] = env.messages()
    assert message.status == MessageStatus.sent and message.vendor_message_id == env.vendor.sms()[0]["id"]
    assert len(env.vendor.sms()) == 1


def test_a_timeout_the_vendor_cannot_explain_goes_to_a_person(env):
    env.template("reminder", "{time}")
    env.rule("on_booking", {})
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), env.patient())
    env.book(env.local(MONDAY + timedelta(days=1), 11, 0), env.patient("Szabó", "Béla", phone="+36 20 555 1234"))
    env.vendor.hang_next(2, path="/sms")  # the vendor never got them, but we cannot know
    env.run()
    env.vendor.release()
    env.advance(seconds=61)
    env.run()
    first, second = env.messages()
    assert first.status == second.status == MessageStatus.unknown
    assert "cannot tell whether the message was sent" in first.reason
    env.advance(hours=5)
    env.run()
    assert env.vendor.sms() == []  # nothing is resent by itself
    # a person decides: the first was not sent (send it again), the second is given up
    service.retry(env.praxis, env.clinic_id, first.id, ACTOR)
    service.resolve(env.praxis, env.clinic_id, second.id, ResolveIn(outcome="failed", note="called the patient"),
                    ACTOR)
    env.run()
    [sms] = env.vendor.sms()
    assert sms["ref"] == first.idempotency_key  # the same key: a deduplicating vendor would drop a copy
    assert env.message(first.id).status == MessageStatus.sent
    given_up = env.message(second.id)
    assert given_up.status == MessageStatus.failed and given_up.error_code == "given_up"
    assert given_up.reason == "given up by test (called the patient)"


def test_email_vendor_that_deduplicates_gets_the_same_key_again_after_a_timeout(env):
    env.template("reminder", "{time}", subject="Reminder")
    env.rule("on_booking", {}, channel="email")
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), env.patient(email="anna@example.org"))
    env.vendor.hang_next(1, after=True, path="/email")
    env.run()
    env.vendor.release()
    env.advance(minutes=5)
    env.run()
    [message] = env.messages()
    assert message.status == MessageStatus.sent
    assert len(env.vendor.effects) == 1
    keys = [r.headers.get("idempotency-key") for r in env.vendor.requests if r.path == "/email"]
    assert len(keys) == 2 and len(set(keys)) == 1


def test_without_a_provider_the_message_waits_and_goes_once_one_is_enabled(make_env, vendor):
    env = make_env(enable=False)
    env.template("reminder", "{time}")
    env.rule("on_booking", {})
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), env.patient())
    env.run()
    [message] = env.messages()
    assert message.status == MessageStatus.queued and message.reason == "waiting: no SMS provider enabled"
    env.praxis.plugins.enable(env.clinic_id, "fakesms", ACTOR)
    env.praxis.plugins.configure(env.clinic_id, "fakesms", {"endpoint": vendor.base_url, "secret": SECRET}, ACTOR)
    env.advance(minutes=10)
    env.run()
    assert env.message(message.id).status == MessageStatus.sent
    assert len(vendor.sms()) == 1


def _callback(env, payload, secret=SECRET, plugin="fakesms"):
    body = json.dumps(payload).encode()
    client = TestClient(create_app(env.praxis, start_worker=False))
    return client.post(f"/api/messaging/callbacks/{plugin}/{env.clinic_id}", content=body,
                       headers={"content-type": "application/json", "x-signature": sign(secret, body)})


def test_delivery_reports_by_signed_callback_and_by_polling(env):
    env.template("reminder", "{time}")
    env.rule("on_booking", {})
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), env.patient())
    env.book(env.local(MONDAY + timedelta(days=1), 11, 0), env.patient("Szabó", "Béla", phone="+36 20 555 1234"))
    env.run()
    first, second = sorted(env.messages(), key=lambda m: m.appointment_id)
    forged = _callback(env, {"reports": [{"id": first.vendor_message_id, "status": "delivered"}]}, secret="guess")
    assert forged.status_code == 403 and forged.json()["error"] == "forged_callback"
    assert _callback(env, {}, plugin="nosuch").status_code == 404
    answer = _callback(env, {"reports": [{"id": first.vendor_message_id, "status": "delivered"}]})
    assert answer.status_code == 200 and answer.json()["applied"] == 1
    delivered = env.message(first.id)
    assert delivered.status == MessageStatus.delivered and delivered.delivered_at is not None
    # the second never gets a callback: the poller asks the vendor after a while
    env.vendor.by_ref[second.idempotency_key]["status"] = "failed"
    env.advance(minutes=11)
    env.run()
    polled = env.message(second.id)
    assert polled.status == MessageStatus.failed and polled.error_code == "vendor_failed"
    assert env.message(first.id).status == MessageStatus.delivered


def test_replies_confirm_and_cancel_the_appointment(env):
    from core.scheduling import appointments

    env.template("reminder", "{time}. Válasz: 1 = jövök, 2 = lemondom")
    env.rule("days_before", {"days": 1, "at": "12:00"}, set_communication_status="reminder_sent")
    anna = env.patient()
    bela = env.patient("Szabó", "Béla", phone="+36 20 555 1234")
    first = env.book(env.local(MONDAY + timedelta(days=2), 10, 0), anna)
    second = env.book(env.local(MONDAY + timedelta(days=2), 11, 0), bela)
    env.travel(env.local(MONDAY + timedelta(days=1), 12, 0))
    env.run()
    assert appointments.get(env.praxis, env.clinic_id, first["id"])["communication_status"] == "reminder_sent"
    inbound = {"inbound": [{"from": "+36301234567", "text": " 1 ", "id": "in-1"},
                           {"from": "+36205551234", "text": "2", "id": "in-2"},
                           {"from": "+36209999999", "text": "1", "id": "in-3"}]}
    assert _callback(env, inbound).json()["replies"] == 3
    assert _callback(env, inbound).status_code == 200  # redelivered: nothing happens twice
    confirmed = appointments.get(env.praxis, env.clinic_id, first["id"])
    assert confirmed["status"] == "confirmed" and confirmed["communication_status"] == "confirmed"
    cancelled = appointments.get(env.praxis, env.clinic_id, second["id"])
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "patient_request"
    with Session(env.praxis.engine) as session:
        replies = session.exec(select(InboundReply).order_by(col(InboundReply.vendor_message_id))).all()
        assert [(r.vendor_message_id, r.action) for r in replies] == [
            ("in-1", "confirmed"), ("in-2", "cancelled"), ("in-3", "unmatched")]
        history = session.exec(select(AppointmentChange).where(AppointmentChange.appointment_id == first["id"])
                               .order_by(col(AppointmentChange.id))).all()
        assert [(h.action, h.actor_name) for h in history][-3:] == [
            ("changed", "messaging"), ("status_changed", "patient reply by SMS (fakesms)"),
            ("changed", "patient reply by SMS (fakesms)")]
    # cancelling by reply cancelled nothing else: Béla's reminder was already sent
    assert {m.status for m in env.messages()} == {MessageStatus.sent}


def test_a_plugin_reports_lab_results_through_a_core_topic(env):
    from core.db import transaction
    from core.outbox.queue import enqueue

    env.template("lab", "{given_name}, az eredménye elkészült: {link}")
    env.rule("event", {"event": "lab.result_ready", "link": "https://lab.example/r"}, template_code="lab")
    anna = env.patient()
    with transaction(env.praxis.engine) as session:
        for event in ("lab.result_ready", "fakesms.custom", "other.stolen"):
            enqueue(session, plugin="fakesms", topic="core.messaging.event", clinic_id=env.clinic_id,
                    payload={"event": event, "patient_id": str(anna), "event_id": f"e-{event}"})
    env.run()
    [sms] = env.vendor.sms()
    assert sms["text"] == "Anna, az eredménye elkészült: https://lab.example/r"
    with Session(env.praxis.engine) as session:
        items = {i.payload["event"]: i for i in session.exec(select(OutboxItem).where(
            OutboxItem.topic == "core.messaging.event")).all()}
    assert items["lab.result_ready"].status == "done" and items["fakesms.custom"].status == "done"
    assert items["other.stolen"].status == "dead" and "may report" in items["other.stolen"].last_error
    assert uuid.UUID(str(anna))
