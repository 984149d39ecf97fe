"""The plugin inside a real Praxis against the fake SMSC: errors, duplicates, status, callbacks, settings."""

from __future__ import annotations

import importlib.metadata
import uuid
from typing import Any

import pytest
from praxis_sms_smsc import plugin
from praxis_sms_smsc.client import client_id
from praxis_sms_smsc.settings import SmscSettings

from plugin_sdk import ConnectionCheck, PermanentError, RetryableError, UnknownOutcomeError
from plugin_sdk.providers import DeliveryStatus, OutgoingMessage

PROVIDER = plugin.PROVIDER
PHONE = "+79161234567"


def sms(to: str = PHONE, body: str = "Напоминание: завтра в 10:00, доктор Иванова.", key: str | None = None):
    return OutgoingMessage(channel="sms", to=to, body=body, idempotency_key=key or str(uuid.uuid4()))


def test_the_distribution_registers_the_entry_point_and_manifest(smsc):
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("sms_smsc") == "praxis_sms_smsc.plugin"
    manifest = plugin.manifest
    assert (manifest.category, manifest.countries, manifest.handles_patient_data) == ("messaging", ("RU",), True)
    assert set(manifest.secret_fields()) == {"password", "callback_secret"}
    assert smsc.collect("praxis_messaging_providers") == [[PROVIDER]]
    assert SmscSettings().endpoint == "https://smsc.ru/sys/"


def test_a_message_is_sent_with_the_sender_and_our_id(smsc, fake_smsc):
    message = sms()
    result = PROVIDER.send(smsc.ctx, message)
    assert result.status is DeliveryStatus.queued
    assert result.vendor_message_id == str(client_id(message.idempotency_key))
    stored = fake_smsc.messages[("79161234567", client_id(message.idempotency_key))]
    assert (stored["text"], stored["sender"]) == (message.body, "Praxis")
    assert len(fake_smsc.effects) == 1


def test_a_resend_within_a_minute_is_refused_by_smsc_and_resolved_by_a_status_lookup(smsc, fake_smsc):
    message = sms()
    first = PROVIDER.send(smsc.ctx, message)
    again = PROVIDER.send(smsc.ctx, message)  # SMSC answers error 9; the provider finds the first one
    assert again.vendor_message_id == first.vendor_message_id and len(fake_smsc.effects) == 1
    # ...but SMSC is no idempotency store: a minute later the same request is a new SMS. Hence deduplicates=False.
    fake_smsc.advance(61)
    PROVIDER.send(smsc.ctx, message)
    assert len(fake_smsc.effects) == 2 and PROVIDER.deduplicates is False


def test_invalid_and_undeliverable_numbers_are_permanent_with_code_and_reason(smsc, fake_smsc):
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(smsc.ctx, sms(to="+7916"))
    assert raised.value.code == "7" and "invalid phone number format" in str(raised.value)
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(smsc.ctx, sms(to="+79990000008"))
    assert raised.value.code == "8" and "cannot be delivered to this number" in str(raised.value)
    assert fake_smsc.effects == []


def test_insufficient_funds_wrong_password_and_unregistered_sender_are_permanent(smsc, fake_smsc):
    balance, fake_smsc.balance = fake_smsc.balance, 1.0
    try:
        with pytest.raises(PermanentError) as raised:
            PROVIDER.send(smsc.ctx, sms())
        assert raised.value.code == "3" and "funds" in str(raised.value)
    finally:
        fake_smsc.balance = balance
    smsc.configure(fake_smsc.plugin_settings(sender="Unknown"))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(smsc.ctx, sms())
    assert raised.value.code == "6"
    smsc.configure(fake_smsc.plugin_settings(password="wrong"))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(smsc.ctx, sms())
    assert raised.value.code == "2"


def test_api_key_login(smsc, fake_smsc):
    smsc.configure(fake_smsc.plugin_settings(login="", password=fake_smsc.api_key))
    assert PROVIDER.send(smsc.ctx, sms()).vendor_message_id


def test_frequent_errors_block_the_ip_for_a_minute_as_a_retryable_error(plugin_app):
    from praxis_sms_smsc.fake_server import FakeSmsc

    with FakeSmsc(block_after_errors=3) as fake:
        app = plugin_app(plugin, settings=fake.plugin_settings(), country="RU")
        for _ in range(3):
            with pytest.raises(PermanentError):
                PROVIDER.send(app.ctx, sms(to="+7916"))
        with pytest.raises(RetryableError) as raised:
            PROVIDER.send(app.ctx, sms())
        assert raised.value.code == "4" and raised.value.retry_after == 60
        fake.advance(61)
        assert PROVIDER.send(app.ctx, sms()).vendor_message_id


def test_a_lost_answer_is_an_unknown_outcome_that_the_status_query_resolves(smsc, fake_smsc):
    message = sms()
    assert PROVIDER.query_status(smsc.ctx, message) is None  # SMSC never heard of it
    fake_smsc.hang_next(1, seconds=5, after=True, path="/sys/send.php")
    with pytest.raises(UnknownOutcomeError):
        PROVIDER.send(smsc.ctx, message)
    fake_smsc.release()
    found = PROVIDER.query_status(smsc.ctx, message)
    assert found is not None and found.status is DeliveryStatus.queued
    assert found.vendor_message_id == str(client_id(message.idempotency_key))
    fake_smsc.set_status(PHONE, client_id(message.idempotency_key), 1)
    assert PROVIDER.query_status(smsc.ctx, message).status is DeliveryStatus.delivered
    fake_smsc.set_status(PHONE, client_id(message.idempotency_key), 22)
    failed = PROVIDER.query_status(smsc.ctx, message)
    assert (failed.status, failed.error_code, failed.error_message) == (DeliveryStatus.failed, "22",
                                                                         "SMSC: invalid number")
    assert len(fake_smsc.effects) == 1


def test_a_signed_delivery_callback_is_parsed_and_a_forged_one_refused(smsc, fake_smsc):
    headers, body = fake_smsc.callback(12345, PHONE, 1, at=1767600000)
    reports, inbound = PROVIDER.parse_callback(smsc.ctx, headers, body)
    assert inbound == [] and len(reports) == 1
    report = reports[0]
    assert (report.vendor_message_id, report.status, report.at.isoformat()) == (
        "12345", DeliveryStatus.delivered, "2026-01-05T08:00:00+00:00")
    headers, body = fake_smsc.callback(12345, PHONE, 20, err=7)
    assert PROVIDER.parse_callback(smsc.ctx, headers, body)[0][0].error_code == "7"

    for forged in (fake_smsc.callback(12345, PHONE, 1, secret="guess")[1],
                   body.replace(b"status=20", b"status=1"),
                   b"id=12345&phone=79161234567&status=1&time=1&err=0"):
        with pytest.raises(PermanentError) as raised:
            PROVIDER.parse_callback(smsc.ctx, headers, forged)
        assert raised.value.code == "forged_callback"


def test_the_hash_recipe_and_secret_are_configurable_and_replies_are_inbound(smsc, fake_smsc):
    fake_smsc.callback_hash, fake_smsc.callback_recipe = "sha1", "{secret}|{phone}|{id}|{status}|{mes}"
    try:
        smsc.configure(fake_smsc.plugin_settings(callback_hash="sha1", callback_hash_recipe=fake_smsc.callback_recipe,
                                                 callback_secret="cb-secret"))
        headers, body = fake_smsc.callback(9, PHONE, 0, secret="cb-secret")
        assert PROVIDER.parse_callback(smsc.ctx, headers, body)[0][0].status is DeliveryStatus.sent
        with pytest.raises(PermanentError):  # the account password no longer signs callbacks
            PROVIDER.parse_callback(smsc.ctx, *fake_smsc.callback(9, PHONE, 0))
        reports, inbound = PROVIDER.parse_callback(smsc.ctx, *fake_smsc.incoming(PHONE, "1", secret="cb-secret"))
        assert reports == [] and [(m.sender, m.body) for m in inbound] == [(PHONE, "1")]
    finally:
        fake_smsc.callback_hash, fake_smsc.callback_recipe = "md5", "{id}:{phone}:{status}:{time}:{err}:{secret}"


def test_connection_check_reports_the_balance_or_the_refusal(smsc, fake_smsc):
    (ok,) = smsc.call("praxis_test_connection", settings=SmscSettings(**fake_smsc.plugin_settings()))
    assert isinstance(ok.value, ConnectionCheck) and ok.value.ok and "balance" in ok.value.message
    (bad,) = smsc.call("praxis_test_connection", settings=SmscSettings(**fake_smsc.plugin_settings(password="x")))
    assert not bad.value.ok and bad.value.details["code"] == "2" and "login or password" in bad.value.message
    fake_smsc.stop()
    (down,) = smsc.call("praxis_test_connection", settings=SmscSettings(**fake_smsc.plugin_settings()))
    assert not down.value.ok and down.value.details["code"] == "unreachable"


def test_settings_rules_that_cross_fields(smsc):
    def errors(**values: Any) -> list[tuple[str, str]]:
        (result,) = smsc.call("praxis_validate_settings", settings=SmscSettings(**values))
        return [(e.field, e.code) for e in result.value]

    assert errors() == []
    assert errors(endpoint="http://smsc.ru/sys/") == [("endpoint", "insecure_endpoint")]
    assert errors(callback_hash_recipe="{id}:{status}:{time}") == [("callback_hash_recipe", "secret_missing")]
    assert errors(callback_hash_recipe="{id:{secret}") == [("callback_hash_recipe", "invalid")]
