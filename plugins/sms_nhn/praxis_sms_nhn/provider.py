"""The ``MessagingProvider`` for NHN Cloud SMS: EUC-KR limits checked before anything leaves the clinic."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from plugin_sdk import PermanentError, PluginContext
from plugin_sdk.providers import DeliveryStatus, MessagingProvider, OutgoingMessage, SendResult
from praxis_sms_nhn.client import NhnClient, NhnError, Row, raise_for
from praxis_sms_nhn.encoding import TITLE_MAX_BYTES, clip, measure
from praxis_sms_nhn.settings import NhnSettings

KST = ZoneInfo("Asia/Seoul")
DELIVERED = "1000"
#: How far back a status query looks for a message sent under the same key.
LOOKBACK = timedelta(days=3)


def recipient(to: str, *, allow_international: bool) -> dict[str, str]:
    """NHN's recipient fields for an E.164 number: domestic form for +82, ``internationalRecipientNo`` else."""
    digits = re.sub(r"\D", "", to)
    if not digits:
        raise PermanentError(f"{to!r} is not a phone number", code="invalid_recipient")
    if not to.strip().startswith("+"):
        return {"recipientNo": digits}
    if digits.startswith("82"):
        return {"recipientNo": "0" + digits[2:].lstrip("0"), "countryCode": "82"}
    if not allow_international:
        raise PermanentError(f"{to} is outside Korea and international SMS is off in the plugin settings",
                             code="international_disabled")
    return {"internationalRecipientNo": digits}


def row_result(row: Row) -> SendResult:
    if row.msg_status == "1":
        return SendResult(DeliveryStatus.queued, row.request_id)
    if row.msg_status == "2":
        return SendResult(DeliveryStatus.sent, row.request_id)
    if row.msg_status == "3" and row.result_code == DELIVERED:
        return SendResult(DeliveryStatus.delivered, row.request_id)
    return SendResult(DeliveryStatus.failed, row.request_id, error_code=row.result_code or f"status_{row.msg_status}",
                      error_message=f"NHN Cloud: {row.result_name or 'not delivered'}")


class NhnProvider(MessagingProvider):
    channel = "sms"
    deduplicates = False  # NHN sends every request; a lost answer is looked up by senderGroupingKey

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.transport = transport

    def client(self, settings: Any) -> NhnClient:
        if not isinstance(settings, NhnSettings) or not settings.app_key:
            raise PermanentError("NHN Cloud SMS is not configured in this clinic (no app key)", code="not_configured")
        if settings.secret_key is None or not settings.secret_key.get_secret_value():
            raise PermanentError("NHN Cloud SMS has no secret key: set 'secret_key'", code="not_configured")
        return NhnClient(settings.endpoint, settings.app_key, settings.secret_key.get_secret_value(),
                         timeout=settings.timeout_seconds, transport=self.transport)

    def send(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult:
        if message.channel != "sms":
            raise PermanentError(f"NHN Cloud SMS sends SMS only, not {message.channel}", code="unsupported_channel")
        settings = ctx.settings
        size = measure(message.body)  # refuses what cannot be sent before anything leaves
        with self.client(settings) as client:
            assert isinstance(settings, NhnSettings)
            to = recipient(message.to, allow_international=settings.allow_international)
            title = clip(message.subject or settings.lms_title, TITLE_MAX_BYTES) if size.kind == "LMS" else None
            send_no = re.sub(r"\D", "", message.sender or settings.send_no)
            try:
                accepted = client.send(kind=size.kind, body=message.body, send_no=send_no, recipient=to,
                                       grouping_key=message.idempotency_key, title=title)
            except NhnError as error:
                raise_for(error)
                raise
        ctx.log.info("%s %s accepted by NHN Cloud as %s (%d bytes)", size.kind, message.idempotency_key,
                     accepted.request_id, size.bytes)
        return SendResult(DeliveryStatus.queued, accepted.request_id)

    def query_status(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult | None:
        """The message NHN holds under this idempotency key (``senderGroupingKey``), or None if none."""
        size = measure(message.body)
        now = ctx.now().astimezone(KST)
        start = (now - LOOKBACK).strftime("%Y-%m-%d %H:%M:%S")
        end = (now + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
        with self.client(ctx.settings) as client:
            try:
                rows = client.find(kind=size.kind, grouping_key=message.idempotency_key, start=start, end=end)
            except NhnError as error:
                raise_for(error)
                raise
        rows = [r for r in rows if r.grouping_key in (None, message.idempotency_key)]
        return row_result(rows[0]) if rows else None
