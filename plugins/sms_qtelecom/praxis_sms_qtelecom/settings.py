"""Per-clinic settings of the QuickTelecom plugin. ``SecretStr`` fields are stored encrypted."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import N_

DEFAULT_ENDPOINT = "https://service.qtelecom.ru/public/http/"


class QtelecomSettings(BaseModel):
    endpoint: str = Field(DEFAULT_ENDPOINT, pattern=r"^https?://[^\s/]+", title=N_("API address"),
                          description=N_("The QuickTelecom HTTP protocol address (go.qtelecom.ru works too)."))
    user: str = Field("", max_length=100, title=N_("Login"), description=N_("The go.qtelecom.ru login."))
    password: SecretStr | None = Field(None, title=N_("Password"))
    sender: str | None = Field(None, min_length=1, max_length=11, title=N_("Sender name"),
                               description=N_("A sender name registered for the account."))
    timeout_seconds: float = Field(10.0, gt=0, le=60, title=N_("Timeout (seconds)"))
