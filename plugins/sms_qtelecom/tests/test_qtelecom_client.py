"""The form and XML of the QuickTelecom protocol (httpx.MockTransport), and the refusal wording classes."""

from __future__ import annotations

import gzip
from datetime import datetime
from urllib.parse import parse_qs

import httpx
import pytest
from praxis_sms_qtelecom.client import QtelecomClient, classify
from praxis_sms_qtelecom.provider import message_result

from plugin_sdk import PermanentError, RetryableError
from plugin_sdk.providers import DeliveryStatus


def client(handler) -> QtelecomClient:  # type: ignore[no-untyped-def]
    return QtelecomClient("https://qt.test/public/http/", "clinic", "pw", transport=httpx.MockTransport(handler))


def test_post_sms_form_and_answer():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, content=gzip.compress(
            '<output><result sms_group_id="996"><sms id="99991" smstype="SENDSMS" phone="+79161234567">'
            "<![CDATA[Привет]]></sms></result></output>".encode()), headers={"Content-Encoding": "gzip"})

    assert client(handler).post_sms(target="+79161234567", message="Привет", sender="Praxis") == "99991"
    form = {k: v[0] for k, v in parse_qs(seen[0].content.decode()).items()}
    assert form == {"user": "clinic", "pass": "pw", "gzip": "none", "action": "post_sms", "message": "Привет",
                    "target": "+79161234567", "sender": "Praxis"}
    assert seen[0].url.path == "/public/http/"


def test_refusals_are_classified_by_their_wording():
    assert classify("Неправильный номер телефона: +7999") == ("invalid_recipient", False)
    assert classify("Неверный логин или пароль") == ("unauthorized", False)
    assert classify("Недостаточно средств на балансе") == ("insufficient_funds", False)
    assert classify("Сервер перегружен, повторите позже") == ("temporarily_unavailable", True)
    assert classify("Что-то иное") == ("rejected", False)
    refused = client(lambda r: httpx.Response(200, text="<output><errors><error>Неправильный номер телефона: +7"
                                                        "</error></errors></output>"))
    with pytest.raises(PermanentError) as raised:
        refused.post_sms(target="+7", message="x", sender=None)
    assert raised.value.code == "invalid_recipient" and "Неправильный номер" in str(raised.value)
    busy = client(lambda r: httpx.Response(200, text="<output><errors><error>Временно недоступно</error>"
                                                     "</errors></output>"))
    with pytest.raises(RetryableError):
        busy.balance()
    with pytest.raises(RetryableError) as raised:
        client(lambda r: httpx.Response(200, text="not xml")).balance()
    assert raised.value.code == "bad_response"


def test_status_answer_and_state_mapping():
    xml = ('<output><MESSAGES><MESSAGE SMS_ID="6666" SMSTYPE="SENDSMS"><SMS_TARGET>89161234567</SMS_TARGET>'
           "<SMS_TEXT><![CDATA[ Привет ]]></SMS_TEXT><SMSSTC_CODE>wait</SMSSTC_CODE><SMS_STATUS>В процессе"
           "</SMS_STATUS><SMS_CLOSED>0</SMS_CLOSED><SMS_SENT>0</SMS_SENT></MESSAGE></MESSAGES></output>")
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, text=xml)

    (message,) = client(handler).messages(date_from=datetime(2026, 1, 5, 10), date_to=datetime(2026, 1, 6, 10))  # noqa: DTZ001
    form = {k: v[0] for k, v in parse_qs(seen[0].content.decode()).items()}
    assert (form["date_from"], form["date_to"], form["smstype"]) == ("05.01.2026 10:00:00", "06.01.2026 10:00:00",
                                                                     "SENDSMS")
    assert (message.id, message.text, message.state) == ("6666", "Привет", "wait")
    assert message_result(message).status is DeliveryStatus.queued
    assert message_result(message.__class__(**{**message.__dict__, "closed": True, "sent": True})).status is \
        DeliveryStatus.delivered
    failed = message_result(message.__class__(**{**message.__dict__, "closed": True, "state": "not_delivered"}))
    assert (failed.status, failed.error_code) == (DeliveryStatus.failed, "not_delivered")
