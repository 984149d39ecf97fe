"""Per-clinic settings of the SMTP plugin. ``SecretStr`` fields are stored encrypted."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import N_


class SmtpSettings(BaseModel):
    host: str = Field("", max_length=255, title=N_("SMTP server"), description=N_("Host name of the mail relay."))
    port: int = Field(587, ge=1, le=65535, title=N_("Port"),
                      description=N_("587 for STARTTLS, 465 for SSL, 25 for a relay inside the network."))
    security: Literal["starttls", "ssl", "none"] = Field("starttls", title=N_("Encryption"))
    username: str = Field("", max_length=255, title=N_("User name"), description=N_("Empty: no login."))
    password: SecretStr | None = Field(None, title=N_("Password"))
    from_address: str = Field("", max_length=254, title=N_("Sender address"))
    from_name: str = Field("", max_length=100, title=N_("Sender name"))
    reply_to: str = Field("", max_length=254, title=N_("Reply-To address"))
    ca_certificate: str | None = Field(None, title=N_("Trusted CA (PEM)"),
                                       description=N_("Trust this certificate authority too, for a relay with a "
                                                      "private certificate."))
    timeout_seconds: float = Field(10.0, gt=0, le=60, title=N_("Timeout (seconds)"))
