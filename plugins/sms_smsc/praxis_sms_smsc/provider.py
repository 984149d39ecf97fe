"""The ``MessagingProvider`` for SMSC: settings in, ``SendResult`` or a plugin_sdk error out."""

from __future__ import annotations

import hashlib
import hmac
import json
import string
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx

from plugin_sdk import PermanentError, PluginContext, RetryableError
from plugin_sdk.providers import (
    DeliveryReport,
    DeliveryStatus,
    InboundMessage,
    MessagingProvider,
    OutgoingMessage,
    SendResult,
)
from praxis_sms_smsc.client import FINAL_STATES, SmscClient, SmscError, Status, client_id, raise_for
from praxis_sms_smsc.settings import SmscSettings

STATES: dict[int, DeliveryStatus] = {-2: DeliveryStatus.failed, -1: DeliveryStatus.queued, 0: DeliveryStatus.sent,
                                     1: DeliveryStatus.delivered, 2: DeliveryStatus.delivered,
                                     4: DeliveryStatus.delivered}


def hash_callback(fields: Mapping[str, str], algorithm: str, recipe: str, secret: str) -> str:
    """The hash SMSC puts in a callback: ``algorithm`` over ``recipe`` filled with the fields and the secret."""
    values = {name: fields.get(name, "") for _, name, _, _ in string.Formatter().parse(recipe) if name}
    values["secret"] = secret
    data = recipe.format_map(values).encode()
    if algorithm == "crc32":
        return str(zlib.crc32(data))
    return hashlib.new(algorithm, data).hexdigest()


def recipe_fields(recipe: str) -> list[str]:
    """The placeholder names of a hash recipe; raises ValueError if it is not a valid format string."""
    return [name for _, name, spec, conv in string.Formatter().parse(recipe) if name is not None]


def delivery_status(code: int) -> DeliveryStatus:
    if code in STATES:
        return STATES[code]
    return DeliveryStatus.failed if code in FINAL_STATES else DeliveryStatus.unknown


class SmscProvider(MessagingProvider):
    channel = "sms"
    #: SMSC refuses only an identical request within a minute (error 9); a resend after that is sent again.
    #: A lost answer is therefore an unknown outcome, resolved with ``query_status`` (by phone and our id).
    deduplicates = False

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.transport = transport

    def client(self, settings: Any) -> SmscClient:
        if not isinstance(settings, SmscSettings):
            raise PermanentError("SMSC is not configured in this clinic", code="not_configured")
        if settings.password is None or not settings.password.get_secret_value():
            raise PermanentError("SMSC has no password or API key: set 'password' in the plugin settings",
                                 code="not_configured")
        return SmscClient(settings.endpoint, settings.login, settings.password.get_secret_value(),
                          timeout=settings.timeout_seconds, transport=self.transport)

    def send(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult:
        if message.channel != "sms":
            raise PermanentError(f"SMSC sends SMS only, not {message.channel}", code="unsupported_channel")
        settings = ctx.settings
        message_id = client_id(message.idempotency_key)
        with self.client(settings) as client:
            try:
                sent = client.send(phone=message.to, text=message.body, message_id=message_id,
                                   sender=message.sender or settings.sender)  # type: ignore[union-attr]
            except SmscError as error:
                if error.code == 9:  # the same request went through less than a minute ago: find it
                    found = self._lookup(client, message.to, message_id)
                    if found is not None:
                        ctx.log.info("sms %s was already accepted by SMSC as %s", message.idempotency_key,
                                     message_id)
                        return found
                raise_for(error)
                raise  # unreachable: raise_for always raises
        ctx.log.info("sms %s accepted by SMSC as %s (%s parts)", message.idempotency_key, sent.id, sent.parts)
        return SendResult(status=DeliveryStatus.queued, vendor_message_id=str(sent.id))

    def query_status(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult | None:
        """What SMSC knows of the message (by phone and the id derived from its key); None if nothing."""
        with self.client(ctx.settings) as client:
            try:
                return self._lookup(client, message.to, client_id(message.idempotency_key))
            except SmscError as error:
                if error.code in (4, 9):
                    raise RetryableError(f"SMSC refused the status query: {error}", retry_after=60,
                                         code=str(error.code)) from error
                raise PermanentError(f"SMSC refused the status query: {error}", code=str(error.code)) from error

    def _lookup(self, client: SmscClient, phone: str, message_id: int) -> SendResult | None:
        status: Status = client.status(phone=phone, message_id=message_id)
        if status.code == -3:
            return None
        state = delivery_status(status.code)
        failed = state is DeliveryStatus.failed
        return SendResult(status=state, vendor_message_id=str(message_id),
                          error_code=str(status.code) if failed else None,
                          error_message=f"SMSC: {status.name}" if failed else None)

    def parse_callback(self, ctx: PluginContext, headers: Mapping[str, str],
                       body: bytes) -> tuple[list[DeliveryReport], list[InboundMessage]]:
        """A delivery status or an incoming SMS from the handler URL set in the SMSC account.

        Fields (form-encoded, or JSON with ``fmt=3``): ``id, phone, status, time, err`` for a status, ``phone,
        mes, to`` for an incoming SMS, plus the hash named in ``callback_hash``, checked with the configured
        recipe and secret. A missing or wrong hash raises ``PermanentError`` (code ``forged_callback``).
        """
        settings = ctx.settings
        if not isinstance(settings, SmscSettings):
            raise PermanentError("SMSC is not configured in this clinic", code="not_configured")
        fields = _fields(headers, body)
        secret = settings.callback_secret or settings.password
        if secret is None or not secret.get_secret_value():
            raise PermanentError("no callback secret is configured, so the callback cannot be checked",
                                 code="not_configured")
        given = fields.get(settings.callback_hash, "")
        expected = hash_callback(fields, settings.callback_hash, settings.callback_hash_recipe,
                                 secret.get_secret_value())
        if not given or not hmac.compare_digest(given.lower(), expected.lower()):
            raise PermanentError(f"SMSC callback with a missing or wrong {settings.callback_hash} hash",
                                 code="forged_callback")
        at = _time(fields.get("time"))
        if fields.get("mes") is not None and fields.get("status") in (None, ""):
            return [], [InboundMessage(sender=_e164(fields.get("phone", "")), body=fields["mes"],
                                       received_at=at or ctx.now(), vendor_message_id=fields.get("id") or None)]
        try:
            code = int(fields["status"])
            message_id = str(int(fields["id"]))
        except (KeyError, ValueError) as exc:
            raise PermanentError("SMSC callback without a numeric id and status", code="bad_callback") from exc
        err = fields.get("err") or None
        state = delivery_status(code)
        return [DeliveryReport(vendor_message_id=message_id, status=state, at=at,
                               error_code=(err or str(code)) if state is DeliveryStatus.failed else None)], []


def _fields(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    text = body.decode("utf-8", errors="replace").strip()
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if "json" in content_type or text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PermanentError("SMSC callback with a broken JSON body", code="bad_callback") from exc
        if not isinstance(data, dict):
            raise PermanentError("SMSC callback JSON is not an object", code="bad_callback")
        return {str(k): "" if v is None else str(v) for k, v in data.items()}
    return dict(parse_qsl(text, keep_blank_values=True))


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError):
        pass
    try:  # SMSC's own display form, Moscow time
        from zoneinfo import ZoneInfo

        return datetime.strptime(value, "%d.%m.%Y %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/Moscow")).astimezone(UTC)
    except ValueError:
        return None


def _e164(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"+{digits}" if digits else phone
