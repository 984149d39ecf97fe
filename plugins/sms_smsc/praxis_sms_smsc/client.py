"""The SMSC.ru HTTP API (https://smscentre.com/api/http), JSON answers (``fmt=3``), UTF-8 texts.

``send.php``  form ``login, psw, phones, mes, id, sender, charset=utf-8, fmt=3`` ->
              ``{"id": 123, "cnt": 1}`` or ``{"error": "...", "error_code": N}``.
``status.php`` ``login, psw, phone, id, fmt=3`` -> ``{"status": S, "last_timestamp": T, "err": E}``;
              ``status = -3`` means SMSC has no such message.
``balance.php`` ``login, psw, fmt=3`` -> ``{"balance": "12.34", "currency": "RUR"}``.

The message ``id`` is ours: SMSC accepts a client id (1..2147483647) and the status of a message is asked for by
phone and that id, so the id is derived from the idempotency key and a send whose answer was lost can be looked
up. SMSC does not deduplicate by it: only a byte-identical request within a minute is refused (error 9).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx

from plugin_sdk import http
from plugin_sdk.errors import PermanentError, RetryableError

VENDOR = "SMSC"
USER_AGENT = "praxis-sms-smsc/1.0"
MAX_CLIENT_ID = 2_147_483_647
#: How long SMSC blocks an IP after frequent errors (error 4), and its duplicate window (error 9): a minute.
BLOCK_SECONDS = 60.0

#: send.php error codes (docs list them; the meaning is SMSC's).
SEND_ERRORS: dict[int, str] = {
    1: "parameter error in the request",
    2: "invalid login or password (or the request came from an IP not allowed in the account)",
    3: "not enough funds on the SMSC account",
    4: "the IP address is temporarily blocked by SMSC after frequent errors",
    5: "invalid date format",
    6: "message forbidden by SMSC (its text or the sender name)",
    7: "invalid phone number format",
    8: "the message cannot be delivered to this number",
    9: "duplicate request: the same message was sent less than a minute ago",
}
RETRYABLE_ERRORS = {4, 9}

#: status.php states.
STATUS_NAMES: dict[int, str] = {
    -3: "not found", -2: "stopped", -1: "waiting to be sent", 0: "handed to the operator", 1: "delivered",
    2: "read", 3: "expired", 4: "link clicked", 20: "undeliverable", 22: "invalid number", 23: "forbidden",
    24: "insufficient funds", 25: "unavailable number",
}
FINAL_STATES = {1, 2, 3, 4, 20, 22, 23, 24, 25}


def client_id(idempotency_key: str) -> int:
    """The SMSC message id for an idempotency key: stable, in 1..2147483647."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % MAX_CLIENT_ID + 1


class SmscError(Exception):
    """An ``{"error": ..., "error_code": N}`` answer."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"SMSC error {code}: {SEND_ERRORS.get(code, text)}")
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Sent:
    id: int
    parts: int


@dataclass(frozen=True)
class Status:
    code: int
    timestamp: int | None
    err: int | None

    @property
    def name(self) -> str:
        return STATUS_NAMES.get(self.code, f"status {self.code}")


class SmscClient:
    """One connection pool to SMSC. ``transport`` lets unit tests answer with ``httpx.MockTransport``."""

    def __init__(self, endpoint: str, login: str, password: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._auth = {"login": login, "psw": password}
        self._http = httpx.Client(base_url=endpoint.rstrip("/") + "/", timeout=http.timeout(timeout),
                                  headers={"User-Agent": USER_AGENT}, transport=transport)

    def __enter__(self) -> SmscClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def send(self, *, phone: str, text: str, message_id: int, sender: str | None) -> Sent:
        form: dict[str, Any] = {**self._auth, "phones": phone, "mes": text, "id": message_id, "charset": "utf-8",
                                "fmt": 3}
        if sender:
            form["sender"] = sender
        body = self._call("POST", "send.php", sends=True, data=form)
        try:
            return Sent(int(body["id"]), int(body.get("cnt") or 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise RetryableError(f"SMSC answered send.php without an id: {str(body)[:200]}",
                                 code="bad_response") from exc

    def status(self, *, phone: str, message_id: int) -> Status:
        params = {**self._auth, "phone": phone, "id": message_id, "fmt": 3, "charset": "utf-8"}
        body = self._call("GET", "status.php", sends=False, params=params)
        try:
            code = int(body["status"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RetryableError(f"SMSC answered status.php without a status: {str(body)[:200]}",
                                 code="bad_response") from exc
        stamp, err = body.get("last_timestamp"), body.get("err")
        return Status(code, int(stamp) if stamp not in (None, "") else None,
                      int(err) if err not in (None, "") else None)

    def balance(self) -> dict[str, Any]:
        return self._call("GET", "balance.php", sends=False, params={**self._auth, "fmt": 3})

    def _call(self, method: str, path: str, *, sends: bool, **kwargs: Any) -> dict[str, Any]:
        response = http.request(self._http, VENDOR, method, path, sends=sends, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError(f"SMSC answered {path} with HTTP {response.status_code} and no JSON",
                                 code="bad_response") from exc
        if response.status_code >= 400 and not (isinstance(body, dict) and "error_code" in body):
            raise PermanentError(f"SMSC refused {path} with HTTP {response.status_code}",
                                 code=f"http_{response.status_code}")
        if not isinstance(body, dict):
            raise RetryableError(f"SMSC answered {path} with {str(body)[:200]}", code="bad_response")
        if "error_code" in body:
            try:
                code = int(body["error_code"])
            except (TypeError, ValueError):
                code = 0
            raise SmscError(code, str(body.get("error") or ""))
        return body


def raise_for(error: SmscError) -> None:
    """Turn an SMSC error code into what the outbox acts on."""
    reason = SEND_ERRORS.get(error.code, error.text or "unknown error")
    if error.code == 4:
        raise RetryableError(f"SMSC: {reason}", retry_after=BLOCK_SECONDS, code="4") from error
    if error.code == 9:
        raise RetryableError(f"SMSC: {reason}", retry_after=BLOCK_SECONDS, code="9") from error
    raise PermanentError(f"SMSC refused the message: {reason}", code=str(error.code)) from error
