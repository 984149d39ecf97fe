"""The ``MessagingProvider`` for Imobis."""

from __future__ import annotations

import re
from typing import Any

import httpx

from plugin_sdk import PermanentError, PluginContext
from plugin_sdk.providers import DeliveryStatus, MessagingProvider, OutgoingMessage, SendResult
from praxis_sms_imobis.client import ImobisClient, Sent
from praxis_sms_imobis.settings import ImobisSettings

STATES = {"accepted": DeliveryStatus.queued, "sent": DeliveryStatus.sent, "delivered": DeliveryStatus.delivered,
          "read": DeliveryStatus.delivered, "rejected": DeliveryStatus.failed, "undelivered": DeliveryStatus.failed,
          "expired": DeliveryStatus.failed, "deleted": DeliveryStatus.failed, "error": DeliveryStatus.failed}


def sent_result(sent: Sent) -> SendResult:
    state = STATES.get(sent.status, DeliveryStatus.unknown)
    if state is DeliveryStatus.failed:
        return SendResult(state, sent.id, error_code=sent.status, error_message=f"Imobis: {sent.error or sent.status}")
    return SendResult(state, sent.id)


class ImobisProvider(MessagingProvider):
    channel = "sms"
    deduplicates = False

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.transport = transport

    def client(self, settings: Any) -> ImobisClient:
        if not isinstance(settings, ImobisSettings) or settings.token is None \
                or not settings.token.get_secret_value():
            raise PermanentError("Imobis is not configured in this clinic (no API token)", code="not_configured")
        return ImobisClient(settings.endpoint, settings.token.get_secret_value(), timeout=settings.timeout_seconds,
                            transport=self.transport)

    def send(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult:
        if message.channel != "sms":
            raise PermanentError(f"Imobis sends SMS only, not {message.channel}", code="unsupported_channel")
        settings = ctx.settings
        with self.client(settings) as client:
            assert isinstance(settings, ImobisSettings)
            sent = client.send_sms(sender=message.sender or settings.sender, phone=re.sub(r"\D", "", message.to),
                                   text=message.body, custom_id=message.idempotency_key, ttl=settings.ttl_seconds,
                                   day_delivery=settings.day_delivery)
        ctx.log.info("sms %s accepted by Imobis as %s", message.idempotency_key, sent.id)
        return sent_result(sent)

    def query_status(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult | None:
        with self.client(ctx.settings) as client:
            rows = client.status(message.idempotency_key)
        return sent_result(rows[0]) if rows else None
