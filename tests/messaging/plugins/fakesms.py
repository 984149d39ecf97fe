"""Fixture messaging plugin for the core's messaging tests: an SMS provider and an e-mail provider that talk
HTTP to ``FakeVendor`` (a real server on loopback, ``plugin_sdk.testing.FakeServer``).

The fake SMS vendor, like SMSC, does *not* deduplicate: every accepted request is a message on a phone
(an effect). It can be asked about a message by the client reference (our idempotency key). The fake
e-mail vendor honours an ``Idempotency-Key`` header. Callbacks are JSON signed with HMAC-SHA256.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import (
    Category,
    PermanentError,
    PluginManifest,
    RetryableError,
    UnknownOutcomeError,
    hookimpl,
)
from plugin_sdk.providers import (
    DeliveryReport,
    DeliveryStatus,
    InboundMessage,
    MessagingProvider,
    OutgoingMessage,
    SendResult,
)
from plugin_sdk.testing import FakeServer


class FakeSmsSettings(BaseModel):
    endpoint: str = Field("http://127.0.0.1:9", description="The fake vendor's base URL")
    secret: SecretStr | None = None
    timeout_seconds: float = 1.0


manifest = PluginManifest(name="fakesms", version="1.0.0", title="Fake SMS", description="Test vendor.",
                          category=Category.messaging, api=">=1.0,<2", settings=FakeSmsSettings)


def _post(ctx: Any, path: str, payload: dict[str, Any], headers: dict[str, str] | None = None, *,
          sends: bool) -> httpx.Response:
    settings = ctx.settings
    try:
        response = httpx.post(f"{settings.endpoint}{path}", json=payload, headers=headers or {},
                              timeout=settings.timeout_seconds)
    except httpx.ConnectError as exc:
        raise RetryableError(f"vendor unreachable: {exc}", code="unreachable") from exc
    except httpx.TimeoutException as exc:
        if sends:
            raise UnknownOutcomeError(f"no answer after handing over the message: {exc}") from exc
        raise RetryableError("timeout", code="timeout") from exc
    if response.status_code == 429:
        raise RetryableError("rate limited", retry_after=float(response.headers.get("retry-after", 1)),
                             code="rate_limited")
    if response.status_code == 504 and sends:
        raise UnknownOutcomeError("gateway timeout after handing over the message")
    if response.status_code >= 500:
        raise RetryableError(f"vendor error {response.status_code}", code=f"http_{response.status_code}")
    if response.status_code >= 400:
        body = response.json()
        raise PermanentError(body.get("message", "refused"), code=body.get("code"))
    return response


class FakeSmsProvider(MessagingProvider):
    channel = "sms"
    deduplicates = False

    def send(self, ctx: Any, message: OutgoingMessage) -> SendResult:
        answer = _post(ctx, "/sms", {"to": message.to, "text": message.body, "ref": message.idempotency_key},
                       sends=True).json()
        return SendResult(status=DeliveryStatus.queued, vendor_message_id=answer["id"])

    def query_status(self, ctx: Any, message: OutgoingMessage) -> SendResult | None:
        settings = ctx.settings
        try:
            response = httpx.get(f"{settings.endpoint}/sms/status", params={"ref": message.idempotency_key},
                                 timeout=settings.timeout_seconds)
        except httpx.HTTPError as exc:
            raise RetryableError(f"status query failed: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 500:
            raise RetryableError(f"vendor error {response.status_code}")
        answer = response.json()
        return SendResult(status=DeliveryStatus(answer["status"]), vendor_message_id=answer["id"])

    def parse_callback(self, ctx: Any, headers: Mapping[str, str], body: bytes
                       ) -> tuple[list[DeliveryReport], list[InboundMessage]]:
        secret = ctx.settings.secret
        expected = hmac.new(secret.get_secret_value().encode() if secret else b"", body, hashlib.sha256).hexdigest()
        if not secret or not hmac.compare_digest(headers.get("x-signature", ""), expected):
            raise PermanentError("callback signature does not match", code="forged_callback")
        data = json.loads(body)
        reports = [DeliveryReport(r["id"], DeliveryStatus(r["status"]), error_code=r.get("error"))
                   for r in data.get("reports", [])]
        replies = [InboundMessage(sender=r["from"], body=r["text"], received_at=ctx.now(),
                                  vendor_message_id=r.get("id")) for r in data.get("inbound", [])]
        return reports, replies


class FakeEmailProvider(MessagingProvider):
    channel = "email"
    deduplicates = True

    def send(self, ctx: Any, message: OutgoingMessage) -> SendResult:
        answer = _post(ctx, "/email", {"to": message.to, "subject": message.subject, "text": message.body},
                       {"Idempotency-Key": message.idempotency_key}, sends=True).json()
        return SendResult(status=DeliveryStatus.sent, vendor_message_id=answer["id"])


SMS = FakeSmsProvider()
EMAIL = FakeEmailProvider()


@hookimpl
def praxis_messaging_providers() -> list[MessagingProvider]:
    return [SMS, EMAIL]


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeVendor(FakeServer):
    """The vendor: ``effects`` holds every SMS put on a phone and every e-mail delivered to a mailbox."""

    def __init__(self) -> None:
        self.invalid_numbers: set[str] = set()
        self.by_ref: dict[str, dict[str, Any]] = {}
        self.emails: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._vendor_lock = threading.Lock()
        super().__init__()

    def sms(self) -> list[dict[str, Any]]:
        return [e for e in self.effects if e["channel"] == "sms"]

    def build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/sms")
        async def send_sms(request: Request) -> Any:
            data = await request.json()
            if data["to"] in self.invalid_numbers:
                return JSONResponse({"code": "7", "message": "the number cannot receive SMS"}, 400)
            with self._vendor_lock:
                entry = {"channel": "sms", "id": f"S{next(self._ids)}", "to": data["to"], "text": data["text"],
                         "ref": data["ref"], "at": datetime.now(UTC), "status": "sent"}
                self.by_ref[data["ref"]] = entry
            self.record_effect(entry)
            return {"id": entry["id"]}

        @app.get("/sms/status")
        async def sms_status(ref: str) -> Any:
            entry = self.by_ref.get(ref)
            if entry is None:
                return JSONResponse({"code": "not_found"}, 404)
            return {"id": entry["id"], "status": entry["status"]}

        @app.post("/email")
        async def send_email(request: Request) -> Any:
            data = await request.json()
            key = request.headers.get("idempotency-key", "")
            with self._vendor_lock:
                if key in self.emails:
                    return {"id": self.emails[key]["id"]}
                entry = {"channel": "email", "id": f"E{next(self._ids)}", "to": data["to"],
                         "subject": data["subject"], "text": data["text"], "key": key}
                self.emails[key] = entry
            self.record_effect(entry)
            return {"id": entry["id"]}

        return app

    def reset(self) -> None:
        super().reset()
        self.invalid_numbers.clear()
        self.by_ref.clear()
        self.emails.clear()
