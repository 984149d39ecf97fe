"""plugin_sdk.http: how a vendor's HTTP failures become retryable, permanent-free and unknown outcomes."""

from __future__ import annotations

import httpx
import pytest

from plugin_sdk import http
from plugin_sdk.errors import RetryableError, UnknownOutcomeError


def client(handler) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_success_passes_through():
    answer = http.request(client(lambda r: httpx.Response(200, json={"id": 1})), "Acme", "GET", "http://v/x",
                          sends=True)
    assert answer.json() == {"id": 1}


def test_rate_limit_is_retryable_after_the_vendors_delay():
    with pytest.raises(RetryableError) as caught:
        http.request(client(lambda r: httpx.Response(429, headers={"Retry-After": "7"})), "Acme", "POST",
                     "http://v/send", sends=True)
    assert caught.value.retry_after == 7.0 and caught.value.code == "rate_limited"


def test_server_errors_are_retryable_but_a_gateway_timeout_after_sending_is_unknown():
    with pytest.raises(RetryableError, match="HTTP 503"):
        http.request(client(lambda r: httpx.Response(503)), "Acme", "POST", "http://v/send", sends=True)
    with pytest.raises(UnknownOutcomeError, match="may have been sent"):
        http.request(client(lambda r: httpx.Response(504)), "Acme", "POST", "http://v/send", sends=True)
    with pytest.raises(RetryableError):
        http.request(client(lambda r: httpx.Response(504)), "Acme", "GET", "http://v/status", sends=False)


def test_read_timeout_is_unknown_only_for_requests_that_make_the_vendor_act():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(UnknownOutcomeError):
        http.request(client(slow), "Acme", "POST", "http://v/send", sends=True)
    with pytest.raises(RetryableError, match="did not answer in time"):
        http.request(client(slow), "Acme", "GET", "http://v/status", sends=False)


def test_refused_connection_is_retryable_either_way():
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(RetryableError) as caught:
        http.request(client(refused), "Acme", "POST", "http://v/send", sends=True)
    assert caught.value.code == "unreachable"


def test_retry_after_as_an_http_date():
    response = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert http.retry_after(response) == 0.0
    assert http.retry_after(httpx.Response(429)) is None
