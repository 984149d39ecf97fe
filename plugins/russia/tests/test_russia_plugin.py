"""The plugin loaded through its entry point into a Praxis: identifier types and the SNILS/OMS veto."""

from __future__ import annotations

import importlib.metadata

import pytest

from core.audit import Actor
from plugin_sdk.errors import ValidationFailed
from tests.conftest import add_clinic

ENTRY_POINT = importlib.metadata.EntryPoint("russia", "praxis_russia.plugin", "praxis.plugins")
ADMIN = Actor(None, "t")
SNILS = "112-233-445 95"
OMS = "1234 5678 9012 3456"


def test_the_installed_distribution_registers_the_entry_point():
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("russia") == "praxis_russia.plugin"


@pytest.fixture
def praxis(make_praxis):
    return make_praxis([ENTRY_POINT])


@pytest.fixture
def clinic(praxis):
    clinic = add_clinic(praxis, name="Moscow", country="RU", timezone="Europe/Moscow", locale="en")
    praxis.plugins.enable(clinic, "russia", ADMIN)
    return clinic


def refusal(praxis, clinic, patient):
    with pytest.raises(ValidationFailed) as refused:
        praxis.runtime.veto("praxis_validate_patient", clinic, patient=patient, is_new=True)
    assert refused.value.plugin == "russia"
    return [(e.field, e.code, e.message) for e in refused.value.errors]


def accept(praxis, clinic, patient):
    praxis.runtime.veto("praxis_validate_patient", clinic, patient=patient, is_new=True)


def test_manifest_and_identifier_types(praxis):
    loaded = praxis.runtime.get("russia")
    assert not loaded.quarantined, loaded.quarantine_reason
    assert loaded.manifest.countries == ("RU",) and loaded.manifest.handles_patient_data
    [result] = praxis.runtime.collect("praxis_identifier_types")
    types = {t.code: t for t in result.value}
    assert {t.applies_to for t in types.values()} == {"patient"}
    assert types["ru.snils"].normalize(SNILS) == "11223344595"
    assert types["ru.snils"].mask("11223344595") == "***-***-**5 95"
    assert types["ru.oms"].normalize(OMS) == "1234567890123456"
    assert types["ru.oms"].mask("1234567890123456") == "**** **** **** *456"


def test_required_snils_refuses_a_missing_or_invalid_number_and_accepts_a_valid_one(praxis, clinic):
    accept(praxis, clinic, {"identifiers": {}})
    assert refusal(praxis, clinic, {"identifiers": {"ru.snils": "112-233-445 96", "ru.oms": "123"}}) == [
        ("identifiers.ru.snils", "invalid_checksum", "SNILS check number does not match: look for a mistyped digit"),
        ("identifiers.ru.oms", "invalid_length", "OMS policy number must have 16 digits, not 3"),
    ]

    praxis.plugins.configure(clinic, "russia", {"require_national_id": True}, ADMIN)
    assert refusal(praxis, clinic, {"family_name": "Иванов", "identifiers": {"ru.oms": OMS}}) == [
        ("identifiers.ru.snils", "required", "SNILS is required in this clinic")]
    assert refusal(praxis, clinic, {"family_name": "Иванов"})[0][1] == "required"
    assert refusal(praxis, clinic, {"identifiers": {"ru.snils": "11223344"}})[0][1] == "invalid_length"
    accept(praxis, clinic, {"identifiers": {"ru.snils": SNILS}})

    praxis.plugins.configure(clinic, "russia", {"require_oms_policy": True}, ADMIN)
    assert refusal(praxis, clinic, {"identifiers": {"ru.snils": SNILS}}) == [
        ("identifiers.ru.oms", "required", "OMS policy number is required in this clinic")]
    accept(praxis, clinic, {"identifiers": {"ru.snils": SNILS, "ru.oms": OMS}})

    praxis.plugins.disable(clinic, "russia", ADMIN)
    accept(praxis, clinic, {"identifiers": {}})
    accept(praxis, clinic, {"identifiers": {"ru.snils": "112-233-445 96"}})


def test_messages_follow_the_clinic_locale(praxis):
    clinic = add_clinic(praxis, name="Kazan", country="RU", timezone="Europe/Moscow", locale="ru_RU")
    praxis.plugins.enable(clinic, "russia", ADMIN)
    praxis.plugins.configure(clinic, "russia", {"require_national_id": True}, ADMIN)
    assert refusal(praxis, clinic, {"identifiers": {}}) == [
        ("identifiers.ru.snils", "required", "В этой клинике СНИЛС обязателен")]
