"""Per-clinic settings of the China plugin."""

from __future__ import annotations

from pydantic import BaseModel, Field

from plugin_sdk import N_


class ChinaSettings(BaseModel):
    require_national_id: bool = Field(
        False,
        title=N_("Require a resident identity number"),
        description=N_("Refuse to save a patient without a valid resident identity number (new and edited "
                       "patients alike)."),
    )
