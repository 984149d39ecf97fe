"""The plugin loaded through its entry point into a Praxis: RRN type and veto, chosung search keys."""

from __future__ import annotations

import importlib.metadata

import pytest

from core.audit import Actor
from plugin_sdk.errors import ValidationFailed
from tests.conftest import add_clinic

ENTRY_POINT = importlib.metadata.EntryPoint("korea", "praxis_korea.plugin", "praxis.plugins")
ADMIN = Actor(None, "t")


def test_the_installed_distribution_registers_the_entry_point():
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("korea") == "praxis_korea.plugin"


@pytest.fixture
def praxis(make_praxis):
    return make_praxis([ENTRY_POINT])


@pytest.fixture
def clinic(praxis):
    clinic = add_clinic(praxis, name="Seoul", country="KR", timezone="Asia/Seoul", locale="en")
    praxis.plugins.enable(clinic, "korea", ADMIN)
    return clinic


def refusal(praxis, clinic, patient):
    with pytest.raises(ValidationFailed) as refused:
        praxis.runtime.veto("praxis_validate_patient", clinic, patient=patient, is_new=True)
    assert refused.value.plugin == "korea"
    return [(e.field, e.code, e.message) for e in refused.value.errors]


def accept(praxis, clinic, patient):
    praxis.runtime.veto("praxis_validate_patient", clinic, patient=patient, is_new=True)


def test_manifest_identifier_type_and_search_keys(praxis):
    loaded = praxis.runtime.get("korea")
    assert not loaded.quarantined, loaded.quarantine_reason
    assert loaded.manifest.countries == ("KR",) and loaded.manifest.handles_patient_data
    [result] = praxis.runtime.collect("praxis_identifier_types")
    [rrn] = result.value
    assert (rrn.code, rrn.applies_to, rrn.country) == ("kr.rrn", "patient", "KR")
    assert rrn.normalize("800101-1234567") == "8001011234567"
    assert rrn.mask("8001011234567") == "******-****567"
    [keys] = praxis.runtime.collect("praxis_name_search_keys", text="김민수")
    assert keys.value == ["ㄱㅁㅅ"]


def test_required_rrn_refuses_a_missing_or_invalid_number_and_accepts_a_valid_one(praxis, clinic):
    accept(praxis, clinic, {"identifiers": {}})
    assert refusal(praxis, clinic, {"identifiers": {"kr.rrn": "800230-1234567"}}) == [
        ("identifiers.kr.rrn", "invalid_date",
         "The resident registration number starts with 800230, which is not a real date")]

    praxis.plugins.configure(clinic, "korea", {"require_national_id": True}, ADMIN)
    assert refusal(praxis, clinic, {"family_name": "김", "given_name": "민수", "identifiers": {}}) == [
        ("identifiers.kr.rrn", "required", "Resident registration number is required in this clinic")]
    assert refusal(praxis, clinic, {"identifiers": {"kr.rrn": "800101-9234567"}})[0][1] == "invalid_gender_digit"
    accept(praxis, clinic, {"identifiers": {"kr.rrn": "800101-1234567"}})
    # A post-2020 number with random last digits (no valid check digit) is accepted.
    accept(praxis, clinic, {"identifiers": {"kr.rrn": "210505-3000001"}})

    praxis.plugins.disable(clinic, "korea", ADMIN)
    accept(praxis, clinic, {"identifiers": {}})
    accept(praxis, clinic, {"identifiers": {"kr.rrn": "800230-1234567"}})


def test_messages_follow_the_clinic_locale(praxis):
    clinic = add_clinic(praxis, name="Busan", country="KR", timezone="Asia/Seoul", locale="ko")
    praxis.plugins.enable(clinic, "korea", ADMIN)
    praxis.plugins.configure(clinic, "korea", {"require_national_id": True}, ADMIN)
    assert refusal(praxis, clinic, {"identifiers": {}}) == [
        ("identifiers.kr.rrn", "required", "이 병원에서는 주민등록번호가 필수입니다")]
