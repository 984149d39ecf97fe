"""Request signing and callback authentication of the e签宝 Open API v3 (shared/reference/integrations.md §4.4).

Every request carries::

    X-Tsign-Open-App-Id: <app id>
    X-Tsign-Open-Auth-Mode: Signature
    X-Tsign-Open-Ca-Timestamp: <epoch milliseconds>
    X-Tsign-Open-Ca-Signature: Base64(HMAC-SHA256(app secret, stringToSign))
    Content-MD5: Base64(MD5(raw body))          (of "" for an empty body)
    Accept: */*
    Content-Type: application/json; charset=UTF-8

    stringToSign = METHOD \\n Accept \\n Content-MD5 \\n Content-Type \\n Date ("") \\n PathAndSortedQuery

Callbacks carry ``X-Tsign-Open-TIMESTAMP``, ``X-Tsign-Open-SIGNATURE`` (hex HMAC-SHA256 over timestamp + the
values of the notify URL's query sorted by key + the raw body) and ``X-Tsign-Open-SIGNATURE-ALGORITHM:
hmac-sha256``; callbacks more than 10 minutes off are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

ACCEPT = "*/*"
CONTENT_TYPE = "application/json; charset=UTF-8"
CALLBACK_WINDOW_MS = 10 * 60 * 1000


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324  (the vendor's protocol)


def path_and_sorted_query(path: str, query: str = "") -> str:
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return f"{path}?{urlencode(pairs)}" if pairs else path


def string_to_sign(method: str, path: str, query: str, md5: str, content_type: str = CONTENT_TYPE,
                   accept: str = ACCEPT) -> str:
    return "\n".join([method.upper(), accept, md5, content_type, "", path_and_sorted_query(path, query)])


def request_signature(secret: str, method: str, path: str, query: str, body: bytes,
                      content_type: str = CONTENT_TYPE, accept: str = ACCEPT) -> str:
    text = string_to_sign(method, path, query, content_md5(body), content_type, accept)
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()


def request_headers(app_id: str, secret: str, method: str, path: str, query: str, body: bytes,
                    timestamp_ms: int) -> dict[str, str]:
    return {
        "X-Tsign-Open-App-Id": app_id,
        "X-Tsign-Open-Auth-Mode": "Signature",
        "X-Tsign-Open-Ca-Timestamp": str(timestamp_ms),
        "X-Tsign-Open-Ca-Signature": request_signature(secret, method, path, query, body),
        "Content-MD5": content_md5(body),
        "Accept": ACCEPT,
        "Content-Type": CONTENT_TYPE,
    }


def callback_signature(secret: str, timestamp: str, query: Mapping[str, str], body: bytes) -> str:
    text = timestamp.encode() + "".join(query[k] for k in sorted(query)).encode() + body
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


def check_callback(secret: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes,
                   now_ms: int) -> str | None:
    """Why a callback is not authentic (None when it is)."""
    lower = {k.lower(): v for k, v in headers.items()}
    algorithm = lower.get("x-tsign-open-signature-algorithm", "").lower()
    if algorithm != "hmac-sha256":
        return f"unknown signature algorithm {algorithm or '(none)'}"
    timestamp = lower.get("x-tsign-open-timestamp", "")
    if not timestamp.isdigit():
        return "missing or malformed X-Tsign-Open-TIMESTAMP"
    if abs(now_ms - int(timestamp)) > CALLBACK_WINDOW_MS:
        return "the callback's timestamp is more than 10 minutes off (replayed or delayed)"
    expected = callback_signature(secret, timestamp, query, body)
    if not hmac.compare_digest(expected, lower.get("x-tsign-open-signature", "")):
        return "the callback's signature does not match (forged or altered)"
    return None
