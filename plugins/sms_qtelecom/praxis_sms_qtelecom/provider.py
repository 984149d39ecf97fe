"""The ``MessagingProvider`` for QuickTelecom."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from plugin_sdk import PermanentError, PluginContext
from plugin_sdk.providers import DeliveryStatus, MessagingProvider, OutgoingMessage, SendResult
from praxis_sms_qtelecom.client import MAX_TEXT, Message, QtelecomClient
from praxis_sms_qtelecom.settings import QtelecomSettings

MSK = ZoneInfo("Europe/Moscow")
LOOKBACK = timedelta(days=2)


def message_result(message: Message) -> SendResult:
    if message.closed and message.sent:
        return SendResult(DeliveryStatus.delivered, message.id)
    if message.closed:
        return SendResult(DeliveryStatus.failed, message.id, error_code=message.state or "not_delivered",
                          error_message=f"QuickTelecom: {message.description or 'not delivered'}")
    return SendResult(DeliveryStatus.sent if message.sent else DeliveryStatus.queued, message.id)


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


class QtelecomProvider(MessagingProvider):
    channel = "sms"
    deduplicates = False

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.transport = transport

    def client(self, settings: Any) -> QtelecomClient:
        if not isinstance(settings, QtelecomSettings) or not settings.user:
            raise PermanentError("QuickTelecom is not configured in this clinic (no login)", code="not_configured")
        if settings.password is None or not settings.password.get_secret_value():
            raise PermanentError("QuickTelecom has no password", code="not_configured")
        return QtelecomClient(settings.endpoint, settings.user, settings.password.get_secret_value(),
                              timeout=settings.timeout_seconds, transport=self.transport)

    def send(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult:
        if message.channel != "sms":
            raise PermanentError(f"QuickTelecom sends SMS only, not {message.channel}", code="unsupported_channel")
        if len(message.body) > MAX_TEXT:
            raise PermanentError(f"QuickTelecom takes at most {MAX_TEXT} characters; this message has "
                                 f"{len(message.body)}", code="too_long")
        settings = ctx.settings
        with self.client(settings) as client:
            sms_id = client.post_sms(target=message.to, message=message.body,
                                     sender=message.sender or settings.sender)  # type: ignore[union-attr]
        ctx.log.info("sms %s accepted by QuickTelecom as %s", message.idempotency_key, sms_id)
        return SendResult(DeliveryStatus.queued, sms_id)

    def query_status(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult | None:
        """The newest message of the last two days to this number with exactly this text, or None."""
        now = ctx.now().astimezone(MSK).replace(tzinfo=None)
        with self.client(ctx.settings) as client:
            found = client.messages(date_from=now - LOOKBACK, date_to=now + timedelta(minutes=5))
        target, text = _digits(message.to), message.body.strip()
        matches = [m for m in found if _digits(m.target)[-10:] == target[-10:] and m.text == text]
        return message_result(matches[-1]) if matches else None
