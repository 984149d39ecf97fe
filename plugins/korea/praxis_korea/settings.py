"""Per-clinic settings of the Korea plugin."""

from __future__ import annotations

from pydantic import BaseModel, Field

from plugin_sdk import N_


class KoreaSettings(BaseModel):
    require_national_id: bool = Field(
        False,
        title=N_("Require a resident registration number"),
        description=N_("Refuse to save a patient without a valid resident registration number (new and edited "
                       "patients alike)."),
    )
