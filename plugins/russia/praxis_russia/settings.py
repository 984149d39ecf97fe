"""Per-clinic settings of the Russia plugin."""

from __future__ import annotations

from pydantic import BaseModel, Field

from plugin_sdk import N_


class RussiaSettings(BaseModel):
    require_national_id: bool = Field(
        False,
        title=N_("Require a SNILS"),
        description=N_("Refuse to save a patient without a valid SNILS (new and edited patients alike)."),
    )
    require_oms_policy: bool = Field(
        False,
        title=N_("Require an OMS policy number"),
        description=N_("Refuse to save a patient without a 16-digit OMS policy number (new and edited patients "
                       "alike)."),
    )
