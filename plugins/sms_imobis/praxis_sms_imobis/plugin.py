"""Imobis (Russia): the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

from urllib.parse import urlsplit

from plugin_sdk import N_, Category, ConnectionCheck, FieldError, PluginError, PluginManifest, hookimpl
from plugin_sdk.providers import MessagingProvider
from praxis_sms_imobis import __version__
from praxis_sms_imobis.provider import ImobisProvider
from praxis_sms_imobis.settings import ImobisSettings

manifest = PluginManifest(
    name="sms_imobis",
    version=__version__,
    title=N_("Imobis SMS"),
    description=N_("Sends reminders to patients as SMS through Imobis, optionally only in the daytime."),
    category=Category.messaging,
    countries=("RU",),
    api=">=1.0,<2",
    settings=ImobisSettings,
    handles_patient_data=True,
)

PROVIDER = ImobisProvider()
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@hookimpl
def praxis_messaging_providers() -> list[MessagingProvider]:
    return [PROVIDER]


@hookimpl
def praxis_validate_settings(settings: ImobisSettings) -> list[FieldError]:
    errors = []
    host = urlsplit(settings.endpoint).hostname or ""
    if settings.endpoint.startswith("http://") and host not in LOCAL_HOSTS:
        errors.append(FieldError("endpoint", "use https:// (the token travels in every request)", "insecure_endpoint"))
    if settings.token is not None and not settings.sender:
        errors.append(FieldError("sender", "Imobis needs an approved sender name to send SMS", "required"))
    return errors


@hookimpl
def praxis_test_connection(settings: ImobisSettings) -> ConnectionCheck:
    try:
        with PROVIDER.client(settings) as client:
            balance = client.balance()
    except PluginError as exc:
        return ConnectionCheck(False, f"Imobis: {exc}", {"code": getattr(exc, "code", None)})
    return ConnectionCheck(True, f"Connected to Imobis: balance {balance.get('balance')} {balance.get('currency', '')}"
                           .strip(), {"balance": balance.get("balance")})
