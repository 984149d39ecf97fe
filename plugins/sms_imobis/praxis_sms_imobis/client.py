"""The Imobis API v3: JSON over HTTPS, ``Authorization: Token <uuid>``.

Confirmed (developers.imobis.ru): the base URL, the JSON/UTF-8 format, the token header, ``daydelivery``.
Taken from Imobis's own PHP SDK (imobis/sdk, second-hand): ``POST message/sendSMS`` with ``sender, phone (digits),
text, ttl, custom_id, daydelivery`` answering ``{"result": "success", "id": "<uuid>", "status": "accepted"}`` or
``{"result": "error", "desc": "Invalid sender"}``; ``POST balance``; the statuses ``accepted, sent, delivered, read,
rejected, undelivered, expired, deleted, error, unknown``. Assumed (no source found): ``POST message/status`` with
``{"custom_id": ...}`` answering ``{"result": "success", "data": [{"id", "custom_id", "status", "error"}]}``, the
balance answer's fields, and HTTP 429 + ``Retry-After`` for the rate limit. All paths are relative to the
``endpoint`` setting, so they can be corrected without code if the real API differs.

Imobis does not deduplicate; ``custom_id`` carries the idempotency key so the status query can find a message whose
answer was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from plugin_sdk import http
from plugin_sdk.errors import PermanentError, RetryableError

VENDOR = "Imobis"
USER_AGENT = "praxis-sms-imobis/1.0"
#: Words in ``desc`` -> our code (first match wins); the text itself is kept as the reason.
CLASSES: list[tuple[tuple[str, ...], str]] = [
    (("sender",), "invalid_sender"),
    (("phone", "number"), "invalid_recipient"),
    (("balance", "funds"), "insufficient_funds"),
    (("token", "unauthori"), "unauthorized"),
    (("text",), "invalid_text"),
]


def classify(desc: str) -> str:
    lowered = desc.lower()
    return next((code for words, code in CLASSES if any(w in lowered for w in words)), "rejected")


@dataclass(frozen=True)
class Sent:
    id: str
    status: str
    error: str | None = None


class ImobisClient:
    def __init__(self, endpoint: str, token: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=endpoint.rstrip("/") + "/", timeout=http.timeout(timeout),
                                  transport=transport,
                                  headers={"Authorization": f"Token {token}", "User-Agent": USER_AGENT})

    def __enter__(self) -> ImobisClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def send_sms(self, *, sender: str, phone: str, text: str, custom_id: str, ttl: int, day_delivery: bool) -> Sent:
        body = self._call("message/sendSMS", {"sender": sender, "phone": phone, "text": text, "custom_id": custom_id,
                                              "ttl": ttl, "daydelivery": day_delivery}, sends=True)
        if not body.get("id"):
            raise RetryableError(f"Imobis answered without a message id: {str(body)[:200]}", code="bad_response")
        return Sent(str(body["id"]), str(body.get("status") or "accepted"))

    def status(self, custom_id: str) -> list[Sent]:
        body = self._call("message/status", {"custom_id": custom_id}, sends=False)
        rows = body.get("data") or []
        return [Sent(str(r["id"]), str(r.get("status") or "unknown"), r.get("error") or None)
                for r in rows if isinstance(r, dict) and r.get("id")]

    def balance(self) -> dict[str, Any]:
        return self._call("balance", {}, sends=False)

    def _call(self, path: str, payload: dict[str, Any], *, sends: bool) -> dict[str, Any]:
        response = http.request(self._http, VENDOR, "POST", path, sends=sends, json=payload)
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError(f"Imobis answered HTTP {response.status_code} without JSON",
                                 code="bad_response") from exc
        if response.status_code == 401:
            raise PermanentError("Imobis refused the API token", code="unauthorized")
        if not isinstance(body, dict):
            raise RetryableError(f"Imobis answered {str(body)[:200]}", code="bad_response")
        if body.get("result") == "error" or response.status_code >= 400:
            desc = body.get("desc")
            text = "; ".join(map(str, desc)) if isinstance(desc, list) else str(desc or f"HTTP {response.status_code}")
            raise PermanentError(f"Imobis refused the request: {text}", code=classify(text))
        return body
