"""Per-clinic settings of the Hungary plugin."""

from __future__ import annotations

from pydantic import BaseModel, Field

from plugin_sdk import N_


class HungarySettings(BaseModel):
    require_national_id: bool = Field(
        False,
        title=N_("Require a TAJ number"),
        description=N_("Refuse to save a patient without a valid TAJ number (new and edited patients alike)."),
    )
