"""Per-clinic settings of the NHN Cloud SMS plugin. ``SecretStr`` fields are stored encrypted."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import N_

DEFAULT_ENDPOINT = "https://api-sms.cloud.toast.com"


class NhnSettings(BaseModel):
    endpoint: str = Field(DEFAULT_ENDPOINT, pattern=r"^https?://[^\s/]+", title=N_("API address"),
                          description=N_("Base URL of the NHN Cloud SMS API (the /sms/v3.0/... paths are below it)."))
    app_key: str = Field("", max_length=100, title=N_("App key"),
                         description=N_("The NHN Cloud project's SMS app key (part of every URL)."))
    secret_key: SecretStr | None = Field(None, title=N_("Secret key"),
                                         description=N_("Sent as the X-Secret-Key header (API v3.0)."))
    send_no: str = Field("", max_length=20, title=N_("Sender number"),
                         description=N_("A sender number registered in the NHN Cloud console (발신번호 사전등록)."))
    lms_title: str = Field("안내", max_length=40, title=N_("Title of long messages"),
                           description=N_("Used for messages over 90 bytes (LMS) that have no subject of their own."))
    allow_international: bool = Field(False, title=N_("Send to numbers outside Korea"),
                                      description=N_("Needs international SMS enabled in the NHN Cloud project."))
    timeout_seconds: float = Field(10.0, gt=0, le=60, title=N_("Timeout (seconds)"))
