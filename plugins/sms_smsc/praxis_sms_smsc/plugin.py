"""SMSC.ru: the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

from urllib.parse import urlsplit

from plugin_sdk import (
    N_,
    Category,
    ConnectionCheck,
    FieldError,
    PluginContext,
    PluginError,
    PluginManifest,
    hookimpl,
)
from plugin_sdk.providers import MessagingProvider
from praxis_sms_smsc import __version__
from praxis_sms_smsc.client import SmscError
from praxis_sms_smsc.provider import SmscProvider, recipe_fields
from praxis_sms_smsc.settings import SmscSettings

manifest = PluginManifest(
    name="sms_smsc",
    version=__version__,
    title=N_("SMSC.ru SMS"),
    description=N_("Sends reminders and other messages to patients as SMS through SMSC.ru, with delivery "
                   "statuses and incoming replies."),
    category=Category.messaging,
    countries=("RU",),
    api=">=1.0,<2",
    settings=SmscSettings,
    handles_patient_data=True,  # phone numbers and message texts leave the clinic
)

PROVIDER = SmscProvider()
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@hookimpl
def praxis_messaging_providers() -> list[MessagingProvider]:
    return [PROVIDER]


@hookimpl
def praxis_validate_settings(settings: SmscSettings) -> list[FieldError]:
    errors = []
    host = urlsplit(settings.endpoint).hostname or ""
    if settings.endpoint.startswith("http://") and host not in LOCAL_HOSTS:
        errors.append(FieldError("endpoint", "use https:// (plain http only for a server on this machine)",
                                 "insecure_endpoint"))
    try:
        names = recipe_fields(settings.callback_hash_recipe)
    except ValueError as exc:
        errors.append(FieldError("callback_hash_recipe", f"not a valid recipe: {exc}", "invalid"))
    else:
        if "secret" not in names:
            errors.append(FieldError("callback_hash_recipe", "must contain {secret}, or anyone could forge a "
                                     "callback", "secret_missing"))
        if any(not name.isidentifier() for name in names):
            errors.append(FieldError("callback_hash_recipe", "placeholders must be plain field names such as {id}",
                                     "invalid"))
    if settings.password is not None and not settings.password.get_secret_value() and not settings.login:
        errors.append(FieldError("password", "an API key or a password is needed", "required"))
    return errors


@hookimpl
def praxis_test_connection(ctx: PluginContext, settings: SmscSettings) -> ConnectionCheck:
    """Ask for the account balance: cheap, and it checks the login, the password and the address."""
    try:
        with PROVIDER.client(settings) as client:
            balance = client.balance()
    except SmscError as exc:
        return ConnectionCheck(False, f"SMSC refused the credentials: {exc}", {"code": str(exc.code)})
    except PluginError as exc:
        return ConnectionCheck(False, f"SMSC could not be reached: {exc}", {"code": getattr(exc, "code", None)})
    return ConnectionCheck(True, f"Connected to SMSC: balance {balance.get('balance')} {balance.get('currency', '')}"
                           .strip(), {"balance": balance.get("balance"), "currency": balance.get("currency")})
