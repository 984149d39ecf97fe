"""Signature v1 against Aliyun's published vectors, and the request the client sends (httpx.MockTransport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
import pytest
from praxis_sms_aliyun.client import AliyunClient, AliyunError, phone_number, raise_for
from praxis_sms_aliyun.signing import percent_encode, signature, signed, string_to_sign

from plugin_sdk import PermanentError, RetryableError

SMS_DOC_PARAMS = {
    "AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123", "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用", "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466", "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007", "TemplateParam": '{"customer":"test"}', "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}


def test_percent_encoding_follows_the_pop_rules():
    assert percent_encode("a b") == "a%20b"
    assert percent_encode("*") == "%2A"
    assert percent_encode("~-_.") == "~-_."
    assert percent_encode("/=&+:") == "%2F%3D%26%2B%3A"
    assert percent_encode("派") == "%E6%B4%BE"


def test_the_sms_documentation_vector():
    assert string_to_sign("GET", SMS_DOC_PARAMS).startswith(
        "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001"
        "%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF")
    assert signature("GET", SMS_DOC_PARAMS, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert signature("GET", {**SMS_DOC_PARAMS, "Signature": "ignored"}, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_the_rpc_documentation_vector():
    params = {"Format": "XML", "AccessKeyId": "testid", "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
              "Version": "2014-05-26", "Timestamp": "2016-02-23T12:46:24Z"}
    assert signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_signed_adds_the_common_parameters_with_a_fresh_nonce():
    at = datetime(2026, 1, 5, 8, 0, 1, tzinfo=UTC)
    one = signed("POST", "SendSms", {"PhoneNumbers": "13800138000"}, access_key_id="AK", secret="S", at=at)
    two = signed("POST", "SendSms", {"PhoneNumbers": "13800138000"}, access_key_id="AK", secret="S", at=at)
    assert one["Timestamp"] == "2026-01-05T08:00:01Z" and one["Version"] == "2017-05-25"
    assert one["SignatureNonce"] != two["SignatureNonce"] and one["Signature"] != two["Signature"]
    assert one["Signature"] == signature("POST", one, "S")


def test_send_posts_a_signed_form_with_out_id():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"Code": "OK", "Message": "OK", "BizId": "134523^4351232", "RequestId": "r"})

    client = AliyunClient("https://sms.test", "AK", "S", now=lambda: datetime(2026, 1, 5, tzinfo=UTC),
                          transport=httpx.MockTransport(handler))
    assert client.send_sms(phone="13800138000", sign_name="诊所", template_code="SMS_1",
                           template_param='{"content":"明天"}', out_id="key-1") == "134523^4351232"
    form = dict(parse_qsl(seen[0].content.decode()))
    assert (seen[0].method, seen[0].url.path) == ("POST", "/")
    assert {k: form[k] for k in ("Action", "PhoneNumbers", "SignName", "TemplateCode", "OutId")} == {
        "Action": "SendSms", "PhoneNumbers": "13800138000", "SignName": "诊所", "TemplateCode": "SMS_1",
        "OutId": "key-1"}
    assert json.loads(form["TemplateParam"]) == {"content": "明天"}
    assert form["Signature"] == signature("POST", form, "S")


@pytest.mark.parametrize(("code", "message", "kind", "delay"), [
    ("isv.MOBILE_NUMBER_ILLEGAL", "", PermanentError, None),
    ("isv.AMOUNT_NOT_ENOUGH", "", PermanentError, None),
    ("SignatureDoesNotMatch", "", PermanentError, None),
    ("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1", RetryableError, 60),
    ("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5", RetryableError, 3600),
    ("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10", RetryableError, 86400),
    ("Throttling.User", "", RetryableError, 1),
    ("isp.SYSTEM_ERROR", "", RetryableError, None),
])
def test_codes_map_to_what_the_outbox_acts_on(code, message, kind, delay):
    with pytest.raises(kind) as raised:
        raise_for(AliyunError(code, message))
    assert raised.value.code == code
    if kind is RetryableError:
        assert raised.value.retry_after == delay


def test_phone_numbers_in_aliyuns_form():
    assert phone_number("+8613800138000") == "13800138000"
    assert phone_number("008613800138000") == "13800138000"
    assert phone_number("+85212345678") == "85212345678"
