"""QuickTelecom (Russia): the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

from urllib.parse import urlsplit

from plugin_sdk import N_, Category, ConnectionCheck, FieldError, PluginError, PluginManifest, hookimpl
from plugin_sdk.providers import MessagingProvider
from praxis_sms_qtelecom import __version__
from praxis_sms_qtelecom.provider import QtelecomProvider
from praxis_sms_qtelecom.settings import QtelecomSettings

manifest = PluginManifest(
    name="sms_qtelecom",
    version=__version__,
    title=N_("QuickTelecom SMS"),
    description=N_("Sends reminders to patients as SMS through QuickTelecom (QTelecom), with delivery statuses."),
    category=Category.messaging,
    countries=("RU",),
    api=">=1.0,<2",
    settings=QtelecomSettings,
    handles_patient_data=True,
)

PROVIDER = QtelecomProvider()
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@hookimpl
def praxis_messaging_providers() -> list[MessagingProvider]:
    return [PROVIDER]


@hookimpl
def praxis_validate_settings(settings: QtelecomSettings) -> list[FieldError]:
    errors = []
    host = urlsplit(settings.endpoint).hostname or ""
    if settings.endpoint.startswith("http://") and host not in LOCAL_HOSTS:
        errors.append(FieldError("endpoint", "use https:// (the login and password travel in every request)",
                                 "insecure_endpoint"))
    if settings.user and settings.password is None:
        errors.append(FieldError("password", "the login needs its password", "required"))
    return errors


@hookimpl
def praxis_test_connection(settings: QtelecomSettings) -> ConnectionCheck:
    try:
        with PROVIDER.client(settings) as client:
            balance = client.balance()
    except PluginError as exc:
        return ConnectionCheck(False, f"QuickTelecom: {exc}", {"code": getattr(exc, "code", None)})
    return ConnectionCheck(True, f"Connected to QuickTelecom: balance {balance['balance']}", balance)
