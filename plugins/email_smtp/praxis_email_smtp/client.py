"""Sending one e-mail over SMTP with ``smtplib``, every failure mapped to a plugin_sdk error by SMTP phase.

Before the message content is sent (connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, the ``DATA`` command) nothing
can have been delivered: a timeout or a dropped connection there is retryable, a 4xx reply is retryable (with
the delay if the server names one, e.g. "try again in 30 seconds"), a 5xx reply is permanent with the SMTP code.
Once the content has gone out, a lost final reply is an unknown outcome: the server may have queued the mail.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from typing import Literal

from plugin_sdk.errors import PermanentError, RetryableError, UnknownOutcomeError

RETRY_AFTER = re.compile(r"(?:retry|try again)\D{0,25}?(\d{1,6})\s*(?:s\b|sec|second)", re.IGNORECASE)


@dataclass(frozen=True)
class Accepted:
    reply: str  # the server's final reply, usually naming its queue id


def retry_after(text: str) -> float | None:
    match = RETRY_AFTER.search(text)
    return float(match.group(1)) if match else None


def refusal(code: int, text: str, what: str) -> Exception:
    reply = f"{code} {text}".strip()
    if 400 <= code < 500:
        return RetryableError(f"the mail server deferred {what}: {reply}", retry_after=retry_after(text),
                              code=str(code))
    return PermanentError(f"the mail server refused {what}: {reply}", code=str(code))


class SmtpClient:
    def __init__(self, host: str, port: int, *, security: Literal["starttls", "ssl", "none"], timeout: float,
                 username: str = "", password: str = "", ca_pem: str | None = None) -> None:
        self.host, self.port, self.security, self.timeout = host, port, security, timeout
        self.username, self.password = username, password
        self.ca_pem = ca_pem

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_pem:
            context.load_verify_locations(cadata=self.ca_pem)
        return context

    def connect(self) -> smtplib.SMTP:
        """An open, greeted, encrypted and logged-in session, or a plugin_sdk error."""
        try:
            if self.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                      context=self.tls_context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                smtp.ehlo()
                if self.security == "starttls":
                    if not smtp.has_extn("starttls"):
                        raise PermanentError("the mail server does not offer STARTTLS; choose SSL, or 'none' for a "
                                             "relay inside the network", code="starttls_unavailable")
                    smtp.starttls(context=self.tls_context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password)
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"the mail server refused the login: {exc.smtp_code} {_text(exc.smtp_error)}",
                                 code=str(exc.smtp_code)) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"the mail server does not support login: {exc}", code="auth_unsupported") from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(f"the mail server's certificate is not trusted: {exc.verify_message}",
                                 code="certificate_untrusted") from exc
        except smtplib.SMTPResponseException as exc:
            raise refusal(exc.smtp_code, _text(exc.smtp_error), "the connection") from exc
        except TimeoutError as exc:
            raise RetryableError(f"the mail server {self.host}:{self.port} did not answer in time",
                                 code="timeout") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise RetryableError(f"the mail server {self.host}:{self.port} is unreachable: {exc}",
                                 code="unreachable") from exc
        return smtp

    def send(self, *, sender: str, recipient: str, content: bytes, smtputf8: bool = False) -> Accepted:
        """``content``: the whole message with CRLF line ends (``email.policy.SMTP``, or ``SMTPUTF8`` for
        addresses outside ASCII, which need the server's SMTPUTF8 extension)."""
        smtp = self.connect()
        try:
            options: list[str] = []
            if smtputf8:
                if not smtp.has_extn("smtputf8"):
                    raise PermanentError("an address has non-ASCII characters and the mail server does not support "
                                         "SMTPUTF8", code="smtputf8_unsupported")
                options = ["SMTPUTF8", "BODY=8BITMIME"]
            return self._transaction(smtp, sender, recipient, content, options)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _transaction(self, smtp: smtplib.SMTP, sender: str, recipient: str, content: bytes,
                     options: list[str]) -> Accepted:
        try:
            code, text = smtp.mail(sender, options)
            if code != 250:
                raise refusal(code, _text(text), f"the sender {sender}")
            code, text = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise refusal(code, _text(text), f"the recipient {recipient}")
            code, text = smtp.docmd("DATA")
            if code != 354:
                raise refusal(code, _text(text), "the message")
        except (TimeoutError, OSError, smtplib.SMTPServerDisconnected) as exc:
            raise RetryableError(f"the mail server stopped answering before the message was sent: {exc}",
                                 code="timeout" if isinstance(exc, TimeoutError) else "connection_lost") from exc
        payload = re.sub(rb"(?m)^\.", b"..", content)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        try:
            smtp.send(payload + b".\r\n")
            code, text = smtp.getreply()
        except (TimeoutError, OSError, smtplib.SMTPServerDisconnected) as exc:
            raise UnknownOutcomeError(
                f"the mail server did not confirm the message after receiving it ({exc}); it may have been queued"
            ) from exc
        if code != 250:
            raise refusal(code, _text(text), "the message")
        return Accepted(_text(text))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
