"""The Hungary plugin's manifest and hook implementations (the ``praxis.plugins`` entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plugin_sdk import N_, Category, FieldError, IdentifierType, PluginContext, PluginManifest, hookimpl
from praxis_hungary import __version__
from praxis_hungary.i18n import LOCALE_DIR, translate
from praxis_hungary.identifiers import IdentifierError, mask_stamp, mask_taj, normalize_stamp, normalize_taj
from praxis_hungary.settings import HungarySettings

TAJ = "hu.taj"
STAMP = "hu.stamp"

manifest = PluginManifest(
    name="hungary",
    version=__version__,
    title=N_("Hungary"),
    description=N_("Hungarian identifiers: the TAJ number of patients, checked with its check digit, and the "
                   "stamp number of doctors."),
    category=Category.country,
    countries=("HU",),
    api=">=1.0,<2",
    settings=HungarySettings,
    handles_patient_data=True,
)

IDENTIFIER_TYPES = [
    IdentifierType(code=TAJ, title=N_("TAJ number"), country="HU", applies_to="patient",
                   normalize=normalize_taj, mask=mask_taj),
    IdentifierType(code=STAMP, title=N_("Doctor's stamp number"), country="HU", applies_to="staff",
                   normalize=normalize_stamp, mask=mask_stamp),
]


@hookimpl
def praxis_identifier_types() -> list[IdentifierType]:
    return list(IDENTIFIER_TYPES)


@hookimpl
def praxis_translations_dir() -> Path:
    return LOCALE_DIR


@hookimpl
def praxis_validate_patient(ctx: PluginContext, patient: dict[str, Any]) -> list[FieldError]:
    """Refuse an invalid TAJ number, and a missing one when the clinic requires it."""
    locale = ctx.clinic.locale
    identifiers = patient.get("identifiers") or {}
    value = identifiers.get(TAJ)
    if value is not None and str(value).strip():
        try:
            normalize_taj(value)
        except IdentifierError as exc:
            return [FieldError(f"identifiers.{TAJ}", translate(locale, exc.msgid, **exc.params), exc.code)]
        return []
    if getattr(ctx.settings, "require_national_id", False):
        return [FieldError(f"identifiers.{TAJ}", translate(locale, "TAJ number is required in this clinic"),
                           "required")]
    return []
