"""The plugin loaded through its entry point into a Praxis: identifier types and the TAJ veto."""

from __future__ import annotations

import importlib.metadata

import pytest

from core.audit import Actor
from plugin_sdk.errors import ValidationFailed
from tests.conftest import add_clinic

ENTRY_POINT = importlib.metadata.EntryPoint("hungary", "praxis_hungary.plugin", "praxis.plugins")
ADMIN = Actor(None, "t")


def test_the_installed_distribution_registers_the_entry_point():
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("hungary") == "praxis_hungary.plugin"


@pytest.fixture
def praxis(make_praxis):
    return make_praxis([ENTRY_POINT])


def test_manifest_and_identifier_types(praxis):
    loaded = praxis.runtime.get("hungary")
    assert not loaded.quarantined, loaded.quarantine_reason
    assert loaded.manifest.countries == ("HU",) and loaded.manifest.handles_patient_data
    [result] = praxis.runtime.collect("praxis_identifier_types")
    types = {t.code: t for t in result.value}
    assert types["hu.taj"].applies_to == "patient" and types["hu.stamp"].applies_to == "staff"
    assert types["hu.taj"].normalize("037 687 210") == "037687210"
    assert types["hu.taj"].mask("037687210") == "*** *** 210"
    with pytest.raises(ValueError, match="check digit"):
        types["hu.taj"].normalize("037 687 211")
    [folder] = praxis.runtime.collect("praxis_translations_dir")
    assert (folder.value / "hu" / "LC_MESSAGES" / "praxis_hungary.mo").is_file()


def refusal(praxis, clinic, patient):
    with pytest.raises(ValidationFailed) as refused:
        praxis.runtime.veto("praxis_validate_patient", clinic, patient=patient, is_new=True)
    assert refused.value.plugin == "hungary"
    return [(e.field, e.code, e.message) for e in refused.value.errors]


def test_required_taj_refuses_a_missing_or_invalid_number_and_accepts_a_valid_one(praxis):
    clinic = add_clinic(praxis, locale="en")
    praxis.plugins.enable(clinic, "hungary", ADMIN)
    veto = praxis.runtime.veto
    # Not required yet: a patient without a TAJ passes, an invalid one is still refused.
    veto("praxis_validate_patient", clinic, patient={"family_name": "Kovács", "identifiers": {}}, is_new=True)
    assert refusal(praxis, clinic, {"identifiers": {"hu.taj": "037 687 211"}}) == [
        ("identifiers.hu.taj", "invalid_checksum",
         "TAJ number's check digit does not match: look for a mistyped digit")]

    praxis.plugins.configure(clinic, "hungary", {"require_national_id": True}, ADMIN)
    assert refusal(praxis, clinic, {"family_name": "Kovács", "identifiers": {}}) == [
        ("identifiers.hu.taj", "required", "TAJ number is required in this clinic")]
    assert refusal(praxis, clinic, {"family_name": "Kovács"})[0][1] == "required"
    assert refusal(praxis, clinic, {"identifiers": {"hu.taj": "  "}})[0][1] == "required"
    assert refusal(praxis, clinic, {"identifiers": {"hu.taj": "12345"}}) == [
        ("identifiers.hu.taj", "invalid_length", "TAJ number must have 9 digits, not 5")]
    veto("praxis_validate_patient", clinic, patient={"identifiers": {"hu.taj": "037 687 210"}}, is_new=True)
    veto("praxis_validate_patient", clinic, patient={"identifiers": {"hu.taj": "037687210"}}, is_new=False)

    praxis.plugins.disable(clinic, "hungary", ADMIN)
    veto("praxis_validate_patient", clinic, patient={"family_name": "Kovács", "identifiers": {}}, is_new=True)
    veto("praxis_validate_patient", clinic, patient={"identifiers": {"hu.taj": "037 687 211"}}, is_new=True)


def test_messages_follow_the_clinic_locale(praxis):
    clinic = add_clinic(praxis, locale="hu")
    praxis.plugins.enable(clinic, "hungary", ADMIN)
    praxis.plugins.configure(clinic, "hungary", {"require_national_id": True}, ADMIN)
    assert refusal(praxis, clinic, {"identifiers": {}}) == [
        ("identifiers.hu.taj", "required", "Ebben a rendelőben a TAJ-szám megadása kötelező")]


def test_the_setting_is_per_clinic_and_validated(praxis):
    strict = add_clinic(praxis, name="Budapest", locale="en")
    relaxed = add_clinic(praxis, name="Debrecen", locale="en")
    for clinic in (strict, relaxed):
        praxis.plugins.enable(clinic, "hungary", ADMIN)
    praxis.plugins.configure(strict, "hungary", {"require_national_id": True}, ADMIN)
    refusal(praxis, strict, {"identifiers": {}})
    praxis.runtime.veto("praxis_validate_patient", relaxed, patient={"identifiers": {}}, is_new=True)
    from core.plugins.settings import SettingsInvalid

    with pytest.raises(SettingsInvalid) as invalid:
        praxis.plugins.configure(strict, "hungary", {"require_national_id": "maybe"}, ADMIN)
    assert invalid.value.errors[0].field == "require_national_id"
