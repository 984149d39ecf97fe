"""The ``MessagingProvider`` for e-mail over SMTP."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, formataddr
from typing import Any

from email_validator import EmailNotValidError, validate_email

from plugin_sdk import PermanentError, PluginContext
from plugin_sdk.providers import DeliveryStatus, MessagingProvider, OutgoingMessage, SendResult
from praxis_email_smtp.client import SmtpClient
from praxis_email_smtp.settings import SmtpSettings


def message_id(idempotency_key: str, sender: str) -> str:
    """A stable Message-ID for the idempotency key, in the sender's domain: a resend carries the same one, so mail
    systems and people can recognise it as the same message."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "praxis.invalid"
    return f"<praxis.{digest}@{domain}>"


def normalized_address(value: str, field: str = "recipient") -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise PermanentError(f"{value!r} is not a valid e-mail address for the {field}: {exc}",
                             code="invalid_address") from exc


def build(ctx: PluginContext, message: OutgoingMessage, settings: SmtpSettings) -> tuple[str, str, EmailMessage]:
    sender = normalized_address(message.sender or settings.from_address, "sender")
    recipient = normalized_address(message.to)
    mail = EmailMessage()
    mail["From"] = formataddr((settings.from_name, sender)) if settings.from_name else sender
    mail["To"] = recipient
    mail["Subject"] = message.subject or ctx.clinic.name or "Message"
    mail["Date"] = format_datetime(ctx.now())
    mail["Message-ID"] = message_id(message.idempotency_key, sender)
    if settings.reply_to:
        mail["Reply-To"] = settings.reply_to
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.body)
    html = message.metadata.get("html")
    if isinstance(html, str) and html:
        mail.add_alternative(html, subtype="html")
    return sender, recipient, mail


class SmtpProvider(MessagingProvider):
    channel = "email"
    #: SMTP has no idempotency and no status query: a message whose final reply was lost is an unknown outcome
    #: that ``query_status`` cannot settle (it returns None), so the outbox leaves it to a person.
    deduplicates = False

    def client(self, settings: Any) -> SmtpClient:
        if not isinstance(settings, SmtpSettings) or not settings.host:
            raise PermanentError("e-mail is not configured in this clinic (no SMTP server)", code="not_configured")
        return SmtpClient(settings.host, settings.port, security=settings.security, timeout=settings.timeout_seconds,
                          username=settings.username,
                          password=settings.password.get_secret_value() if settings.password else "",
                          ca_pem=settings.ca_certificate)

    def send(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult:
        if message.channel != "email":
            raise PermanentError(f"the SMTP plugin sends e-mail only, not {message.channel}",
                                 code="unsupported_channel")
        settings = ctx.settings
        client = self.client(settings)
        assert isinstance(settings, SmtpSettings)
        sender, recipient, mail = build(ctx, message, settings)
        utf8 = not (sender + recipient).isascii()
        accepted = client.send(sender=sender, recipient=recipient, smtputf8=utf8,
                               content=mail.as_bytes(policy=SMTPUTF8 if utf8 else SMTP))
        ctx.log.info("e-mail %s accepted by %s: %s", message.idempotency_key, settings.host, accepted.reply)
        return SendResult(DeliveryStatus.sent, str(mail["Message-ID"]))
