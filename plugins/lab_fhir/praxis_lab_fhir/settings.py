"""Per-clinic settings of the FHIR lab connector. ``SecretStr`` fields are stored encrypted."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import N_


class FhirSettings(BaseModel):
    base_url: str = Field("https://fhir.lab.example/r4", pattern=r"^https?://[^\s/]+", title=N_("FHIR base URL"),
                          description=N_("The lab's FHIR R4 endpoint (orders are posted there as transactions)."))
    token: SecretStr | None = Field(None, title=N_("Access token"), description=N_("Sent as a Bearer token."))
    identifier_system: str = Field("urn:praxis:placer", min_length=3, max_length=200,
                                   title=N_("Placer identifier system"),
                                   description=N_("The system of the order identifiers (type PLAC) this clinic uses."))
    timeout_seconds: float = Field(15.0, gt=0, le=120, title=N_("Timeout (seconds)"))
    page_size: int = Field(50, ge=1, le=500, title=N_("Reports per poll"))
    printer_host: str | None = Field(None, max_length=200, title=N_("Label printer host"))
    printer_port: int | None = Field(None, ge=1, le=65535, title=N_("Label printer port"))
