"""The ``MessagingProvider`` for Aliyun SMS: template codes, signatures, and a receipt check before resending."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from plugin_sdk import PermanentError, PluginContext
from plugin_sdk.providers import (
    DeliveryReport,
    DeliveryStatus,
    InboundMessage,
    MessagingProvider,
    OutgoingMessage,
    SendResult,
)
from praxis_sms_aliyun.client import AliyunClient, AliyunError, Detail, phone_number, raise_for
from praxis_sms_aliyun.settings import AliyunSettings

CST = ZoneInfo("Asia/Shanghai")
#: Header a core callback route may use to pass the token it found in the push URL's path.
TOKEN_HEADER = "x-praxis-callback-token"


def template_param(message: OutgoingMessage, settings: AliyunSettings) -> tuple[str, str]:
    """(TemplateCode, TemplateParam JSON). ``metadata`` may name an approved template and its variables
    (``template_code``, ``template_params``); otherwise the text goes into the settings' template variable."""
    code = str(message.metadata.get("template_code") or settings.template_code)
    params = message.metadata.get("template_params")
    if params is None:
        params = {settings.template_param_name: message.body}
    if not isinstance(params, Mapping):
        raise PermanentError("template_params must be a mapping of variable names to text", code="bad_template_params")
    if not code:
        raise PermanentError("no Aliyun template code: set 'template_code' in the plugin settings",
                             code="not_configured")
    return code, json.dumps({str(k): str(v) for k, v in params.items()}, ensure_ascii=False, separators=(",", ":"))


def detail_result(detail: Detail, vendor_id: str) -> SendResult:
    if detail.send_status == 3:
        return SendResult(DeliveryStatus.delivered, vendor_id)
    if detail.send_status == 2:
        return SendResult(DeliveryStatus.failed, vendor_id, error_code=detail.err_code or "failed",
                          error_message=f"Aliyun SMS: carrier receipt {detail.err_code or 'failed'}")
    return SendResult(DeliveryStatus.sent, vendor_id)  # 1: with the carrier, receipt pending


class AliyunProvider(MessagingProvider):
    channel = "sms"
    deduplicates = False  # "No idempotency": a lost answer is resolved by QuerySendDetails on our OutId

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.transport = transport

    def client(self, ctx: PluginContext, settings: Any) -> AliyunClient:
        if not isinstance(settings, AliyunSettings) or not settings.access_key_id:
            raise PermanentError("Aliyun SMS is not configured in this clinic (no AccessKey ID)",
                                 code="not_configured")
        if settings.access_key_secret is None or not settings.access_key_secret.get_secret_value():
            raise PermanentError("Aliyun SMS has no AccessKey secret", code="not_configured")
        return AliyunClient(settings.endpoint, settings.access_key_id, settings.access_key_secret.get_secret_value(),
                            now=ctx.now, region_id=settings.region_id, timeout=settings.timeout_seconds,
                            transport=self.transport)

    def send(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult:
        """Send through the template; ``vendor_message_id`` is our ``OutId`` (the idempotency key), because it is
        what Aliyun's status query and receipts echo (``BizId`` is not in the status query's answer)."""
        if message.channel != "sms":
            raise PermanentError(f"Aliyun SMS sends SMS only, not {message.channel}", code="unsupported_channel")
        settings = ctx.settings
        with self.client(ctx, settings) as client:
            assert isinstance(settings, AliyunSettings)
            if not settings.sign_name:
                raise PermanentError("no Aliyun signature: set 'sign_name'", code="not_configured")
            code, params = template_param(message, settings)
            try:
                biz_id = client.send_sms(phone=phone_number(message.to), sign_name=message.sender or settings.sign_name,
                                         template_code=code, template_param=params, out_id=message.idempotency_key)
            except AliyunError as error:
                raise_for(error)
                raise
        ctx.log.info("sms %s accepted by Aliyun, BizId %s", message.idempotency_key, biz_id)
        return SendResult(DeliveryStatus.queued, message.idempotency_key)

    def query_status(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult | None:
        """Look for our OutId among the messages to this number today and yesterday (China time)."""
        phone = phone_number(message.to)
        today = ctx.now().astimezone(CST).date()
        with self.client(ctx, ctx.settings) as client:
            for day in (today, today - timedelta(days=1)):
                try:
                    details = client.send_details(phone=phone, send_date=day.strftime("%Y%m%d"))
                except AliyunError as error:
                    raise_for(error)
                    raise
                for detail in details:
                    if detail.out_id == message.idempotency_key:
                        return detail_result(detail, message.idempotency_key)
        return None

    def parse_callback(self, ctx: PluginContext, headers: Mapping[str, str],
                       body: bytes) -> tuple[list[DeliveryReport], list[InboundMessage]]:
        """Aliyun's HTTP batch push of receipts (SmsReport) or replies (SmsUp): a JSON array.

        Aliyun does not sign pushes, so the push URL carries a secret token: as the password of the URL's user
        info (the pusher sends it as HTTP Basic auth) or passed on by the receiving route in
        ``X-Praxis-Callback-Token``. Without the right token the push is refused (``forged_callback``).
        """
        settings = ctx.settings
        if not isinstance(settings, AliyunSettings) or settings.callback_token is None:
            raise PermanentError("no receipt push token is configured, so pushes cannot be checked",
                                 code="not_configured")
        presented = _token(headers)
        if presented is None or not hmac.compare_digest(presented.encode(),
                                                        settings.callback_token.get_secret_value().encode()):
            raise PermanentError("Aliyun push without the right token", code="forged_callback")
        try:
            items = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PermanentError("Aliyun push with a broken JSON body", code="bad_callback") from exc
        if not isinstance(items, list):
            items = [items]
        reports: list[DeliveryReport] = []
        inbound: list[InboundMessage] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if "content" in item:
                inbound.append(InboundMessage(sender=_e164(str(item.get("phone_number", ""))),
                                              body=str(item["content"]),
                                              received_at=_cst(item.get("send_time")) or ctx.now(),
                                              vendor_message_id=str(item.get("sequence_id") or "") or None))
                continue
            vendor_id = str(item.get("out_id") or item.get("biz_id") or "")
            if not vendor_id:
                continue
            success = item.get("success") in (True, "true", "True", 1, "1")
            reports.append(DeliveryReport(
                vendor_message_id=vendor_id, status=DeliveryStatus.delivered if success else DeliveryStatus.failed,
                at=_cst(item.get("report_time")), error_code=None if success else str(item.get("err_code") or "")))
        return reports, inbound


def _token(headers: Mapping[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get(TOKEN_HEADER):
        return lowered[TOKEN_HEADER]
    auth = lowered.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def _cst(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
    except ValueError:
        return None


def _e164(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) == 11 and digits.startswith("1"):
        return f"+86{digits}"
    return f"+{digits}" if digits else phone
