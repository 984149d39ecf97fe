"""EUC-KR byte counting, recipient fields and the request NHN receives (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest
from praxis_sms_nhn.client import NhnClient, NhnError, Row, raise_for
from praxis_sms_nhn.encoding import byte_length, clip, measure
from praxis_sms_nhn.provider import recipient, row_result

from plugin_sdk import PermanentError, RetryableError
from plugin_sdk.providers import DeliveryStatus


def test_bytes_are_counted_as_korean_carriers_do():
    assert byte_length("가") == 2 and byte_length("A") == 1 and byte_length("똠") == 2  # beyond KS X 1001's 2,350
    assert measure("가" * 45).kind == "SMS"  # 90 bytes: 45 Hangul syllables
    assert measure("가" * 45 + "A") == measure("가" * 45 + "A")
    assert measure("가" * 45 + "A").kind == "LMS"
    assert measure("A" * 90).kind == "SMS" and measure("A" * 2000).kind == "LMS"
    with pytest.raises(PermanentError) as raised:
        measure("가" * 1001)
    assert raised.value.code == "too_long" and "2002 bytes" in str(raised.value)


def test_characters_outside_euc_kr_are_refused_naming_them():
    with pytest.raises(PermanentError) as raised:
        measure("예약 확인 😀 Kovács")
    assert raised.value.code == "unsupported_character"
    assert "U+1F600" in str(raised.value) and "U+00E1" in str(raised.value)
    with pytest.raises(PermanentError):
        measure("   ")
    assert clip("가나다라😀마", 7) == "가나다"


def test_recipient_fields():
    assert recipient("+821012345678", allow_international=False) == {"recipientNo": "01012345678",
                                                                      "countryCode": "82"}
    assert recipient("010-1234-5678", allow_international=False) == {"recipientNo": "01012345678"}
    assert recipient("+36201234567", allow_international=True) == {"internationalRecipientNo": "36201234567"}
    with pytest.raises(PermanentError) as raised:
        recipient("+36201234567", allow_international=False)
    assert raised.value.code == "international_disabled"


def test_send_request_format_and_per_recipient_errors():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={
            "header": {"isSuccessful": True, "resultCode": 0, "resultMessage": "SUCCESS"},
            "body": {"data": {"requestId": "R1", "statusCode": "2", "sendResultList": [
                {"recipientNo": "01012345678", "resultCode": 0, "resultMessage": "SUCCESS", "recipientSeq": 1}]}}})

    client = NhnClient("https://nhn.test", "AK", "SK", transport=httpx.MockTransport(handler))
    accepted = client.send(kind="LMS", body="본문", send_no="15446859", grouping_key="key-1", title="안내",
                           recipient={"recipientNo": "01012345678", "countryCode": "82"})
    assert accepted.request_id == "R1"
    request = seen[0]
    assert request.url.path == "/sms/v3.0/appKeys/AK/sender/mms" and request.headers["X-Secret-Key"] == "SK"
    assert json.loads(request.content) == {
        "body": "본문", "sendNo": "15446859", "senderGroupingKey": "key-1", "title": "안내",
        "recipientList": [{"recipientNo": "01012345678", "countryCode": "82", "recipientGroupingKey": "key-1"}]}

    def refused(request):
        return httpx.Response(200, json={"header": {"isSuccessful": True, "resultCode": 0}, "body": {"data": {
            "requestId": "R2", "sendResultList": [{"resultCode": -2004, "resultMessage": "invalid"}]}}})

    with pytest.raises(NhnError) as raised:
        NhnClient("https://nhn.test", "AK", "SK", transport=httpx.MockTransport(refused)).send(
            kind="SMS", body="x", send_no="1", recipient={"recipientNo": "010"}, grouping_key="k")
    with pytest.raises(PermanentError) as mapped:
        raise_for(raised.value)
    assert mapped.value.code == "-2004" and "recipient number is not valid" in str(mapped.value)
    with pytest.raises(RetryableError):
        raise_for(NhnError(-9999, "internal"))


def test_list_rows_map_to_delivery_states():
    assert row_result(Row("R", "1", None, None, "k")).status is DeliveryStatus.queued
    assert row_result(Row("R", "2", None, None, "k")).status is DeliveryStatus.sent
    assert row_result(Row("R", "3", "1000", "성공", "k")).status is DeliveryStatus.delivered
    failed = row_result(Row("R", "3", "3015", "결번", "k"))
    assert (failed.status, failed.error_code, failed.error_message) == (DeliveryStatus.failed, "3015",
                                                                         "NHN Cloud: 결번")
