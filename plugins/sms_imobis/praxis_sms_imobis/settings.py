"""Per-clinic settings of the Imobis plugin. ``SecretStr`` fields are stored encrypted."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import N_

DEFAULT_ENDPOINT = "https://api.imobis.ru/v3"


class ImobisSettings(BaseModel):
    endpoint: str = Field(DEFAULT_ENDPOINT, pattern=r"^https?://[^\s/]+", title=N_("API address"),
                          description=N_("Imobis API v3; the sandbox is https://sandbox.imobis.ru/v3."))
    token: SecretStr | None = Field(None, title=N_("API token"),
                                    description=N_("Sent as 'Authorization: Token ...' (a UUID from the cabinet)."))
    sender: str = Field("", max_length=11, title=N_("Sender name"), description=N_("A sender name approved in Imobis."))
    ttl_seconds: int = Field(86400, ge=60, le=259200, title=N_("Validity (seconds)"),
                             description=N_("How long the operator keeps trying to deliver."))
    day_delivery: bool = Field(False, title=N_("Deliver only in the daytime"),
                               description=N_("Imobis holds messages outside its daytime window (09:00-20:00)."))
    timeout_seconds: float = Field(10.0, gt=0, le=60, title=N_("Timeout (seconds)"))
