"""The Aliyun plugin inside a real Praxis against the fake Dysmsapi."""

from __future__ import annotations

import base64
import importlib.metadata
import uuid
from typing import Any

import pytest
from praxis_sms_aliyun import plugin
from praxis_sms_aliyun.fake_server import FakeAliyunSms
from praxis_sms_aliyun.settings import AliyunSettings

from plugin_sdk import ConnectionCheck, PermanentError, RetryableError, UnknownOutcomeError
from plugin_sdk.providers import DeliveryStatus, OutgoingMessage

from .conftest import TOKEN

PROVIDER = plugin.PROVIDER
PHONE = "+8613800138000"


def sms(body: str = "明天上午10点王医生预约，请准时到诊。", to: str = PHONE, **kw: Any) -> OutgoingMessage:
    return OutgoingMessage(channel="sms", to=to, body=body, idempotency_key=kw.pop("key", str(uuid.uuid4())), **kw)


def biz_of(fake: FakeAliyunSms, key: str) -> str:
    return next(biz for biz, m in fake.messages.items() if m["OutId"] == key)


def test_entry_point_manifest_and_default_endpoint(aliyun):
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("sms_aliyun") == "praxis_sms_aliyun.plugin"
    assert (plugin.manifest.category, plugin.manifest.countries) == ("messaging", ("CN",))
    assert set(plugin.manifest.secret_fields()) == {"access_key_secret", "callback_token"}
    assert AliyunSettings().endpoint == "https://dysmsapi.aliyuncs.com"


def test_the_text_goes_through_the_approved_template_with_the_signature(aliyun, fake_aliyun):
    message = sms()
    result = PROVIDER.send(aliyun.ctx, message)
    assert (result.status, result.vendor_message_id) == (DeliveryStatus.queued, message.idempotency_key)
    stored = fake_aliyun.messages[biz_of(fake_aliyun, message.idempotency_key)]
    assert stored["Content"] == "【普拉克西斯诊所】您好，明天上午10点王医生预约，请准时到诊。"
    assert stored["PhoneNum"] == "13800138000" and len(fake_aliyun.effects) == 1


def test_a_message_may_name_its_own_template_and_variables(aliyun, fake_aliyun):
    fake_aliyun.templates["SMS_200000"] = ("${name}您好，您预约了${time}的门诊。", 1)
    try:
        params = {"name": "李雷", "time": "1月6日10:00"}
        message = sms(metadata={"template_code": "SMS_200000", "template_params": params})
        PROVIDER.send(aliyun.ctx, message)
        assert fake_aliyun.messages[biz_of(fake_aliyun, message.idempotency_key)]["Content"] == \
            "【普拉克西斯诊所】李雷您好，您预约了1月6日10:00的门诊。"
        with pytest.raises(PermanentError) as raised:
            PROVIDER.send(aliyun.ctx, sms(metadata={"template_code": "SMS_200000", "template_params": {"name": "x"}}))
        assert raised.value.code == "isv.TEMPLATE_MISSING_PARAMETERS"
    finally:
        del fake_aliyun.templates["SMS_200000"]


@pytest.mark.parametrize(("overrides", "code"), [
    ({"sign_name": "未审核签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
    ({"template_code": "SMS_999"}, "isv.SMS_TEMPLATE_ILLEGAL"),
    ({"access_key_secret": "wrong"}, "SignatureDoesNotMatch"),
    ({"access_key_id": "LTAIunknown"}, "InvalidAccessKeyId.NotFound"),
])
def test_configuration_refusals_are_permanent_with_aliyuns_code(aliyun, fake_aliyun, overrides, code):
    aliyun.configure(fake_aliyun.plugin_settings(callback_token=TOKEN, **overrides))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(aliyun.ctx, sms())
    assert raised.value.code == code and fake_aliyun.effects == []


def test_an_invalid_number_is_permanent_with_a_readable_reason(aliyun, fake_aliyun):
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(aliyun.ctx, sms(to="+86138"))
    assert raised.value.code == "isv.MOBILE_NUMBER_ILLEGAL" and "phone number is not valid" in str(raised.value)


def test_per_number_flow_control_and_qps_are_retryable(plugin_app):
    with FakeAliyunSms(per_number_per_minute=1, qps=100) as fake:
        app = plugin_app(plugin, settings=fake.plugin_settings(), country="CN")
        PROVIDER.send(app.ctx, sms())
        with pytest.raises(RetryableError) as raised:
            PROVIDER.send(app.ctx, sms())
        assert raised.value.code == "isv.BUSINESS_LIMIT_CONTROL" and raised.value.retry_after == 60
        fake.qps = 0
        with pytest.raises(RetryableError) as raised:
            PROVIDER.send(app.ctx, sms(to="+8613900139000"))
        assert raised.value.code == "Throttling.User" and raised.value.retry_after == 1
        assert len(fake.effects) == 1


def test_a_lost_answer_is_checked_against_the_receipts_before_anything_is_resent(aliyun, fake_aliyun):
    message = sms()
    assert PROVIDER.query_status(aliyun.ctx, message) is None
    fake_aliyun.hang_next(1, seconds=5, after=True)
    with pytest.raises(UnknownOutcomeError):
        PROVIDER.send(aliyun.ctx, message)
    fake_aliyun.release()
    found = PROVIDER.query_status(aliyun.ctx, message)
    assert (found.status, found.vendor_message_id) == (DeliveryStatus.sent, message.idempotency_key)
    biz = biz_of(fake_aliyun, message.idempotency_key)
    fake_aliyun.deliver(biz)
    assert PROVIDER.query_status(aliyun.ctx, message).status is DeliveryStatus.delivered
    fake_aliyun.deliver(biz, success=False, err_code="MN:0001")
    failed = PROVIDER.query_status(aliyun.ctx, message)
    assert (failed.status, failed.error_code) == (DeliveryStatus.failed, "MN:0001")
    assert len(fake_aliyun.effects) == 1


def test_receipt_and_reply_pushes_need_the_token(aliyun, fake_aliyun):
    delivered, failed = sms(), sms()
    PROVIDER.send(aliyun.ctx, delivered)
    PROVIDER.send(aliyun.ctx, failed)
    fake_aliyun.deliver(biz_of(fake_aliyun, delivered.idempotency_key))
    fake_aliyun.deliver(biz_of(fake_aliyun, failed.idempotency_key), success=False, err_code="MN:0001")
    body = fake_aliyun.receipt_push(biz_of(fake_aliyun, delivered.idempotency_key),
                                    biz_of(fake_aliyun, failed.idempotency_key))
    basic = {"Authorization": "Basic " + base64.b64encode(f"aliyun:{TOKEN}".encode()).decode()}
    reports, inbound = PROVIDER.parse_callback(aliyun.ctx, basic, body)
    assert inbound == []
    assert [(r.vendor_message_id, r.status, r.error_code) for r in reports] == [
        (delivered.idempotency_key, DeliveryStatus.delivered, None),
        (failed.idempotency_key, DeliveryStatus.failed, "MN:0001")]
    assert reports[0].at is not None and reports[0].at.tzinfo is not None

    reports, inbound = PROVIDER.parse_callback(aliyun.ctx, {"X-Praxis-Callback-Token": TOKEN},
                                               fake_aliyun.reply_push("13800138000", "1"))
    assert reports == [] and [(m.sender, m.body) for m in inbound] == [(PHONE, "1")]

    for headers in ({}, {"X-Praxis-Callback-Token": "guess"},
                    {"Authorization": "Basic " + base64.b64encode(b"aliyun:guess").decode()}):
        with pytest.raises(PermanentError) as raised:
            PROVIDER.parse_callback(aliyun.ctx, headers, body)
        assert raised.value.code == "forged_callback"


def test_connection_check_reports_signature_and_template_review(aliyun, fake_aliyun):
    def check(**overrides: Any) -> ConnectionCheck:
        (result,) = aliyun.call("praxis_test_connection",
                                settings=AliyunSettings(**fake_aliyun.plugin_settings(**overrides)))
        return result.value

    assert check().ok
    fake_aliyun.signs["审核中"] = 0
    try:
        pending = check(sign_name="审核中")
        assert not pending.ok and "under review" in pending.message and pending.details["code"] == "not_approved"
    finally:
        del fake_aliyun.signs["审核中"]
    wrong = check(access_key_secret="wrong")
    assert not wrong.ok and wrong.details["code"] == "SignatureDoesNotMatch"


def test_settings_rules(aliyun):
    def errors(**values: Any) -> list[tuple[str, str]]:
        (result,) = aliyun.call("praxis_validate_settings", settings=AliyunSettings(**values))
        return [(e.field, e.code) for e in result.value]

    assert errors(access_key_id="AK", sign_name="诊所", template_code="SMS_1") == []
    assert errors(access_key_id="AK") == [("sign_name", "required"), ("template_code", "required")]
    assert errors(template_code="1234") == [("template_code", "invalid")]
    assert errors(endpoint="http://dysmsapi.aliyuncs.com") == [("endpoint", "insecure_endpoint")]
