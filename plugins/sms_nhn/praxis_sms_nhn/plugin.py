"""NHN Cloud SMS (Korea): the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from plugin_sdk import N_, Category, ConnectionCheck, FieldError, PluginError, PluginManifest, hookimpl
from plugin_sdk.providers import MessagingProvider
from praxis_sms_nhn import __version__
from praxis_sms_nhn.client import NhnError
from praxis_sms_nhn.encoding import TITLE_MAX_BYTES, byte_length, unsupported
from praxis_sms_nhn.provider import NhnProvider
from praxis_sms_nhn.settings import NhnSettings

manifest = PluginManifest(
    name="sms_nhn",
    version=__version__,
    title=N_("NHN Cloud SMS"),
    description=N_("Sends reminders to patients as SMS or LMS through NHN Cloud, from a pre-registered sender "
                   "number, within the EUC-KR byte limits of Korean carriers."),
    category=Category.messaging,
    countries=("KR",),
    api=">=1.0,<2",
    settings=NhnSettings,
    handles_patient_data=True,
)

PROVIDER = NhnProvider()
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@hookimpl
def praxis_messaging_providers() -> list[MessagingProvider]:
    return [PROVIDER]


@hookimpl
def praxis_validate_settings(settings: NhnSettings) -> list[FieldError]:
    errors = []
    host = urlsplit(settings.endpoint).hostname or ""
    if settings.endpoint.startswith("http://") and host not in LOCAL_HOSTS:
        errors.append(FieldError("endpoint", "use https:// (plain http only for a server on this machine)",
                                 "insecure_endpoint"))
    if settings.app_key and not re.fullmatch(r"[A-Za-z0-9]+", settings.app_key):
        errors.append(FieldError("app_key", "an app key has only letters and digits", "invalid"))
    if settings.send_no and not re.fullmatch(r"\d{7,12}", re.sub(r"-", "", settings.send_no)):
        errors.append(FieldError("send_no", "a Korean phone number of 7 to 12 digits, e.g. 15446859 or 02-123-4567",
                                 "invalid"))
    if settings.app_key and not settings.send_no:
        errors.append(FieldError("send_no", "Korean law requires a pre-registered sender number", "required"))
    bad = unsupported(settings.lms_title)
    if bad:
        errors.append(FieldError("lms_title", f"characters outside EUC-KR: {''.join(bad)}", "unsupported_character"))
    elif byte_length(settings.lms_title) > TITLE_MAX_BYTES:
        errors.append(FieldError("lms_title", f"at most {TITLE_MAX_BYTES} bytes in EUC-KR (a Hangul syllable is 2)",
                                 "too_long"))
    return errors


@hookimpl
def praxis_test_connection(settings: NhnSettings) -> ConnectionCheck:
    """List the registered sender numbers: checks the keys and that the configured number is among them."""
    try:
        with PROVIDER.client(settings) as client:
            numbers = client.send_numbers()
    except NhnError as exc:
        return ConnectionCheck(False, f"NHN Cloud refused the keys: {exc}", {"code": str(exc.code)})
    except PluginError as exc:
        return ConnectionCheck(False, f"NHN Cloud could not be reached: {exc}", {"code": getattr(exc, "code", None)})
    usable = sorted(str(n.get("sendNo")) for n in numbers if n.get("useYn", "Y") == "Y" and n.get("blockYn") != "Y")
    wanted = re.sub(r"\D", "", settings.send_no)
    if wanted not in usable:
        return ConnectionCheck(False, f"the keys work, but sender number {settings.send_no or '(none)'} is not "
                               f"registered and usable; registered: {', '.join(usable) or 'none'}",
                               {"code": "unregistered_sender", "registered": usable})
    return ConnectionCheck(True, f"Connected to NHN Cloud; sender number {wanted} is registered",
                           {"registered": usable})
