"""The NHN plugin inside a real Praxis against the fake NHN Cloud."""

from __future__ import annotations

import importlib.metadata
import uuid
from typing import Any

import pytest
from praxis_sms_nhn import plugin
from praxis_sms_nhn.fake_server import FakeNhn
from praxis_sms_nhn.settings import NhnSettings

from plugin_sdk import ConnectionCheck, PermanentError, RetryableError, UnknownOutcomeError
from plugin_sdk.providers import DeliveryStatus, OutgoingMessage

PROVIDER = plugin.PROVIDER
PHONE = "+821012345678"


def sms(body: str = "[Praxis] 내일 오전 10시 예약이 있습니다.", to: str = PHONE, **kw: Any) -> OutgoingMessage:
    return OutgoingMessage(channel="sms", to=to, body=body, idempotency_key=kw.pop("key", str(uuid.uuid4())), **kw)


def test_entry_point_manifest_and_default_endpoint(nhn):
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("sms_nhn") == "praxis_sms_nhn.plugin"
    assert (plugin.manifest.category, plugin.manifest.countries) == ("messaging", ("KR",))
    assert plugin.manifest.handles_patient_data and plugin.manifest.secret_fields() == ["secret_key"]
    assert NhnSettings().endpoint == "https://api-sms.cloud.toast.com"
    assert nhn.collect("praxis_messaging_providers") == [[PROVIDER]]


def test_short_messages_go_as_sms_and_long_ones_as_lms_with_a_title(nhn, fake_nhn):
    short = PROVIDER.send(nhn.ctx, sms())
    long = PROVIDER.send(nhn.ctx, sms("가" * 46, subject="예약 안내"))
    assert fake_nhn.messages[short.vendor_message_id]["messageType"] == "SMS"
    stored = fake_nhn.messages[long.vendor_message_id]
    assert (stored["messageType"], stored["title"], stored["recipientNo"]) == ("LMS", "예약 안내", "01012345678")
    no_subject = PROVIDER.send(nhn.ctx, sms("A" * 91))
    assert fake_nhn.messages[no_subject.vendor_message_id]["title"] == "안내"  # the lms_title setting


def test_what_korean_sms_cannot_carry_is_refused_before_sending(nhn, fake_nhn):
    for body, code in (("예약 😀", "unsupported_character"), ("가" * 1001, "too_long")):
        with pytest.raises(PermanentError) as raised:
            PROVIDER.send(nhn.ctx, sms(body))
        assert raised.value.code == code
    assert fake_nhn.requests == []


def test_an_unregistered_sender_number_is_refused_by_nhn(nhn, fake_nhn):
    nhn.configure(fake_nhn.plugin_settings(send_no="0212345678"))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(nhn.ctx, sms())
    assert raised.value.code == "-2005" and "not registered" in str(raised.value)
    assert fake_nhn.effects == []


def test_international_numbers_need_the_setting_and_the_project_option(nhn, fake_nhn):
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(nhn.ctx, sms(to="+36201234567"))
    assert raised.value.code == "international_disabled" and fake_nhn.requests == []
    nhn.configure(fake_nhn.plugin_settings(allow_international=True))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(nhn.ctx, sms(to="+36201234567"))
    assert raised.value.code == "-2006"
    fake_nhn.international = True
    try:
        assert PROVIDER.send(nhn.ctx, sms(to="+36201234567")).vendor_message_id
    finally:
        fake_nhn.international = False


def test_wrong_secret_key_is_permanent(nhn, fake_nhn):
    nhn.configure(fake_nhn.plugin_settings(secret_key="nope"))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(nhn.ctx, sms())
    assert raised.value.code == "-1002"


def test_the_rate_limit_is_retryable_after_its_delay(plugin_app):
    with FakeNhn(rate_limit=1) as fake:
        app = plugin_app(plugin, settings=fake.plugin_settings(), country="KR")
        PROVIDER.send(app.ctx, sms())
        with pytest.raises(RetryableError) as raised:
            PROVIDER.send(app.ctx, sms())
        assert raised.value.retry_after == 1 and len(fake.effects) == 1


def test_a_lost_answer_is_found_again_by_the_grouping_key_and_results_follow(nhn, fake_nhn):
    message = sms()
    assert PROVIDER.query_status(nhn.ctx, message) is None
    fake_nhn.hang_next(1, seconds=5, after=True, method="POST")
    with pytest.raises(UnknownOutcomeError):
        PROVIDER.send(nhn.ctx, message)
    fake_nhn.release()
    found = PROVIDER.query_status(nhn.ctx, message)
    assert found.status is DeliveryStatus.queued and found.vendor_message_id in fake_nhn.messages
    fake_nhn.set_result(found.vendor_message_id, "3", "1000", "성공")
    assert PROVIDER.query_status(nhn.ctx, message).status is DeliveryStatus.delivered
    fake_nhn.set_result(found.vendor_message_id, "3", "3015", "결번")
    failed = PROVIDER.query_status(nhn.ctx, message)
    assert (failed.status, failed.error_code) == (DeliveryStatus.failed, "3015")
    assert len(fake_nhn.effects) == 1


def test_connection_check_lists_sender_numbers(nhn, fake_nhn):
    def check(**overrides: Any) -> ConnectionCheck:
        (result,) = nhn.call("praxis_test_connection", settings=NhnSettings(**fake_nhn.plugin_settings(**overrides)))
        return result.value

    ok = check()
    assert ok.ok and "15446859" in ok.message
    unregistered = check(send_no="0212345678")
    assert not unregistered.ok and unregistered.details["code"] == "unregistered_sender"
    assert "registered: 15446859" in unregistered.message
    wrong = check(secret_key="nope")
    assert not wrong.ok and wrong.details["code"] == "-1002"


def test_settings_rules(nhn):
    def errors(**values: Any) -> list[tuple[str, str]]:
        (result,) = nhn.call("praxis_validate_settings", settings=NhnSettings(**values))
        return [(e.field, e.code) for e in result.value]

    assert errors(app_key="AK1", send_no="1544-6859") == []
    assert errors(app_key="AK1") == [("send_no", "required")]
    assert errors(send_no="12") == [("send_no", "invalid")]
    assert errors(lms_title="안내 😀") == [("lms_title", "unsupported_character")]
    assert errors(lms_title="가" * 21) == [("lms_title", "too_long")]
    assert errors(endpoint="http://api-sms.cloud.toast.com") == [("endpoint", "insecure_endpoint")]
