"""The China plugin's manifest and hook implementations (the ``praxis.plugins`` entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plugin_sdk import N_, Category, FieldError, IdentifierType, PluginContext, PluginManifest, hookimpl
from praxis_china import __version__
from praxis_china.i18n import LOCALE_DIR, translate
from praxis_china.identifiers import IdentifierError, mask_ric, normalize_ric
from praxis_china.search import name_search_keys
from praxis_china.settings import ChinaSettings

RIC = "cn.ric"

manifest = PluginManifest(
    name="china",
    version=__version__,
    title=N_("China"),
    description=N_("Chinese identifiers and search: the 18-digit resident identity number of patients, checked "
                   "with its check character and birth date, and name search by pinyin and initials (zw finds "
                   "张伟), including every reading of the surname."),
    category=Category.country,
    countries=("CN",),
    api=">=1.0,<2",
    settings=ChinaSettings,
    handles_patient_data=True,
)

IDENTIFIER_TYPES = [
    IdentifierType(code=RIC, title=N_("Resident identity number"), country="CN", applies_to="patient",
                   normalize=normalize_ric, mask=mask_ric),
]


@hookimpl
def praxis_identifier_types() -> list[IdentifierType]:
    return list(IDENTIFIER_TYPES)


@hookimpl
def praxis_translations_dir() -> Path:
    return LOCALE_DIR


@hookimpl
def praxis_name_search_keys(text: str) -> list[str]:
    return name_search_keys(text)


@hookimpl
def praxis_validate_patient(ctx: PluginContext, patient: dict[str, Any]) -> list[FieldError]:
    """Refuse an invalid resident identity number, and a missing one when the clinic requires it."""
    locale = ctx.clinic.locale
    identifiers = patient.get("identifiers") or {}
    value = identifiers.get(RIC)
    if value is not None and str(value).strip():
        try:
            normalize_ric(value)
        except IdentifierError as exc:
            return [FieldError(f"identifiers.{RIC}", translate(locale, exc.msgid, **exc.params), exc.code)]
        return []
    if getattr(ctx.settings, "require_national_id", False):
        return [FieldError(f"identifiers.{RIC}",
                           translate(locale, "Resident identity number is required in this clinic"), "required")]
    return []
