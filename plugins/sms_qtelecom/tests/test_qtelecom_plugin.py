"""The QuickTelecom plugin inside a real Praxis against the fake."""

from __future__ import annotations

import importlib.metadata
import uuid

import pytest
from praxis_sms_qtelecom import plugin
from praxis_sms_qtelecom.fake_server import FakeQtelecom
from praxis_sms_qtelecom.settings import QtelecomSettings

from plugin_sdk import ConnectionCheck, PermanentError, RetryableError, UnknownOutcomeError
from plugin_sdk.providers import DeliveryStatus, OutgoingMessage

PROVIDER = plugin.PROVIDER


def sms(body: str | None = None, to: str = "+79161234567") -> OutgoingMessage:
    key = str(uuid.uuid4())
    return OutgoingMessage(channel="sms", to=to, body=body or f"Приём завтра в 10:00 ({key[:8]})", idempotency_key=key)


def test_entry_point_and_manifest(qtelecom):
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("sms_qtelecom") == "praxis_sms_qtelecom.plugin"
    assert (plugin.manifest.countries, plugin.manifest.secret_fields()) == (("RU",), ["password"])
    assert QtelecomSettings().endpoint == "https://service.qtelecom.ru/public/http/"


def test_send_and_refusals(qtelecom, fake_qtelecom):
    result = PROVIDER.send(qtelecom.ctx, sms())
    assert fake_qtelecom.messages[result.vendor_message_id]["sender"] == "Praxis"
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(qtelecom.ctx, sms("x" * 481))
    assert raised.value.code == "too_long" and len(fake_qtelecom.requests) == 1  # refused before sending
    qtelecom.configure(fake_qtelecom.plugin_settings(sender="Other"))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(qtelecom.ctx, sms())
    assert raised.value.code == "invalid_sender"
    qtelecom.configure(fake_qtelecom.plugin_settings(password="wrong"))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(qtelecom.ctx, sms())
    assert raised.value.code == "unauthorized"
    assert len(fake_qtelecom.effects) == 1


def test_funds_and_rate_limit(plugin_app):
    with FakeQtelecom(balance=2.0, rate_limit=2) as fake:
        app = plugin_app(plugin, settings=fake.plugin_settings(), country="RU")
        PROVIDER.send(app.ctx, sms())
        with pytest.raises(PermanentError) as raised:
            PROVIDER.send(app.ctx, sms())
        assert raised.value.code == "insufficient_funds"
        with pytest.raises(RetryableError) as raised:
            PROVIDER.send(app.ctx, sms())
        assert raised.value.retry_after == 1


def test_a_lost_answer_is_found_by_recipient_and_text(qtelecom, fake_qtelecom):
    message = sms()
    assert PROVIDER.query_status(qtelecom.ctx, message) is None
    fake_qtelecom.hang_next(1, seconds=5, after=True)
    with pytest.raises(UnknownOutcomeError):
        PROVIDER.send(qtelecom.ctx, message)
    fake_qtelecom.release()
    found = PROVIDER.query_status(qtelecom.ctx, message)
    assert found.status is DeliveryStatus.queued
    fake_qtelecom.finish(found.vendor_message_id)
    assert PROVIDER.query_status(qtelecom.ctx, message).status is DeliveryStatus.delivered
    fake_qtelecom.finish(found.vendor_message_id, delivered=False)
    failed = PROVIDER.query_status(qtelecom.ctx, message)
    assert (failed.status, failed.error_code) == (DeliveryStatus.failed, "not_delivered")
    assert len(fake_qtelecom.effects) == 1


def test_connection_check_and_settings_rules(qtelecom, fake_qtelecom):
    (ok,) = qtelecom.call("praxis_test_connection", settings=QtelecomSettings(**fake_qtelecom.plugin_settings()))
    assert isinstance(ok.value, ConnectionCheck) and ok.value.ok and "balance" in ok.value.message
    (bad,) = qtelecom.call("praxis_test_connection",
                           settings=QtelecomSettings(**fake_qtelecom.plugin_settings(password="x")))
    assert not bad.value.ok and bad.value.details["code"] == "unauthorized"
    (result,) = qtelecom.call("praxis_validate_settings",
                              settings=QtelecomSettings(endpoint="http://service.qtelecom.ru/public/http/", user="u"))
    assert [(e.field, e.code) for e in result.value] == [("endpoint", "insecure_endpoint"), ("password", "required")]
