"""The Aliyun SMS API (Dysmsapi 2017-05-25), RPC style: a signed form POST to ``/`` with ``Action=...``.

``SendSms``: ``PhoneNumbers, SignName, TemplateCode, TemplateParam`` (a JSON object of strings), ``OutId`` (ours:
the idempotency key) -> ``{"Code": "OK", "BizId": "...", "RequestId": "..."}``; any other ``Code`` is a refusal.
``QuerySendDetails``: ``PhoneNumber, SendDate (yyyyMMdd, China time), PageSize, CurrentPage[, BizId]`` ->
``SmsSendDetailDTOs.SmsSendDetailDTO[]`` with ``SendStatus`` (1 waiting for the receipt, 2 failed, 3 delivered),
``ErrCode``, ``OutId``. ``QuerySmsSign`` / ``QuerySmsTemplate``: review status (0 pending, 1 approved, 2 rejected).

Aliyun has no idempotency: a resend is a second SMS. So a lost answer is an unknown outcome, and the status query
looks for our ``OutId`` among the day's messages to that number before anyone sends again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from plugin_sdk import http
from plugin_sdk.errors import PermanentError, RetryableError
from praxis_sms_aliyun.signing import signed

VENDOR = "Aliyun SMS"
USER_AGENT = "praxis-sms-aliyun/1.0"

#: Codes worth another try later, with the delay Aliyun's limits imply.
RETRYABLE: dict[str, float | None] = {
    "isp.SYSTEM_ERROR": None,
    "isv.BUSINESS_LIMIT_CONTROL": 60.0,  # per-number flow control; refined from the message below
    "isv.DAY_LIMIT_CONTROL": 3600.0,
    "Throttling": 1.0,
    "Throttling.User": 1.0,
    "Throttling.Api": 1.0,
    "ServiceUnavailable": None,
    "SignatureNonceUsed": None,
}
REASONS: dict[str, str] = {
    "isv.MOBILE_NUMBER_ILLEGAL": "the phone number is not valid",
    "isv.SMS_SIGNATURE_ILLEGAL": "the signature (SignName) is not approved",
    "isv.SMS_SIGN_ILLEGAL": "the signature (SignName) is not approved",
    "isv.SMS_TEMPLATE_ILLEGAL": "the template is not approved or does not exist",
    "isv.TEMPLATE_MISSING_PARAMETERS": "the template needs variables the message did not give",
    "isv.INVALID_JSON_PARAM": "TemplateParam is not a JSON object of strings",
    "isv.PARAM_LENGTH_LIMIT": "a template variable is too long",
    "isv.AMOUNT_NOT_ENOUGH": "the Aliyun account is out of credit",
    "isv.BLACK_KEY_CONTROL_LIMIT": "the text contains a blocked keyword",
    "isv.SMS_CONTENT_ILLEGAL": "the text is not allowed",
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": "this signature/template cannot send to mainland numbers",
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": "the signature and the template are of different types",
    "isv.BUSINESS_LIMIT_CONTROL": "Aliyun's per-number flow control",
    "isv.DAY_LIMIT_CONTROL": "the account's daily limit",
    "isv.MONTH_LIMIT_CONTROL": "the account's monthly limit",
    "isp.RAM_PERMISSION_DENY": "the AccessKey lacks the RAM permission for SMS",
    "isv.ACCOUNT_NOT_EXISTS": "the Aliyun account does not exist",
    "isv.ACCOUNT_ABNORMAL": "the Aliyun account is suspended",
    "isv.OUT_OF_SERVICE": "the Aliyun account is out of service (overdue)",
    "isv.PRODUCT_UN_SUBSCRIPT": "the account has not subscribed to the SMS service",
    "isv.PRODUCT_UNSUBSCRIBE": "the account has not subscribed to the SMS service",
    "isv.DENY_IP_RANGE": "this server's IP address is not allowed",
    "SignatureDoesNotMatch": "the AccessKey secret is wrong (signature mismatch)",
    "InvalidAccessKeyId.NotFound": "the AccessKey ID does not exist",
    "InvalidTimeStamp.Expired": "the request time is too far off: check this server's clock",
}


class AliyunError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {REASONS.get(code, message)}")
        self.code = code
        self.vendor_message = message


def raise_for(error: AliyunError) -> None:
    reason = REASONS.get(error.code) or error.vendor_message or error.code
    if error.code in RETRYABLE:
        delay = RETRYABLE[error.code]
        if error.code == "isv.BUSINESS_LIMIT_CONTROL":
            delay = 86400.0 if "天" in error.vendor_message else 3600.0 if "小时" in error.vendor_message else 60.0
        raise RetryableError(f"Aliyun SMS: {reason} ({error.vendor_message})", retry_after=delay,
                             code=error.code) from error
    raise PermanentError(f"Aliyun SMS refused the message: {reason}", code=error.code) from error


@dataclass(frozen=True)
class Detail:
    phone: str
    send_status: int
    err_code: str | None
    out_id: str | None
    content: str | None
    send_date: str | None
    receive_date: str | None


def phone_number(e164: str) -> str:
    """Aliyun's form: 11 digits for mainland China, country code + number (no ``+``) elsewhere."""
    digits = re.sub(r"\D", "", e164)
    if e164.strip().startswith("+86") or (e164.strip().startswith("0086")):
        return digits[2:] if digits.startswith("86") else digits[4:]
    return digits


class AliyunClient:
    def __init__(self, endpoint: str, access_key_id: str, secret: str, *, now: Callable[[], datetime],
                 region_id: str = "cn-hangzhou", timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._key, self._secret, self._region, self._now = access_key_id, secret, region_id, now
        self._http = httpx.Client(base_url=endpoint.rstrip("/"), timeout=http.timeout(timeout), transport=transport,
                                  headers={"User-Agent": USER_AGENT})

    def __enter__(self) -> AliyunClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def send_sms(self, *, phone: str, sign_name: str, template_code: str, template_param: str,
                 out_id: str) -> str:
        body = self._call("SendSms", {"PhoneNumbers": phone, "SignName": sign_name, "TemplateCode": template_code,
                                      "TemplateParam": template_param, "OutId": out_id}, sends=True)
        if not body.get("BizId"):
            raise RetryableError(f"Aliyun answered SendSms without a BizId: {str(body)[:200]}", code="bad_response")
        return str(body["BizId"])

    def send_details(self, *, phone: str, send_date: str, biz_id: str | None = None) -> list[Detail]:
        params = {"PhoneNumber": phone, "SendDate": send_date, "PageSize": "50", "CurrentPage": "1"}
        if biz_id:
            params["BizId"] = biz_id
        body = self._call("QuerySendDetails", params, sends=False)
        rows = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
        return [Detail(str(r.get("PhoneNum", phone)), int(r.get("SendStatus") or 0), r.get("ErrCode") or None,
                       r.get("OutId") or None, r.get("Content"), r.get("SendDate"), r.get("ReceiveDate"))
                for r in rows if isinstance(r, dict)]

    def sign_status(self, sign_name: str) -> dict[str, Any]:
        return self._call("QuerySmsSign", {"SignName": sign_name}, sends=False)

    def template_status(self, template_code: str) -> dict[str, Any]:
        return self._call("QuerySmsTemplate", {"TemplateCode": template_code}, sends=False)

    def _call(self, action: str, params: dict[str, str], *, sends: bool) -> dict[str, Any]:
        form = signed("POST", action, params, access_key_id=self._key, secret=self._secret, at=self._now(),
                      region_id=self._region)
        response = http.request(self._http, VENDOR, "POST", "/", sends=sends, data=form)
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError(f"Aliyun answered {action} with HTTP {response.status_code} and no JSON",
                                 code="bad_response") from exc
        if not isinstance(body, dict) or "Code" not in body:
            if response.status_code >= 400:
                raise PermanentError(f"Aliyun refused {action} with HTTP {response.status_code}",
                                     code=f"http_{response.status_code}")
            raise RetryableError(f"Aliyun answered {action} without a Code: {str(body)[:200]}", code="bad_response")
        if body["Code"] != "OK":
            raise AliyunError(str(body["Code"]), str(body.get("Message") or ""))
        return body
