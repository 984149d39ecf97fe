"""Aliyun RPC signature, version 1.0 (HMAC-SHA1), as the POP gateway checks it.

1. Every parameter except ``Signature`` is percent-encoded (RFC 3986: only ``A-Z a-z 0-9 - _ . ~`` stay as they
   are; a space is ``%20``, ``*`` is ``%2A``, ``~`` is kept; UTF-8 bytes), sorted by encoded name and joined as
   ``name=value`` with ``&``.
2. ``StringToSign = METHOD + "&" + enc("/") + "&" + enc(canonical query)``.
3. ``Signature = base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))``.

Each request also carries a fresh ``SignatureNonce`` (replays are refused) and a UTC ``Timestamp``
(``YYYY-MM-DDThh:mm:ssZ``; the gateway refuses one that is too far off).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

VERSION = "2017-05-25"


def percent_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in params.items() if k != "Signature")
    return "&".join(f"{k}={v}" for k, v in pairs)


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def signature(method: str, params: Mapping[str, str], secret: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed(method: str, action: str, params: Mapping[str, str], *, access_key_id: str, secret: str,
           at: datetime, region_id: str = "cn-hangzhou", nonce: str | None = None) -> dict[str, str]:
    """The full parameter set of one call, ``Signature`` included."""
    full = {
        "AccessKeyId": access_key_id, "Action": action, "Format": "JSON", "RegionId": region_id,
        "SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce or str(uuid.uuid4()), "SignatureVersion": "1.0",
        "Timestamp": timestamp(at), "Version": VERSION, **params,
    }
    full["Signature"] = signature(method, full, secret)
    return full
