"""Placeholders plugins add (``praxis_placeholders``): usable only where the plugin is enabled, clashes refused,
filled when the message goes out, and a plugin that fails or is switched off fails the message with a readable
reason instead of a blank, without taking the sending down."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from core.messaging import placeholders, service
from core.messaging import templates as tpl
from core.messaging.schemas import PreviewIn
from core.models.messaging import MessageStatus
from core.models.plugin import PluginHealth
from plugin_sdk.errors import ValidationFailed
from tests.conftest import fixture_plugin
from tests.fixture_plugins import portal
from tests.messaging.conftest import ACTOR, FAKESMS

MONDAY = date(2026, 1, 5)


@pytest.fixture
def portal_env(make_env):
    portal.BEHAVIOUR.clear()
    portal.VIEWS.clear()
    env = make_env([FAKESMS, fixture_plugin("portal"), fixture_plugin("portal_copy")])
    env.praxis.plugins.enable(env.clinic_id, "portal", ACTOR)
    yield env
    portal.BEHAVIOUR.clear()
    portal.VIEWS.clear()


def test_a_plugins_placeholders_are_usable_only_where_it_is_enabled(portal_env):
    env = portal_env
    names = {p["name"]: p for p in service.placeholder_list(env.praxis, env.clinic_id)}
    assert names["portal_code"]["source"] == "portal" and names["portal_code"]["needs_appointment"] is False
    assert names["portal_visit_link"]["needs_appointment"] is True and names["portal_visit_link"]["kind"] == "url"
    assert names["date"]["source"] == "core"
    assert "portal_code" not in {p["name"] for p in service.placeholder_list()}  # the core's alone
    env.template("reminder", "Kód: {portal_code}")
    env.praxis.plugins.disable(env.clinic_id, "portal", ACTOR)
    assert "portal_code" not in {p["name"] for p in service.placeholder_list(env.praxis, env.clinic_id)}
    with pytest.raises(ValidationFailed) as refused:
        env.template("reminder", "Kód: {portal_code}", language="en")
    [error] = refused.value.errors
    assert (error.field, error.code) == ("body", "placeholder_unavailable")
    assert "Patient Portal (portal)" in error.message and "not enabled in this clinic" in error.message
    with pytest.raises(ValidationFailed) as refused:  # nor may a rule start using such a template
        env.rule("days_before", {"days": 1, "at": "12:00"})
    assert refused.value.errors[0].code == "placeholder_unavailable"


def test_a_placeholder_name_already_taken_is_refused_naming_the_plugin(portal_env):
    runtime = portal_env.praxis.runtime
    assert {r.plugin for r in runtime.collect("praxis_placeholders")} == {"portal", "portal_copy"}
    found = placeholders.catalog(runtime)
    assert found.by_name["portal_code"].source == "portal"  # the first in install order keeps it
    refused = "\n".join(found.refused)
    assert "plugin portal: placeholder {date} is already defined by the core" in refused
    assert "plugin portal_copy: placeholder {portal_code} is already defined by plugin portal" in refused
    assert "plugin portal returned 'not a placeholder'" in refused
    assert tpl.placeholders()["date"].source == "core"


def test_placeholders_needing_an_appointment_stay_out_of_birthday_templates(portal_env):
    env = portal_env
    env.template("greeting", "Boldog születésnapot! {portal_visit_link}")
    with pytest.raises(ValidationFailed) as refused:
        env.rule("birthday", {"at": "10:00"}, template_code="greeting")
    assert refused.value.errors[0].code == "placeholder_not_available"


def test_texts_are_written_when_the_message_goes_out_with_the_plugins_values(portal_env):
    env = portal_env
    env.template("reminder", "{given_name}: {portal_code} {portal_visit_link} {time}")
    env.rule("days_before", {"days": 1, "at": "12:00"})
    anna = env.patient()
    appt = env.book(env.local(MONDAY + timedelta(days=2), 10, 0), anna)
    [message] = env.messages()
    assert message.body == "" and message.segments == 0  # planned without text
    shown = service.get_message(env.praxis, env.clinic_id, message.id)
    assert shown["body"] == "Anna: {portal_code} {portal_visit_link} 10:00"  # plugins are not asked
    assert shown["text_final"] is False and portal.VIEWS == []
    env.travel(env.local(MONDAY + timedelta(days=1), 12, 0))
    env.run()
    [sms] = env.vendor.sms()
    assert sms["text"] == f"Anna: K-{str(anna)[:4]} https://portal.example/v/{appt['id']} 10:00"
    [message] = env.messages()
    assert message.status == MessageStatus.sent and message.body == sms["text"] and message.segments == 1
    assert service.get_message(env.praxis, env.clinic_id, message.id)["text_final"] is True
    [view] = portal.VIEWS
    assert (view.clinic_id, view.kind, view.channel, view.patient_id, view.appointment_id) == (
        env.clinic_id, "days_before", "sms", str(anna), appt["id"])
    assert view.recipient_name == "Kovács Anna" and view.language == "hu" and view.sample is False
    assert view.appointment_start == env.local(MONDAY + timedelta(days=2), 10, 0)
    with pytest.raises(TypeError):
        view.data["x"] = 1  # type: ignore[index]


def test_a_message_using_a_switched_off_plugin_fails_with_the_reason(portal_env):
    env = portal_env
    env.template("reminder", "Kód: {portal_code}")
    env.rule("on_booking", {})
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), env.patient())
    env.praxis.plugins.disable(env.clinic_id, "portal", ACTOR)
    env.run()
    assert env.vendor.sms() == []
    [message] = env.messages()
    assert message.status == MessageStatus.failed and message.error_code == "placeholder_unavailable"
    assert message.reason == ("{portal_code} comes from the plugin Patient Portal (portal), which is not enabled "
                              "in this clinic")
    env.praxis.plugins.enable(env.clinic_id, "portal", ACTOR)  # switched on again: staff send it again
    service.retry(env.praxis, env.clinic_id, message.id, ACTOR)
    env.run()
    assert [s["text"] for s in env.vendor.sms()] == [f"Kód: K-{str(message.patient_id)[:4]}"]


def test_a_failing_resolver_fails_only_its_message_and_counts_against_the_plugin(portal_env):
    env = portal_env
    env.template("reminder", "{given_name}: {portal_code}")
    env.rule("on_booking", {})
    portal.BEHAVIOUR.update(code="raise_for", who="Kovács Béla")
    for i, name in enumerate(("Anna", "Béla")):
        env.book(env.local(MONDAY + timedelta(days=1), 10 + i, 0),
                 env.patient("Kovács", name, phone=f"+36 30 123 45{i:02d}"))
    env.run()
    [anna] = env.messages(recipient_name="Kovács Anna")
    assert [s["text"] for s in env.vendor.sms()] == [f"Anna: K-{str(anna.patient_id)[:4]}"]
    failed = env.messages(status=MessageStatus.failed)
    assert [(m.recipient_name, m.error_code) for m in failed] == [("Kovács Béla", "placeholder_failed")]
    assert failed[0].reason == "Patient Portal could not fill {portal_code}: RuntimeError: no code for this patient"
    env.praxis.runtime.health.flush()
    with Session(env.praxis.engine) as session:
        health = session.exec(select(PluginHealth).where(PluginHealth.plugin == "portal")).one()
    assert health.total_failures == 1 and "no code for this patient" in (health.last_error or "")


def test_no_value_is_a_failure_not_a_blank_and_retryable_errors_wait(portal_env):
    env = portal_env
    env.template("reminder", "Kód: {portal_code}")
    env.rule("on_booking", {})
    portal.BEHAVIOUR["code"] = "none"
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), env.patient())
    env.run()
    [message] = env.messages()
    assert (message.status, message.error_code) == (MessageStatus.failed, "placeholder_empty")
    assert message.reason == "Patient Portal has no value for {portal_code} for this message"
    portal.BEHAVIOUR["code"] = "retry"
    env.book(env.local(MONDAY + timedelta(days=1), 11, 0), env.patient("Nagy", "Béla", phone="+36 30 765 4321"))
    env.run()
    waiting = env.messages(status=MessageStatus.queued)[0]
    assert waiting.error_code == "placeholder_retry"
    assert "Patient Portal cannot fill {portal_code} now" in (waiting.reason or "")
    assert waiting.body == "" and env.vendor.sms() == []
    portal.BEHAVIOUR.clear()
    env.advance(minutes=2)
    env.run()
    assert len(env.vendor.sms()) == 1


def test_a_re_timed_message_is_written_again(portal_env):
    from core.scheduling import appointments
    from tests.messaging.conftest import BOSS

    env = portal_env
    env.template("reminder", "{date} {time}")
    env.rule("days_before", {"days": 1, "at": "12:00"})
    appt = env.book(env.local(MONDAY + timedelta(days=2), 10, 0), env.patient())
    env.travel(env.local(MONDAY + timedelta(days=1), 12, 0))
    env.vendor.fail_next(1, status=503, path="/sms")
    env.run()
    [message] = env.messages()
    assert message.status == MessageStatus.queued and message.body == "2026. január 7. 10:00"  # written, not sent
    appointments.move(env.praxis, env.clinic_id, appt["id"], BOSS,
                      start_at=env.local(MONDAY + timedelta(days=3), 15, 0), overbook=True)
    [message] = env.messages()
    assert message.body == "" and message.planned_for == env.local(MONDAY + timedelta(days=2), 12, 0)
    env.travel(message.planned_for)
    env.run()
    assert [s["text"] for s in env.vendor.sms()] == ["2026. január 8. 15:00"]


def test_previews_fill_plugins_placeholders_with_real_data_and_samples(portal_env):
    env = portal_env
    sample = service.preview(env.praxis, env.clinic_id, PreviewIn(body="{given_name}: {portal_code}"))
    assert sample["body"] == "Anna: K-1234" and portal.VIEWS == []
    anna = env.patient()
    real = service.preview(env.praxis, env.clinic_id, PreviewIn(body="{portal_code}", patient_id=anna))
    assert real["body"] == f"K-{str(anna)[:4]}" and portal.VIEWS[0].kind == "preview"
    portal.BEHAVIOUR["code"] = "raise"
    with pytest.raises(ValidationFailed) as refused:
        service.preview(env.praxis, env.clinic_id, PreviewIn(body="{portal_code}", patient_id=anna))
    assert refused.value.errors[0].code == "placeholder_failed"


def test_manual_sendings_are_written_when_they_go_out(portal_env):
    from core.messaging.schemas import SendIn

    env = portal_env
    anna = env.patient()
    batch = service.send(env.praxis, env.clinic_id, SendIn(patient_ids=[anna], body="Kedves {given_name}: "
                                                                                   "{portal_code}"), ACTOR)
    assert batch["total"] == 1
    with pytest.raises(ValidationFailed) as refused:
        service.send(env.praxis, env.clinic_id, SendIn(patient_ids=[anna], body="{portal_visit_link}"), ACTOR)
    assert refused.value.errors[0].code == "placeholder_not_available"
    env.run()
    assert [s["text"] for s in env.vendor.sms()] == [f"Kedves Anna: K-{str(anna)[:4]}"]


def test_a_plugin_is_never_asked_inside_the_send_transaction(portal_env, monkeypatch):
    env = portal_env
    env.template("reminder", "Kód: {portal_code}")
    env.rule("on_booking", {})
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), env.patient())
    # as if the plugin was switched on just after the sender looked: the text is then written inside the send's
    # transaction, where the plugin's placeholder defers the message instead of calling the plugin
    monkeypatch.setattr(placeholders, "plugins_in", lambda runtime, clinic_id: False)
    env.run()
    [message] = env.messages()
    assert (message.status, message.error_code, message.body) == (MessageStatus.queued, "placeholder_deferred", "")
    assert portal.VIEWS == [] and env.vendor.sms() == []
    monkeypatch.undo()
    env.advance(seconds=2)
    env.run()
    assert [s["text"] for s in env.vendor.sms()] == [f"Kód: K-{str(message.patient_id)[:4]}"]
