"""A fake NHN Cloud SMS API v3.0 on 127.0.0.1 for tests (this plugin's and the reminder engine's).

Models: the app key in the path and ``X-Secret-Key``; pre-registered sender numbers (an unregistered ``sendNo`` is
refused); EUC-KR byte limits (SMS 90 bytes on ``/sender/sms``, LMS 2000 bytes with a 40-byte title on
``/sender/mms``, characters outside EUC-KR refused); Korean number format per recipient; international numbers only
when enabled; a requests-per-second limit answered with HTTP 429 + ``Retry-After``; the list query by date window
and ``senderGroupingKey``; delivery results moved on by the test (``set_result``). Every accepted message is one
entry in ``effects``. The negative result codes are the assumed ones in ``client.ERRORS``.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from plugin_sdk.testing import FakeServer
from praxis_sms_nhn.client import ERRORS
from praxis_sms_nhn.encoding import LMS_MAX_BYTES, SMS_MAX_BYTES, TITLE_MAX_BYTES, byte_length, unsupported

KST = ZoneInfo("Asia/Seoul")
KOREAN_NUMBER = re.compile(r"^0(1[016789]\d{7,8}|[2-6]\d{7,9}|[5-8]0\d{7,9})$")
STAMP = "%Y-%m-%d %H:%M:%S"


def _kst(value: str) -> datetime:
    return datetime.strptime(value, STAMP).replace(tzinfo=KST)


def _header(code: int = 0, message: str = "SUCCESS") -> dict[str, Any]:
    return {"isSuccessful": code == 0, "resultCode": code, "resultMessage": message}


class FakeNhn(FakeServer):
    def __init__(self, *, app_key: str = "AppKey123", secret_key: str = "secret-xyz",
                 send_nos: tuple[str, ...] = ("15446859",), international: bool = False,
                 rate_limit: int | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.app_key, self.secret_key = app_key, secret_key
        self.send_nos = set(send_nos)
        self.international = international
        self.rate_limit = rate_limit
        self.clock = clock or (lambda: datetime.now(UTC))
        self.messages: dict[str, dict[str, Any]] = {}
        self._hits: list[float] = []
        self._state = threading.Lock()
        super().__init__()

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        return {"endpoint": self.base_url, "app_key": self.app_key, "secret_key": self.secret_key,
                "send_no": sorted(self.send_nos)[0], "timeout_seconds": 0.5, **overrides}

    def set_result(self, request_id: str, msg_status: str, result_code: str | None = None,
                   result_name: str | None = None) -> None:
        with self._state:
            self.messages[request_id].update(msgStatus=msg_status, resultCode=result_code,
                                             resultCodeName=result_name)

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Fake NHN Cloud SMS v3.0")

        def fail(code: int, status: int = 200) -> JSONResponse:
            return JSONResponse({"header": _header(code, ERRORS[code]), "body": None}, status)

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Any:
            match = re.match(r"^/sms/v3\.0/appKeys/([^/]+)/", request.url.path)
            if not match or match.group(1) != self.app_key:
                return fail(-1001)
            if request.headers.get("x-secret-key") != self.secret_key:
                return fail(-1002)
            if self.rate_limit is not None:
                with self._state:
                    now = time.monotonic()
                    self._hits = [t for t in self._hits if now - t < 1.0]
                    if len(self._hits) >= self.rate_limit:
                        return JSONResponse({"header": _header(-9998, ERRORS[-9998])}, 429,
                                            headers={"Retry-After": "1"})
                    self._hits.append(now)
            return await call_next(request)

        @app.post("/sms/v3.0/appKeys/{app_key}/sender/{kind}")
        async def send(kind: str, request: Request) -> JSONResponse:
            try:
                payload = await request.json()
            except ValueError:
                return fail(-1003)
            return self._send(kind, payload, fail)

        @app.get("/sms/v3.0/appKeys/{app_key}/sender/{kind}")
        def listing(kind: str, request: Request) -> JSONResponse:
            q = request.query_params
            if not q.get("requestId") and not (q.get("startRequestDate") and q.get("endRequestDate")):
                return fail(-1003)
            try:
                start = _kst(q["startRequestDate"]) if q.get("startRequestDate") else None
                end = _kst(q["endRequestDate"]) if q.get("endRequestDate") else None
            except ValueError:
                return fail(-1003)
            with self._state:
                rows = [m for m in self.messages.values() if m["kind"] == kind
                        and (not q.get("requestId") or m["requestId"] == q["requestId"])
                        and (not q.get("senderGroupingKey") or m["senderGroupingKey"] == q["senderGroupingKey"])
                        and (start is None or _kst(m["requestDate"]) >= start)
                        and (end is None or _kst(m["requestDate"]) <= end)]
                data = [{k: v for k, v in m.items() if k != "kind"} for m in rows]
            return JSONResponse({"header": _header(), "body": {"pageNum": 1, "pageSize": 15,
                                                               "totalCount": len(data), "data": data}})

        @app.get("/sms/v3.0/appKeys/{app_key}/sendNos")
        def send_nos() -> JSONResponse:
            data = [{"sendNo": n, "useYn": "Y", "blockYn": "N"} for n in sorted(self.send_nos)]
            return JSONResponse({"header": _header(), "body": {"pageNum": 1, "totalCount": len(data), "data": data}})

        return app

    def _send(self, kind: str, p: Any, fail: Callable[..., JSONResponse]) -> JSONResponse:
        if kind not in ("sms", "mms") or not isinstance(p, dict):
            return fail(-1003)
        body, recipients = p.get("body"), p.get("recipientList")
        if not isinstance(body, str) or not body or not isinstance(recipients, list) \
                or not 1 <= len(recipients) <= 1000:
            return fail(-1003)
        if p.get("sendNo") not in self.send_nos:
            return fail(-2005)
        title = p.get("title") or ""
        limit = SMS_MAX_BYTES if kind == "sms" else LMS_MAX_BYTES
        if unsupported(body + title) or byte_length(body) > limit or byte_length(title) > TITLE_MAX_BYTES:
            return fail(-2007)
        if kind == "mms" and not title:
            return fail(-1003)
        request_id = self.clock().astimezone(KST).strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:11]
        results = []
        with self._state:
            for seq, r in enumerate(recipients, start=1):
                number, code = self._number(r)
                results.append({"recipientNo": number, "resultCode": code,
                                "resultMessage": "SUCCESS" if code == 0 else ERRORS[code], "recipientSeq": seq,
                                "recipientGroupingKey": r.get("recipientGroupingKey")})
                if code == 0:
                    self.messages[request_id] = {
                        "requestId": request_id, "requestDate": self.clock().astimezone(KST).strftime(STAMP),
                        "body": body, "title": title or None, "sendNo": p["sendNo"], "recipientNo": number,
                        "msgStatus": "1", "resultCode": None, "resultCodeName": None, "recipientSeq": seq,
                        "senderGroupingKey": p.get("senderGroupingKey"), "kind": kind,
                        "messageType": "SMS" if kind == "sms" else "LMS"}
                    self.record_effect(request_id)
        status = "2" if any(r["resultCode"] == 0 for r in results) else "3"
        return JSONResponse({"header": _header(), "body": {"data": {
            "requestId": request_id, "statusCode": status, "senderGroupingKey": p.get("senderGroupingKey"),
            "sendResultList": results}}})

    def _number(self, r: Any) -> tuple[str, int]:
        if not isinstance(r, dict):
            return "", -1003
        if r.get("recipientNo"):
            number = str(r["recipientNo"])
            return number, 0 if KOREAN_NUMBER.match(number) else -2004
        international = str(r.get("internationalRecipientNo") or "")
        if not re.fullmatch(r"[1-9]\d{7,14}", international):
            return international, -2004
        return international, 0 if self.international else -2006
