"""The NHN Cloud (TOAST) SMS API v3.0 (guide: TOAST-DOCS/SMS ko/api-guide.md).

``POST /sms/v3.0/appKeys/{appKey}/sender/sms`` (``/sender/mms`` for LMS, with a ``title``), header
``X-Secret-Key``, JSON ``{"body", "sendNo", "senderGroupingKey", "recipientList": [{"recipientNo", "countryCode",
"internationalRecipientNo", "recipientGroupingKey"}]}``. Answer ``{"header": {"isSuccessful", "resultCode",
"resultMessage"}, "body": {"data": {"requestId", "statusCode", "sendResultList": [{"recipientNo",
"resultCode", "resultMessage", "recipientSeq"}]}}}``; ``statusCode`` 1 requesting, 2 done, 3 failed.

``GET`` on the same path lists sent messages (``requestId``, or a ``startRequestDate``/``endRequestDate`` window
with filters such as ``senderGroupingKey``): ``body.data`` rows carry ``msgStatus`` (1 requested, 2 processing,
3 result received) and ``resultCode`` (``"1000"`` = delivered, EMMA code table).
``GET /sms/v3.0/appKeys/{appKey}/sendNos`` lists the registered sender numbers.

NHN does not deduplicate. The idempotency key travels as ``senderGroupingKey``, so a message whose answer was
lost is found again by it. Negative ``resultCode`` values are NHN's; their exact numbers were not in the stored
guide, so the ones the fake answers (``ERRORS``) are an assumption and every unknown one is treated as permanent
with NHN's own message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from plugin_sdk import http
from plugin_sdk.errors import PermanentError, RetryableError

VENDOR = "NHN Cloud SMS"
USER_AGENT = "praxis-sms-nhn/1.0"
#: resultCode -> (kind, reason). Assumed numbers (see the module docstring); NHN's resultMessage is kept too.
ERRORS: dict[int, str] = {
    -1001: "the app key is not valid",
    -1002: "the secret key is not valid",
    -1003: "a request parameter is missing or invalid",
    -2004: "the recipient number is not valid",
    -2005: "the sender number is not registered (발신번호 사전등록제)",
    -2006: "international SMS is not enabled for this project",
    -2007: "the message is too long or contains characters outside EUC-KR",
    -9998: "NHN Cloud is rate limiting this app key",
    -9999: "internal error at NHN Cloud",
}
RETRYABLE = {-9998, -9999}


@dataclass(frozen=True)
class Accepted:
    request_id: str
    recipient_seq: int | None


@dataclass(frozen=True)
class Row:
    request_id: str
    msg_status: str
    result_code: str | None
    result_name: str | None
    grouping_key: str | None


class NhnError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"NHN Cloud error {code}: {ERRORS.get(code, message)}")
        self.code = code
        self.vendor_message = message


def raise_for(error: NhnError) -> None:
    reason = ERRORS.get(error.code) or error.vendor_message or "unknown error"
    if error.code in RETRYABLE:
        raise RetryableError(f"NHN Cloud: {reason}", code=str(error.code),
                             retry_after=1.0 if error.code == -9998 else None) from error
    raise PermanentError(f"NHN Cloud refused the message: {reason}", code=str(error.code)) from error


class NhnClient:
    def __init__(self, endpoint: str, app_key: str, secret_key: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._base = f"/sms/v3.0/appKeys/{app_key}"
        self._http = httpx.Client(base_url=endpoint.rstrip("/"), timeout=http.timeout(timeout), transport=transport,
                                  headers={"X-Secret-Key": secret_key, "User-Agent": USER_AGENT})

    def __enter__(self) -> NhnClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def send(self, *, kind: str, body: str, send_no: str, recipient: dict[str, str], grouping_key: str,
             title: str | None = None) -> Accepted:
        payload: dict[str, Any] = {"body": body, "sendNo": send_no, "senderGroupingKey": grouping_key,
                                   "recipientList": [{**recipient, "recipientGroupingKey": grouping_key}]}
        if kind == "LMS":
            payload["title"] = title or ""
        data = self._call("POST", self._path(kind), sends=True, json=payload)
        results = data.get("sendResultList") if isinstance(data, dict) else None
        if not isinstance(results, list) or not results or not data.get("requestId"):
            raise RetryableError(f"NHN Cloud answered without a requestId: {str(data)[:200]}", code="bad_response")
        first = results[0]
        code = int(first.get("resultCode") or 0)
        if code != 0:
            raise NhnError(code, str(first.get("resultMessage") or ""))
        return Accepted(str(data["requestId"]), first.get("recipientSeq"))

    def find(self, *, kind: str, grouping_key: str, start: str, end: str) -> list[Row]:
        params = {"startRequestDate": start, "endRequestDate": end, "senderGroupingKey": grouping_key,
                  "pageNum": 1, "pageSize": 15}
        data = self._call("GET", self._path(kind), sends=False, params=params)
        if not isinstance(data, list):
            raise RetryableError(f"NHN Cloud answered the list query with {str(data)[:200]}", code="bad_response")
        return [Row(str(r.get("requestId")), str(r.get("msgStatus")), _opt(r.get("resultCode")),
                    _opt(r.get("resultCodeName")), _opt(r.get("senderGroupingKey"))) for r in data]

    def send_numbers(self) -> list[dict[str, Any]]:
        data = self._call("GET", f"{self._base}/sendNos", sends=False, params={"pageNum": 1, "pageSize": 1000})
        return data if isinstance(data, list) else []

    def _path(self, kind: str) -> str:
        return f"{self._base}/sender/{'sms' if kind == 'SMS' else 'mms'}"

    def _call(self, method: str, path: str, *, sends: bool, **kwargs: Any) -> Any:
        response = http.request(self._http, VENDOR, method, path, sends=sends, **kwargs)
        try:
            answer = response.json()
        except ValueError as exc:
            raise RetryableError(f"NHN Cloud answered HTTP {response.status_code} without JSON",
                                 code="bad_response") from exc
        header = answer.get("header") if isinstance(answer, dict) else None
        if not isinstance(header, dict):
            if response.status_code >= 400:
                raise PermanentError(f"NHN Cloud refused the request with HTTP {response.status_code}",
                                     code=f"http_{response.status_code}")
            raise RetryableError(f"NHN Cloud answered without a header: {str(answer)[:200]}", code="bad_response")
        if not header.get("isSuccessful"):
            raise NhnError(int(header.get("resultCode") or -1), str(header.get("resultMessage") or ""))
        body = answer.get("body") or {}
        return body.get("data") if isinstance(body, dict) else None


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
