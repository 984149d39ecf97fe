"""The Imobis wire format (httpx.MockTransport) and the plugin inside a real Praxis against the fake."""

from __future__ import annotations

import importlib.metadata
import json
import uuid
from typing import Any

import httpx
import pytest
from praxis_sms_imobis import plugin
from praxis_sms_imobis.client import ImobisClient, classify
from praxis_sms_imobis.fake_server import FakeImobis
from praxis_sms_imobis.settings import ImobisSettings

from plugin_sdk import ConnectionCheck, PermanentError, RetryableError, UnknownOutcomeError
from plugin_sdk.providers import DeliveryStatus, OutgoingMessage

PROVIDER = plugin.PROVIDER


def sms(to: str = "+79161234567") -> OutgoingMessage:
    return OutgoingMessage(channel="sms", to=to, body="Приём завтра в 10:00", idempotency_key=str(uuid.uuid4()))


def test_request_format_and_refusal_classes():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"result": "success", "id": "9f1c", "status": "accepted"})

    client = ImobisClient("https://api.imobis.test/v3", "tok", transport=httpx.MockTransport(handler))
    sent = client.send_sms(sender="Praxis", phone="79161234567", text="Привет", custom_id="k", ttl=600,
                           day_delivery=True)
    assert (sent.id, sent.status) == ("9f1c", "accepted")
    assert seen[0].url.path == "/v3/message/sendSMS" and seen[0].headers["Authorization"] == "Token tok"
    assert json.loads(seen[0].content) == {"sender": "Praxis", "phone": "79161234567", "text": "Привет",
                                           "custom_id": "k", "ttl": 600, "daydelivery": True}
    assert [classify(t) for t in ("Invalid sender", "Invalid phone number 7", "Low balance", "Something")] == [
        "invalid_sender", "invalid_recipient", "insufficient_funds", "rejected"]


def test_entry_point_and_manifest(imobis):
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("sms_imobis") == "praxis_sms_imobis.plugin"
    assert (plugin.manifest.countries, plugin.manifest.secret_fields()) == (("RU",), ["token"])
    assert ImobisSettings().endpoint == "https://api.imobis.ru/v3"


def test_send_with_settings_and_refusals(imobis, fake_imobis):
    imobis.configure(fake_imobis.plugin_settings(day_delivery=True, ttl_seconds=3600))
    result = PROVIDER.send(imobis.ctx, sms())
    stored = fake_imobis.messages[result.vendor_message_id]
    assert (stored["phone"], stored["daydelivery"], stored["ttl"]) == ("79161234567", True, 3600)
    imobis.configure(fake_imobis.plugin_settings(sender="Other"))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(imobis.ctx, sms())
    assert raised.value.code == "invalid_sender" and "Invalid sender" in str(raised.value)
    imobis.configure(fake_imobis.plugin_settings(token="wrong"))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(imobis.ctx, sms())
    assert raised.value.code == "unauthorized"
    assert len(fake_imobis.effects) == 1


def test_funds_and_rate_limit(plugin_app):
    with FakeImobis(balance=2.2, rate_limit=2) as fake:
        app = plugin_app(plugin, settings=fake.plugin_settings(), country="RU")
        PROVIDER.send(app.ctx, sms())
        with pytest.raises(PermanentError) as raised:
            PROVIDER.send(app.ctx, sms())
        assert raised.value.code == "insufficient_funds"
        with pytest.raises(RetryableError) as raised:
            PROVIDER.send(app.ctx, sms())
        assert raised.value.retry_after == 1


def test_a_lost_answer_is_found_by_custom_id(imobis, fake_imobis):
    message = sms()
    assert PROVIDER.query_status(imobis.ctx, message) is None
    fake_imobis.hang_next(1, seconds=5, after=True, path="/v3/message/sendSMS")
    with pytest.raises(UnknownOutcomeError):
        PROVIDER.send(imobis.ctx, message)
    fake_imobis.release()
    found = PROVIDER.query_status(imobis.ctx, message)
    assert found.status is DeliveryStatus.queued
    fake_imobis.set_status(found.vendor_message_id, "delivered")
    assert PROVIDER.query_status(imobis.ctx, message).status is DeliveryStatus.delivered
    fake_imobis.set_status(found.vendor_message_id, "undelivered", "absent subscriber")
    failed = PROVIDER.query_status(imobis.ctx, message)
    assert (failed.status, failed.error_code, failed.error_message) == (
        DeliveryStatus.failed, "undelivered", "Imobis: absent subscriber")
    assert len(fake_imobis.effects) == 1


def test_connection_check_and_settings_rules(imobis, fake_imobis):
    def check(**overrides: Any) -> ConnectionCheck:
        settings = ImobisSettings(**fake_imobis.plugin_settings(**overrides))
        (r,) = imobis.call("praxis_test_connection", settings=settings)
        return r.value

    assert check().ok and "balance" in check().message
    assert check(token="wrong").details["code"] == "unauthorized"
    (result,) = imobis.call("praxis_validate_settings",
                            settings=ImobisSettings(endpoint="http://api.imobis.ru/v3", token="t"))
    assert [(e.field, e.code) for e in result.value] == [("endpoint", "insecure_endpoint"), ("sender", "required")]
