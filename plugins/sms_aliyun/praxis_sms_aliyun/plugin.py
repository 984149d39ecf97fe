"""Aliyun SMS (China): the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

from urllib.parse import urlsplit

from plugin_sdk import N_, Category, ConnectionCheck, FieldError, PluginContext, PluginError, PluginManifest, hookimpl
from plugin_sdk.providers import MessagingProvider
from praxis_sms_aliyun import __version__
from praxis_sms_aliyun.client import AliyunError
from praxis_sms_aliyun.provider import AliyunProvider
from praxis_sms_aliyun.settings import AliyunSettings

manifest = PluginManifest(
    name="sms_aliyun",
    version=__version__,
    title=N_("Aliyun SMS"),
    description=N_("Sends reminders to patients as SMS through Alibaba Cloud (Aliyun) with an approved signature "
                   "and template, with delivery receipts and replies."),
    category=Category.messaging,
    countries=("CN",),
    api=">=1.0,<2",
    settings=AliyunSettings,
    handles_patient_data=True,
)

PROVIDER = AliyunProvider()
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
REVIEW = {0: "still under review", 1: "approved", 2: "rejected"}


@hookimpl
def praxis_messaging_providers() -> list[MessagingProvider]:
    return [PROVIDER]


@hookimpl
def praxis_validate_settings(settings: AliyunSettings) -> list[FieldError]:
    errors = []
    host = urlsplit(settings.endpoint).hostname or ""
    if settings.endpoint.startswith("http://") and host not in LOCAL_HOSTS:
        errors.append(FieldError("endpoint", "use https:// (plain http only for a server on this machine)",
                                 "insecure_endpoint"))
    if settings.access_key_id and not settings.sign_name:
        errors.append(FieldError("sign_name", "Aliyun sends only with an approved signature", "required"))
    if settings.access_key_id and not settings.template_code:
        errors.append(FieldError("template_code", "Aliyun sends only through an approved template", "required"))
    if settings.template_code and not settings.template_code.startswith("SMS_"):
        errors.append(FieldError("template_code", "template codes look like SMS_153055065", "invalid"))
    return errors


@hookimpl
def praxis_test_connection(ctx: PluginContext, settings: AliyunSettings) -> ConnectionCheck:
    """Ask for the review status of the signature and the template: checks the AccessKey and both approvals."""
    try:
        with PROVIDER.client(ctx, settings) as client:
            sign = client.sign_status(settings.sign_name)
            template = client.template_status(settings.template_code)
    except AliyunError as exc:
        return ConnectionCheck(False, f"Aliyun refused: {exc}", {"code": exc.code})
    except PluginError as exc:
        return ConnectionCheck(False, f"Aliyun could not be reached: {exc}", {"code": getattr(exc, "code", None)})
    sign_state, template_state = int(sign.get("SignStatus", -1)), int(template.get("TemplateStatus", -1))
    details = {"sign_status": sign_state, "template_status": template_state}
    if sign_state != 1 or template_state != 1:
        return ConnectionCheck(False, f"the AccessKey works, but signature {settings.sign_name} is "
                               f"{REVIEW.get(sign_state, 'unknown')} and template {settings.template_code} is "
                               f"{REVIEW.get(template_state, 'unknown')}", {**details, "code": "not_approved"})
    return ConnectionCheck(True, f"Connected to Aliyun SMS; signature {settings.sign_name} and template "
                           f"{settings.template_code} are approved", details)
