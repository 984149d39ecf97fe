"""While EESZT is enabled, a patient needs a valid TAJ number; with EESZT disabled the same patient saves."""

from __future__ import annotations

from typing import Any


def _create(eeszt: Any, identifiers: dict[str, str] | None) -> Any:
    body: dict[str, Any] = {"family_name": "Nagy", "given_name": "Péter"}
    if identifiers is not None:
        body["identifiers"] = identifiers
    return eeszt.client.post(f"/api/clinics/{eeszt.app.clinic_id}/patients", json=body)


def _field(answer: Any) -> dict[str, str]:
    assert answer.status_code == 422, answer.text
    return next(f for f in answer.json()["fields"] if f["field"] == "identifiers.hu.taj")


def test_a_patient_without_taj_or_with_a_wrong_check_digit_is_refused_while_eeszt_is_enabled(eeszt: Any) -> None:
    missing = _field(_create(eeszt, None))
    assert missing["message"] == "TAJ number is required while EESZT is enabled" and missing["code"] == "required"
    assert _field(_create(eeszt, {"hu.taj": "   "}))["code"] == "required"
    wrong = _field(_create(eeszt, {"hu.taj": "123 456 789"}))
    assert "check digit" in wrong["message"]
    assert _create(eeszt, {"hu.taj": "123-456-788"}).status_code == 201


def test_editing_a_patient_cannot_remove_the_taj_while_eeszt_is_enabled(eeszt: Any) -> None:
    patient = eeszt.patient()
    url = f"/api/clinics/{eeszt.app.clinic_id}/patients/{patient}"
    version = eeszt.client.get(url).json()["version"]
    removed = eeszt.client.patch(url, json={"version": version, "identifiers": {"hu.taj": None}})
    assert _field(removed)["code"] == "required"
    assert eeszt.client.patch(url, json={"version": version, "given_name": "Anna Mária"}).status_code == 200


def test_with_eeszt_disabled_the_same_patient_saves(eeszt: Any) -> None:
    assert _create(eeszt, None).status_code == 422
    eeszt.app.disable()
    assert _create(eeszt, None).status_code == 201
    # hungary stays enabled: a TAJ given is still checked
    assert "check digit" in _field(_create(eeszt, {"hu.taj": "123 456 789"}))["message"]
