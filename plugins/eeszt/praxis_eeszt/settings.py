"""Per-clinic settings of the EESZT plugin, shown by the core's generic settings form.

The client certificate is normally set through ``POST .../x/eeszt/certificate`` (upload of the PEM or PKCS#12
file the institution downloads from the EESZT portal, activated with the code sent by SMS); the route stores it
here as a secret (encrypted by the core). Pasting a PEM bundle into the form works too; it is then activated
with the same route's ``sms_code`` alone.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import N_


class EesztSettings(BaseModel):
    institution_id: str = Field(
        "", pattern=r"^(\d{6})?$", title=N_("Institution id (OTH / NNGYK)"),
        description=N_("6 digits, printed on page 1 of the operating licence, e.g. 506097."),
    )
    unit_code: str = Field(
        "", pattern=r"^(\d{9})?$", title=N_("Organisational unit code"),
        description=N_("9 digits with leading zeros, e.g. 001044299."),
    )
    service_url: str = Field(
        "", pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$", max_length=300, title=N_("EESZT service URL"),
        description=N_("The address of the EESZT service (or of the test service), e.g. https://eeszt.example.hu."),
    )
    client_certificate: SecretStr | None = Field(
        None, title=N_("Institution's client certificate"),
        description=N_("PEM: the certificate and its private key. Upload the file from the EESZT portal on the "
                       "EESZT page instead of pasting it here."),
    )
    session_hours: float = Field(
        7.0, ge=0.5, le=12, title=N_("Doctor login kept for (hours)"),
        description=N_("A doctor's EESZT login is reused for this long, then the doctor is asked again."),
    )
    timeout_seconds: float = Field(10.0, ge=1, le=60, title=N_("Timeout (seconds)"),
                                   description=N_("How long to wait for an answer from EESZT."))

    @property
    def configured(self) -> bool:
        return bool(self.institution_id and self.unit_code and self.service_url and self.client_certificate)

    def missing(self) -> list[str]:
        """The settings still empty, by field name."""
        return [name for name in ("institution_id", "unit_code", "service_url", "client_certificate")
                if not getattr(self, name)]
