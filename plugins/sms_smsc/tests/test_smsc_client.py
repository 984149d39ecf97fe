"""Unit tests of the wire format (httpx.MockTransport: no sockets) and of the callback hash."""

from __future__ import annotations

import hashlib
import zlib
from urllib.parse import parse_qs

import httpx
import pytest
from praxis_sms_smsc.client import SmscClient, SmscError, client_id, raise_for
from praxis_sms_smsc.provider import delivery_status, hash_callback

from plugin_sdk import PermanentError, RetryableError, UnknownOutcomeError
from plugin_sdk.providers import DeliveryStatus


def client(handler) -> SmscClient:  # type: ignore[no-untyped-def]
    return SmscClient("https://smsc.test/sys/", "clinic", "pw", timeout=1.0, transport=httpx.MockTransport(handler))


def test_client_id_is_stable_and_in_smscs_range():
    assert client_id("k-1") == client_id("k-1") != client_id("k-2")
    ids = {client_id(f"key-{n}") for n in range(2000)}
    assert len(ids) == 2000 and all(1 <= i <= 2_147_483_647 for i in ids)


def test_send_posts_the_documented_form_and_reads_the_json_answer():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": 42, "cnt": 2})

    sent = client(handler).send(phone="+79161234567", text="Запись завтра в 10:00", message_id=42, sender="Praxis")
    assert (sent.id, sent.parts) == (42, 2)
    request = seen[0]
    assert (request.method, request.url.path) == ("POST", "/sys/send.php")
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form == {"login": "clinic", "psw": "pw", "phones": "+79161234567", "mes": "Запись завтра в 10:00",
                    "id": "42", "charset": "utf-8", "fmt": "3", "sender": "Praxis"}


@pytest.mark.parametrize(("code", "kind", "words"), [
    (7, PermanentError, "invalid phone number format"),
    (8, PermanentError, "cannot be delivered"),
    (3, PermanentError, "not enough funds"),
    (2, PermanentError, "invalid login or password"),
    (6, PermanentError, "forbidden"),
    (4, RetryableError, "temporarily blocked"),
    (9, RetryableError, "duplicate"),
])
def test_error_codes_map_to_what_the_outbox_acts_on(code, kind, words):
    answer = client(lambda r: httpx.Response(200, json={"error": "x", "error_code": code}))
    with pytest.raises(SmscError) as raised:
        answer.send(phone="+79161234567", text="x", message_id=1, sender=None)
    with pytest.raises(kind) as mapped:
        raise_for(raised.value)
    assert mapped.value.code == str(code) and words in str(mapped.value)
    if kind is RetryableError:
        assert mapped.value.retry_after == 60


def test_transport_failures():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UnknownOutcomeError):
        client(timeout).send(phone="+79161234567", text="x", message_id=1, sender=None)
    with pytest.raises(RetryableError) as raised:
        client(timeout).status(phone="+79161234567", message_id=1)
    assert raised.value.code == "timeout"
    with pytest.raises(RetryableError) as raised:
        client(refused).send(phone="+79161234567", text="x", message_id=1, sender=None)
    assert raised.value.code == "unreachable"
    with pytest.raises(RetryableError) as raised:
        client(lambda r: httpx.Response(429, headers={"Retry-After": "12"}, text="slow down")).balance()
    assert raised.value.retry_after == 12
    with pytest.raises(RetryableError) as raised:
        client(lambda r: httpx.Response(200, text="<html>maintenance</html>")).balance()
    assert raised.value.code == "bad_response"


def test_status_query_uses_phone_and_id():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"status": 1, "last_timestamp": 1767600000, "err": 0})

    status = client(handler).status(phone="+79161234567", message_id=77)
    assert (status.code, status.name, status.timestamp) == (1, "delivered", 1767600000)
    assert seen[0].url.path == "/sys/status.php"
    assert dict(seen[0].url.params) == {"login": "clinic", "psw": "pw", "phone": "+79161234567", "id": "77",
                                        "fmt": "3", "charset": "utf-8"}


def test_statuses_map_to_delivery_states():
    assert delivery_status(-1) is DeliveryStatus.queued
    assert delivery_status(0) is DeliveryStatus.sent
    assert {delivery_status(c) for c in (1, 2, 4)} == {DeliveryStatus.delivered}
    assert {delivery_status(c) for c in (3, 20, 22, 23, 24, 25, -2)} == {DeliveryStatus.failed}
    assert delivery_status(99) is DeliveryStatus.unknown


def test_callback_hash_follows_the_recipe():
    fields = {"id": "5", "phone": "79161234567", "status": "1", "time": "1767600000", "err": "0"}
    text = "5:79161234567:1:1767600000:0:sec"
    assert hash_callback(fields, "md5", "{id}:{phone}:{status}:{time}:{err}:{secret}", "sec") == \
        hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (SMSC's choice, not ours)
    assert hash_callback(fields, "sha1", "{secret}{id}{status}", "sec") == hashlib.sha1(b"sec51").hexdigest()  # noqa: S324
    assert hash_callback(fields, "crc32", "{id}{missing}{secret}", "sec") == str(zlib.crc32(b"5sec"))
