"""The Russia plugin's manifest and hook implementations (the ``praxis.plugins`` entry point)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from plugin_sdk import N_, Category, FieldError, IdentifierType, PluginContext, PluginManifest, hookimpl
from praxis_russia import __version__
from praxis_russia.i18n import LOCALE_DIR, translate
from praxis_russia.identifiers import IdentifierError, mask_oms, mask_snils, normalize_oms, normalize_snils
from praxis_russia.settings import RussiaSettings

SNILS = "ru.snils"
OMS = "ru.oms"

manifest = PluginManifest(
    name="russia",
    version=__version__,
    title=N_("Russia"),
    description=N_("Russian identifiers: the SNILS of patients, checked with its check number, and the 16-digit "
                   "OMS unified policy number."),
    category=Category.country,
    countries=("RU",),
    api=">=1.0,<2",
    settings=RussiaSettings,
    handles_patient_data=True,
)

IDENTIFIER_TYPES = [
    IdentifierType(code=SNILS, title=N_("SNILS"), country="RU", applies_to="patient",
                   normalize=normalize_snils, mask=mask_snils),
    IdentifierType(code=OMS, title=N_("OMS policy number"), country="RU", applies_to="patient",
                   normalize=normalize_oms, mask=mask_oms),
]

# identifier code -> (normaliser, the setting that makes it required, the message when it is missing)
CHECKS: dict[str, tuple[Callable[[str], str], str, str]] = {
    SNILS: (normalize_snils, "require_national_id", N_("SNILS is required in this clinic")),
    OMS: (normalize_oms, "require_oms_policy", N_("OMS policy number is required in this clinic")),
}


@hookimpl
def praxis_identifier_types() -> list[IdentifierType]:
    return list(IDENTIFIER_TYPES)


@hookimpl
def praxis_translations_dir() -> Path:
    return LOCALE_DIR


@hookimpl
def praxis_validate_patient(ctx: PluginContext, patient: dict[str, Any]) -> list[FieldError]:
    """Refuse an invalid SNILS or OMS policy number, and a missing one when the clinic requires it."""
    locale = ctx.clinic.locale
    identifiers = patient.get("identifiers") or {}
    errors = []
    for code, (normalize, required_by, missing) in CHECKS.items():
        field = f"identifiers.{code}"
        value = identifiers.get(code)
        if value is not None and str(value).strip():
            try:
                normalize(value)
            except IdentifierError as exc:
                errors.append(FieldError(field, translate(locale, exc.msgid, **exc.params), exc.code))
        elif getattr(ctx.settings, required_by, False):
            errors.append(FieldError(field, translate(locale, missing), "required"))
    return errors
