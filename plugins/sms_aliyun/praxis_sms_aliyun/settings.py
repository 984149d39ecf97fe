"""Per-clinic settings of the Aliyun SMS plugin. ``SecretStr`` fields are stored encrypted."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import N_

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"


class AliyunSettings(BaseModel):
    endpoint: str = Field(DEFAULT_ENDPOINT, pattern=r"^https?://[^\s/]+", title=N_("API address"),
                          description=N_("The Dysmsapi endpoint (RPC style, API version 2017-05-25)."))
    region_id: str = Field("cn-hangzhou", pattern=r"^[a-z]{2}-[a-z0-9-]+$", title=N_("Region"))
    access_key_id: str = Field("", max_length=64, title=N_("AccessKey ID"))
    access_key_secret: SecretStr | None = Field(None, title=N_("AccessKey secret"))
    sign_name: str = Field("", max_length=40, title=N_("Signature (签名)"),
                           description=N_("An approved SMS signature, shown as 【signature】 in front of the text."))
    template_code: str = Field("", max_length=40, title=N_("Template code"),
                               description=N_("An approved template, e.g. SMS_153055065, used when a message does "
                                              "not name its own."))
    template_param_name: str = Field("content", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", title=N_("Text variable"),
                                     description=N_("The template variable that receives the message text, "
                                                    "e.g. content for a template such as 您好，${content}."))
    callback_token: SecretStr | None = Field(
        None, min_length=16, title=N_("Receipt push token"),
        description=N_("A random secret put in the receipt/reply push URL configured in the Aliyun console; "
                       "pushes without it are refused."))
    timeout_seconds: float = Field(10.0, ge=1, le=60, title=N_("Timeout (seconds)"),
                                   description=N_("Aliyun asks for at least one second."))
