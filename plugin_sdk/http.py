"""One HTTP request to a vendor, with every transport failure mapped to a plugin_sdk error.

Connectors call ``request(client, "Vendor", "POST", url, sends=True, ...)`` instead of ``client.request``.
``sends=True`` marks a request that may make the vendor act (send a message, place an order): when its answer
is lost after it left (a read timeout, a dropped connection, a 504 from a gateway) the outcome is unknown,
unless the vendor deduplicates a resend. Requests that only read (status, balance) are safe to repeat, so the
same failures are merely retryable. A refused connection never reached the vendor: retryable either way.
A 429 becomes ``RetryableError`` with ``retry_after`` from the vendor's ``Retry-After`` header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from plugin_sdk.errors import RetryableError, UnknownOutcomeError


def timeout(seconds: float) -> httpx.Timeout:
    """The whole budget for reading; connecting gets at most 5 s of it."""
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


def request(http: httpx.Client, vendor: str, method: str, url: str, *, sends: bool, **kwargs: Any) -> httpx.Response:
    try:
        response = http.request(method, url, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise RetryableError(f"{vendor} is unreachable: {exc}", code="unreachable") from exc
    except httpx.TimeoutException as exc:
        if sends:
            raise UnknownOutcomeError(
                f"{vendor} did not answer in time after the message was handed over; it may have been sent"
            ) from exc
        raise RetryableError(f"{vendor} did not answer in time", code="timeout") from exc
    except httpx.TransportError as exc:
        if sends:
            raise UnknownOutcomeError(f"the connection to {vendor} broke after the message was handed over: "
                                      f"{exc}") from exc
        raise RetryableError(f"the connection to {vendor} broke: {exc}", code="connection_lost") from exc
    status = response.status_code
    if status == 429:
        raise RetryableError(f"{vendor} is rate limiting: {_text(response)}", retry_after=retry_after(response),
                             code="rate_limited")
    if status == 504 and sends:
        raise UnknownOutcomeError(f"a gateway in front of {vendor} timed out; the message may have been sent")
    if status >= 500 or status == 408:
        raise RetryableError(f"{vendor} failed with HTTP {status}: {_text(response)}", code=f"http_{status}")
    return response


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (seconds, or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _text(response: httpx.Response) -> str:
    return response.text[:200] or response.reason_phrase
