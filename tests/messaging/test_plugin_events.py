"""Events plugins declare (``praxis_event_types``) and report (``ctx.emit_event``): listed for the rules
editor where the plugin is enabled, written to the outbox in the caller's transaction, planned by the rules
listening to them, and delivered to plugins as domain events."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from core.db import transaction
from core.messaging import event_kinds, service
from core.models.messaging import MessageStatus
from core.models.outbox import OutboxItem
from plugin_sdk.errors import ValidationFailed
from tests.auth_helpers import client_for, create_user
from tests.conftest import add_clinic, fixture_plugin
from tests.fixture_plugins import greeter, portal
from tests.messaging.conftest import ACTOR, FAKESMS

MONDAY = date(2026, 1, 5)


def _items(env) -> set[uuid.UUID]:
    with Session(env.praxis.engine) as session:
        return set(session.exec(select(OutboxItem.id)).all())


@pytest.fixture
def portal_env(make_env):
    portal.BEHAVIOUR.clear()
    greeter.EVENTS.clear()
    env = make_env([FAKESMS, fixture_plugin("portal"), fixture_plugin("greeter")])
    env.praxis.plugins.enable(env.clinic_id, "portal", ACTOR)
    env.praxis.plugins.enable(env.clinic_id, "greeter", ACTOR)
    return env


def test_declared_events_are_listed_where_the_plugin_is_enabled(portal_env):
    env = portal_env
    runtime = env.praxis.runtime
    assert [r.plugin for r in runtime.collect("praxis_event_types")] == ["portal"]
    kinds = {k["name"]: k for k in service.event_kinds_list(env.praxis, env.clinic_id)}
    assert sorted(kinds) == ["lab.result_ready", "portal.checked_in", "portal.form_signed"]
    assert kinds["portal.form_signed"] == {"name": "portal.form_signed", "title": "Form signed in the portal",
                                           "description": "", "concerns": "patient", "plugin": "portal",
                                           "plugin_title": "Patient Portal"}
    assert kinds["portal.checked_in"]["concerns"] == "appointment" and kinds["lab.result_ready"]["plugin"] is None
    assert event_kinds.declared(runtime).refused == [
        "plugin portal: event 'other.stolen' must be named 'portal.<event>'; ignored"]
    other = add_clinic(env.praxis, "Debrecen")
    assert [k["name"] for k in service.event_kinds_list(env.praxis, other)] == ["lab.result_ready"]
    base = f"/api/clinics/{env.clinic_id}/messaging"
    doctor = client_for(env.praxis, create_user(env.praxis, [env.clinic_id], role="doctor"))  # messaging.view
    assert [k["name"] for k in doctor.get(f"{base}/event-kinds").json()] == sorted(kinds)
    assert "portal_code" in {p["name"] for p in doctor.get(f"{base}/placeholders").json()}
    nobody = client_for(env.praxis, create_user(env.praxis, [env.clinic_id], permissions=[]))
    assert nobody.get(f"{base}/event-kinds").status_code == 403


def test_rules_may_listen_only_to_events_available_in_the_clinic(portal_env):
    env = portal_env
    env.template("signed", "{given_name}, köszönjük!")
    env.template("visit", "Várjuk {time}-kor!")
    env.rule("event", {"event": "portal.form_signed"}, template_code="signed")
    env.rule("event", {"event": "portal.checked_in"}, template_code="visit")  # {time}: the event has an appointment
    with pytest.raises(ValidationFailed) as refused:
        env.rule("event", {"event": "portal.form_signed"}, template_code="visit")
    assert refused.value.errors[0].code == "placeholder_not_available"
    with pytest.raises(ValidationFailed) as refused:
        env.rule("event", {"event": "portal.nonsense"}, template_code="signed")
    assert [(e.field, e.code) for e in refused.value.errors] == [("params.event", "unknown_event")]
    env.praxis.plugins.disable(env.clinic_id, "portal", ACTOR)
    with pytest.raises(ValidationFailed) as refused:
        env.rule("event", {"event": "portal.form_signed"}, template_code="signed")
    [error] = refused.value.errors
    assert (error.field, error.code) == ("params.event", "event_unavailable") and "Patient Portal" in error.message


def test_an_emitted_event_is_written_in_the_callers_transaction_and_plans_its_rules(portal_env):
    env = portal_env
    env.template("signed", "{given_name}, köszönjük: {portal_form}")
    env.rule("event", {"event": "portal.form_signed", "delay_minutes": 5}, template_code="signed")
    anna = env.patient()
    ctx = env.praxis.runtime.context("portal", env.clinic_id)
    before = _items(env)
    with pytest.raises(RuntimeError), transaction(env.praxis.engine) as session:
        ctx.emit_event("portal.form_signed", patient_id=str(anna), data={"form": "GDPR"}, session=session)
        raise RuntimeError("the plugin's own change failed")
    assert _items(env) == before  # rolled back with the caller's change
    with transaction(env.praxis.engine) as session:
        event_id = ctx.emit_event("portal.form_signed", patient_id=anna, data={"form": "GDPR"}, session=session)
    with Session(env.praxis.engine) as session:
        [item] = session.exec(select(OutboxItem).where(OutboxItem.topic == event_kinds.EVENT_TOPIC)).all()
    assert item.plugin == "portal" and item.payload["event_id"] == str(event_id)
    env.run()
    assert (env.clinic_id, "portal.form_signed") in greeter.EVENTS  # plugins get it as a domain event
    [message] = env.messages()
    assert message.status == MessageStatus.queued and message.body == "Anna, köszönjük: GDPR"  # written now
    assert message.planned_for == env.clock.now + timedelta(minutes=5)
    env.advance(minutes=5)
    env.run()
    assert [s["text"] for s in env.vendor.sms()] == ["Anna, köszönjük: GDPR"]
    ctx.emit_event("portal.form_signed", patient_id=anna, data={"form": "GDPR"})  # its own transaction
    env.run()
    assert len(env.messages()) == 2


def test_an_event_about_an_appointment_reaches_its_patient_with_the_appointments_data(portal_env):
    env = portal_env
    env.template("visit", "{given_name}, várjuk {time}-kor.")
    env.rule("event", {"event": "portal.checked_in"}, template_code="visit")
    appt = env.book(env.local(MONDAY + timedelta(days=1), 10, 30), env.patient())
    ctx = env.praxis.runtime.context("portal", env.clinic_id)
    ctx.emit_event("portal.checked_in", appointment_id=appt["id"])
    env.run()
    [message] = env.messages()
    assert message.appointment_id == appt["id"] and message.body == "Anna, várjuk 10:30-kor."


def test_emitting_checks_the_declaration_and_the_clinic(portal_env):
    env = portal_env
    ctx = env.praxis.runtime.context("portal", env.clinic_id)
    anna = env.patient()
    before = _items(env)
    with pytest.raises(ValueError, match="does not declare"):
        ctx.emit_event("portal.nonsense", patient_id=anna)
    with pytest.raises(ValueError, match="does not declare"):
        env.praxis.runtime.context("greeter", env.clinic_id).emit_event("portal.form_signed", patient_id=anna)
    with pytest.raises(ValueError, match="give patient_id"):
        ctx.emit_event("portal.form_signed")
    with pytest.raises(ValueError, match="give appointment_id"):
        ctx.emit_event("portal.checked_in", patient_id=anna)
    with pytest.raises(ValueError, match="not a patient of clinic"):
        ctx.emit_event("portal.form_signed", patient_id=uuid.uuid4())
    with pytest.raises(ValueError, match="JSON"):
        ctx.emit_event("portal.form_signed", patient_id=anna, data={"at": object()})
    other = add_clinic(env.praxis, "Debrecen")
    env.praxis.plugins.enable(other, "portal", ACTOR)
    with pytest.raises(ValueError, match="not a patient of clinic"):
        env.praxis.runtime.context("portal", other).emit_event("portal.form_signed", patient_id=anna)
    assert _items(env) == before
