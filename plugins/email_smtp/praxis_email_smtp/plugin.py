"""E-mail over SMTP: the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

import ssl

from email_validator import EmailNotValidError, validate_email

from plugin_sdk import N_, Category, ConnectionCheck, FieldError, PluginError, PluginManifest, hookimpl
from plugin_sdk.providers import MessagingProvider
from praxis_email_smtp import __version__
from praxis_email_smtp.provider import SmtpProvider
from praxis_email_smtp.settings import SmtpSettings

manifest = PluginManifest(
    name="email_smtp",
    version=__version__,
    title=N_("E-mail (SMTP)"),
    description=N_("Sends reminders and other messages to patients by e-mail through the clinic's mail server."),
    category=Category.messaging,
    api=">=1.0,<2",
    settings=SmtpSettings,
    handles_patient_data=True,
)

PROVIDER = SmtpProvider()
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@hookimpl
def praxis_messaging_providers() -> list[MessagingProvider]:
    return [PROVIDER]


@hookimpl
def praxis_validate_settings(settings: SmtpSettings) -> list[FieldError]:
    errors = []
    for field in ("from_address", "reply_to"):
        value = getattr(settings, field)
        if value:
            try:
                validate_email(value, check_deliverability=False)
            except EmailNotValidError as exc:
                errors.append(FieldError(field, f"not a valid e-mail address: {exc}", "invalid"))
    if settings.host and not settings.from_address:
        errors.append(FieldError("from_address", "mail needs a sender address", "required"))
    if settings.username and settings.password is None:
        errors.append(FieldError("password", "the user name needs its password", "required"))
    if settings.security == "none" and settings.username and settings.host not in LOCAL_HOSTS:
        errors.append(FieldError("security", "the password would cross the network unencrypted: choose STARTTLS "
                                 "or SSL", "insecure_login"))
    if settings.ca_certificate:
        if settings.security == "none":
            errors.append(FieldError("ca_certificate", "a CA certificate is only used with STARTTLS or SSL",
                                     "unused"))
        try:
            ssl.create_default_context().load_verify_locations(cadata=settings.ca_certificate)
        except (ssl.SSLError, ValueError) as exc:
            errors.append(FieldError("ca_certificate", f"not a PEM certificate: {exc}", "invalid"))
    return errors


@hookimpl
def praxis_test_connection(settings: SmtpSettings) -> ConnectionCheck:
    """Connect, greet, encrypt and log in, then quit without sending anything."""
    try:
        smtp = PROVIDER.client(settings).connect()
    except PluginError as exc:
        return ConnectionCheck(False, f"SMTP: {exc}", {"code": getattr(exc, "code", None)})
    greeting = (smtp.ehlo_resp or b"").decode("utf-8", "replace").partition("\n")[0]
    try:
        smtp.quit()
    except OSError:
        smtp.close()
    return ConnectionCheck(True, f"Connected to {settings.host}:{settings.port} ({settings.security}"
                           f"{', logged in' if settings.username else ''})", {"server": greeting})
