"""The plugin loaded through its entry point into a Praxis: identity number type and veto, pinyin keys."""

from __future__ import annotations

import importlib.metadata

import pytest

from core.audit import Actor
from plugin_sdk.errors import ValidationFailed
from tests.conftest import add_clinic

ENTRY_POINT = importlib.metadata.EntryPoint("china", "praxis_china.plugin", "praxis.plugins")
ADMIN = Actor(None, "t")
VALID = "11010519491231002X"


def test_the_installed_distribution_registers_the_entry_point():
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("china") == "praxis_china.plugin"


@pytest.fixture
def praxis(make_praxis):
    return make_praxis([ENTRY_POINT])


@pytest.fixture
def clinic(praxis):
    clinic = add_clinic(praxis, name="Shanghai", country="CN", timezone="Asia/Shanghai", locale="en")
    praxis.plugins.enable(clinic, "china", ADMIN)
    return clinic


def refusal(praxis, clinic, patient):
    with pytest.raises(ValidationFailed) as refused:
        praxis.runtime.veto("praxis_validate_patient", clinic, patient=patient, is_new=True)
    assert refused.value.plugin == "china"
    return [(e.field, e.code, e.message) for e in refused.value.errors]


def accept(praxis, clinic, patient):
    praxis.runtime.veto("praxis_validate_patient", clinic, patient=patient, is_new=True)


def test_manifest_identifier_type_and_search_keys(praxis):
    loaded = praxis.runtime.get("china")
    assert not loaded.quarantined, loaded.quarantine_reason
    assert loaded.manifest.countries == ("CN",) and loaded.manifest.handles_patient_data
    [result] = praxis.runtime.collect("praxis_identifier_types")
    [ric] = result.value
    assert (ric.code, ric.applies_to, ric.country) == ("cn.ric", "patient", "CN")
    assert ric.normalize("11010519491231002x") == VALID
    assert ric.mask(VALID) == "***************02X"
    [keys] = praxis.runtime.collect("praxis_name_search_keys", text="张伟")
    assert keys.value == ["zhangwei", "zw"]
    [keys] = praxis.runtime.collect("praxis_name_search_keys", text="曾伟")
    assert {"zengwei", "cengwei", "zw", "cw"} == set(keys.value)


def test_required_id_refuses_a_missing_or_invalid_number_and_accepts_a_valid_one(praxis, clinic):
    accept(praxis, clinic, {"identifiers": {}})
    assert refusal(praxis, clinic, {"identifiers": {"cn.ric": "110105194912310021"}}) == [
        ("identifiers.cn.ric", "invalid_checksum",
         "Resident identity number's check character does not match: look for a mistyped digit")]

    praxis.plugins.configure(clinic, "china", {"require_national_id": True}, ADMIN)
    assert refusal(praxis, clinic, {"family_name": "张", "given_name": "伟", "identifiers": {}}) == [
        ("identifiers.cn.ric", "required", "Resident identity number is required in this clinic")]
    assert refusal(praxis, clinic, {"identifiers": {"cn.ric": "110105491231002"}})[0][1] == "invalid_length"
    accept(praxis, clinic, {"identifiers": {"cn.ric": VALID}})
    accept(praxis, clinic, {"identifiers": {"cn.ric": "440524188001010014"}})  # region not in stdnum's table

    praxis.plugins.disable(clinic, "china", ADMIN)
    accept(praxis, clinic, {"identifiers": {}})
    accept(praxis, clinic, {"identifiers": {"cn.ric": "110105194912310021"}})


def test_messages_follow_the_clinic_locale(praxis):
    clinic = add_clinic(praxis, name="Beijing", country="CN", timezone="Asia/Shanghai", locale="zh_CN")
    praxis.plugins.enable(clinic, "china", ADMIN)
    praxis.plugins.configure(clinic, "china", {"require_national_id": True}, ADMIN)
    assert refusal(praxis, clinic, {"identifiers": {}}) == [
        ("identifiers.cn.ric", "required", "本诊所要求填写居民身份号码")]
