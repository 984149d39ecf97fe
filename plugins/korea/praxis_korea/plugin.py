"""The Korea plugin's manifest and hook implementations (the ``praxis.plugins`` entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plugin_sdk import N_, Category, FieldError, IdentifierType, PluginContext, PluginManifest, hookimpl
from praxis_korea import __version__
from praxis_korea.i18n import LOCALE_DIR, translate
from praxis_korea.identifiers import IdentifierError, mask_rrn, normalize_rrn
from praxis_korea.search import name_search_keys
from praxis_korea.settings import KoreaSettings

RRN = "kr.rrn"

manifest = PluginManifest(
    name="korea",
    version=__version__,
    title=N_("Korea"),
    description=N_("Korean identifiers and search: the resident registration number of patients, checked for a "
                   "real birth date and gender digit, and name search by initial consonants (ㄱㅁㅅ finds 김민수)."),
    category=Category.country,
    countries=("KR",),
    api=">=1.0,<2",
    settings=KoreaSettings,
    handles_patient_data=True,
)

IDENTIFIER_TYPES = [
    IdentifierType(code=RRN, title=N_("Resident registration number"), country="KR", applies_to="patient",
                   normalize=normalize_rrn, mask=mask_rrn),
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
    """Refuse an RRN with a bad length, birth date or gender digit, and a missing one when the clinic
    requires it. A wrong check digit is accepted (numbers issued since October 2020 have none)."""
    locale = ctx.clinic.locale
    identifiers = patient.get("identifiers") or {}
    value = identifiers.get(RRN)
    if value is not None and str(value).strip():
        try:
            normalize_rrn(value)
        except IdentifierError as exc:
            return [FieldError(f"identifiers.{RRN}", translate(locale, exc.msgid, **exc.params), exc.code)]
        return []
    if getattr(ctx.settings, "require_national_id", False):
        return [FieldError(f"identifiers.{RRN}",
                           translate(locale, "Resident registration number is required in this clinic"), "required")]
    return []
