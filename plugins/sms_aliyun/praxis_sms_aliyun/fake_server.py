"""A fake Aliyun Dysmsapi (2017-05-25) on 127.0.0.1 for tests (this plugin's and the reminder engine's).

It checks what the POP gateway checks: the AccessKey, the HMAC-SHA1 signature (``SignatureDoesNotMatch``), a
fresh ``SignatureNonce`` (``SignatureNonceUsed``) and a ``Timestamp`` within 15 minutes (``InvalidTimeStamp.
Expired``). ``SendSms`` refuses unapproved signatures and templates, missing template variables, bad JSON, over-long
variables, invalid numbers, and applies the per-number flow control (``isv.BUSINESS_LIMIT_CONTROL``) and a QPS
limit (``Throttling.User``). ``QuerySendDetails`` answers by number and day; ``deliver`` moves a message on as the
carrier receipt would; ``receipt_push``/``reply_push`` build the HTTP pushes Aliyun makes. Every accepted message
is one entry in ``effects``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from plugin_sdk.testing import FakeServer
from praxis_sms_aliyun.signing import signature

CST = ZoneInfo("Asia/Shanghai")
MAINLAND = re.compile(r"^1[3-9]\d{9}$")
VARIABLE = re.compile(r"\$\{(\w+)\}")


class FakeAliyunSms(FakeServer):
    def __init__(self, *, access_key_id: str = "LTAI5tTestKey", secret: str = "test-secret",
                 signs: dict[str, int] | None = None, templates: dict[str, tuple[str, int]] | None = None,
                 per_number_per_minute: int | None = None, per_number_per_day: int = 50, qps: int | None = None,
                 param_limit: int = 500, clock: Callable[[], datetime] | None = None) -> None:
        self.access_key_id, self.secret = access_key_id, secret
        self.signs = signs if signs is not None else {"普拉克西斯诊所": 1}
        self.templates = templates if templates is not None else {"SMS_153055065": ("您好，${content}", 1)}
        self.per_number_per_minute = per_number_per_minute
        self.per_number_per_day = per_number_per_day
        self.qps = qps
        self.param_limit = param_limit
        self.clock = clock or (lambda: datetime.now(UTC))
        self.messages: dict[str, dict[str, Any]] = {}
        self._nonces: set[str] = set()
        self._hits: list[float] = []
        self._seq = 100000
        self._state = threading.Lock()
        super().__init__()

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        return {"endpoint": self.base_url, "access_key_id": self.access_key_id, "access_key_secret": self.secret,
                "sign_name": next(iter(self.signs)), "template_code": next(iter(self.templates)),
                "timeout_seconds": 1.0, **overrides}

    def deliver(self, biz_id: str, *, success: bool = True, err_code: str = "DELIVERED") -> None:
        with self._state:
            self.messages[biz_id].update(SendStatus=3 if success else 2, ErrCode=err_code if success or
                                         err_code != "DELIVERED" else "MK:0001",
                                         ReceiveDate=self.clock().astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"))

    def receipt_push(self, *biz_ids: str) -> bytes:
        items = []
        for biz_id in biz_ids:
            m = self.messages[biz_id]
            items.append({"phone_number": m["PhoneNum"], "send_time": m["SendDate"],
                          "report_time": m.get("ReceiveDate") or m["SendDate"], "success": m["SendStatus"] == 3,
                          "err_code": m["ErrCode"], "err_msg": "用户接收成功" if m["SendStatus"] == 3 else "失败",
                          "sms_size": "1", "biz_id": biz_id, "out_id": m["OutId"]})
        return json.dumps(items, ensure_ascii=False).encode()

    def reply_push(self, phone: str, content: str, *, sign_name: str | None = None) -> bytes:
        return json.dumps([{"phone_number": phone, "send_time": self.clock().astimezone(CST).strftime(
            "%Y-%m-%d %H:%M:%S"), "content": content, "sign_name": sign_name or next(iter(self.signs)),
            "dest_code": "1234", "sequence_id": 1234567890}], ensure_ascii=False).encode()

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Fake Aliyun Dysmsapi")

        @app.api_route("/", methods=["GET", "POST"])
        async def rpc(request: Request) -> JSONResponse:
            params = dict(request.query_params)
            if request.method == "POST":
                params.update({k: str(v) for k, v in (await request.form()).items()})
            status, body = self._handle(request.method, params)
            body.setdefault("RequestId", f"FAKE-{time.monotonic_ns()}")
            return JSONResponse(body, status)

        return app

    def _handle(self, method: str, p: dict[str, str]) -> tuple[int, dict[str, Any]]:
        for name in ("AccessKeyId", "Action", "Signature", "SignatureNonce", "Timestamp", "Version"):
            if not p.get(name):
                return 400, {"Code": f"MissingParameter.{name}", "Message": f"{name} is mandatory"}
        if p["AccessKeyId"] != self.access_key_id:
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."}
        if p["Signature"] != signature(method, p, self.secret):
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched."}
        try:
            at = datetime.strptime(p["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return 400, {"Code": "InvalidTimeStamp.Format", "Message": "Specified time stamp is not valid."}
        if abs(at - self.clock()) > timedelta(minutes=15):
            return 400, {"Code": "InvalidTimeStamp.Expired", "Message": "Specified time stamp or date is expired."}
        with self._state:
            if p["SignatureNonce"] in self._nonces:
                return 400, {"Code": "SignatureNonceUsed", "Message": "Specified signature nonce was used already."}
            self._nonces.add(p["SignatureNonce"])
            if self.qps is not None:
                now = time.monotonic()
                self._hits = [t for t in self._hits if now - t < 1.0]
                if len(self._hits) >= self.qps:
                    return 400, {"Code": "Throttling.User", "Message": "Request was denied due to user flow control."}
                self._hits.append(now)
            action = p["Action"]
            if action == "SendSms":
                return 200, self._send(p)
            if action == "QuerySendDetails":
                return 200, self._details(p)
            if action == "QuerySmsSign":
                state = self.signs.get(p.get("SignName", ""))
                if state is None:
                    return 200, {"Code": "isv.SMS_SIGN_ILLEGAL", "Message": "签名不存在"}
                return 200, {"Code": "OK", "Message": "OK", "SignName": p["SignName"], "SignStatus": state}
            if action == "QuerySmsTemplate":
                template = self.templates.get(p.get("TemplateCode", ""))
                if template is None:
                    return 200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不存在"}
                return 200, {"Code": "OK", "Message": "OK", "TemplateCode": p["TemplateCode"],
                             "TemplateContent": template[0], "TemplateStatus": template[1]}
            return 400, {"Code": "InvalidAction.NotFound", "Message": f"Specified api {action} is not found."}

    def _send(self, p: dict[str, str]) -> dict[str, Any]:
        def refuse(code: str, message: str) -> dict[str, Any]:
            return {"Code": code, "Message": message}

        phones = [x for x in p.get("PhoneNumbers", "").split(",") if x]
        if not phones or len(phones) > 1000:
            return refuse("isv.MOBILE_COUNT_OVER_LIMIT" if phones else "isv.MOBILE_NUMBER_ILLEGAL", "手机号码格式错误")
        if any(not MAINLAND.match(x) for x in phones):
            return refuse("isv.MOBILE_NUMBER_ILLEGAL", "手机号码格式错误")
        if self.signs.get(p.get("SignName", "")) != 1:
            return refuse("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        template = self.templates.get(p.get("TemplateCode", ""))
        if template is None or template[1] != 1:
            return refuse("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values = json.loads(p.get("TemplateParam") or "{}")
        except ValueError:
            return refuse("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(values, dict) or any(not isinstance(v, str) for v in values.values()):
            return refuse("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        missing = [name for name in VARIABLE.findall(template[0]) if name not in values]
        if missing:
            return refuse("isv.TEMPLATE_MISSING_PARAMETERS", f"模板缺少变量: {','.join(missing)}")
        if any(len(v) > self.param_limit for v in values.values()):
            return refuse("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制")
        now = self.clock()
        for phone in phones:
            sent = [datetime.fromisoformat(m["at"]) for m in self.messages.values()
                    if m["PhoneNum"] == phone and m["SignName"] == p["SignName"]]
            if self.per_number_per_minute is not None and \
                    sum(now - t < timedelta(minutes=1) for t in sent) >= self.per_number_per_minute:
                return refuse("isv.BUSINESS_LIMIT_CONTROL", f"触发分钟级流控Permits:{self.per_number_per_minute}")
            if sum(now - t < timedelta(days=1) for t in sent) >= self.per_number_per_day:
                return refuse("isv.BUSINESS_LIMIT_CONTROL", f"触发天级流控Permits:{self.per_number_per_day}")
        content = f"【{p['SignName']}】" + VARIABLE.sub(lambda m: values[m.group(1)], template[0])
        self._seq += 1
        biz_id = f"{self._seq}^{int(now.timestamp())}"
        for phone in phones:
            self.messages[biz_id] = {
                "PhoneNum": phone, "SendStatus": 1, "ErrCode": "", "TemplateCode": p["TemplateCode"],
                "Content": content, "SendDate": now.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"),
                "ReceiveDate": "", "OutId": p.get("OutId", ""), "SignName": p["SignName"], "at": now.isoformat()}
            self.record_effect(biz_id)
        return {"Code": "OK", "Message": "OK", "BizId": biz_id}

    def _details(self, p: dict[str, str]) -> dict[str, Any]:
        phone, day = p.get("PhoneNumber", ""), p.get("SendDate", "")
        if not phone or not re.fullmatch(r"\d{8}", day):
            return {"Code": "isv.INVALID_PARAMETERS", "Message": "参数异常"}
        wanted = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        rows = [{k: v for k, v in m.items() if k not in ("SignName", "at")} for biz, m in self.messages.items()
                if m["PhoneNum"] == phone and m["SendDate"].startswith(wanted)
                and (not p.get("BizId") or p["BizId"] == biz)]
        return {"Code": "OK", "Message": "OK", "TotalCount": len(rows),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows}}
