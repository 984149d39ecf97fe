"""Professional identifiers of staff: typed by the staff identifier types of the plugins enabled in the
person's clinics, normalised by the type, editable through PATCH /api/users/{id}, shown on the user,
audited."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from sqlmodel import Session, select

from core.audit import Actor
from core.models.audit import AuditEntry
from core.models.auth import UserIdentifier
from tests.auth_helpers import client_for, create_user
from tests.conftest import add_clinic


def plugin(name: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"tests.auth.staff_plugins.{name}", group="praxis.plugins")


@pytest.fixture
def world(make_praxis):  # noqa: ANN001, ANN201
    praxis = make_praxis([plugin("stamps"), plugin("licences")])
    budapest = add_clinic(praxis, "Budapest", "HU")
    seoul = add_clinic(praxis, "Seoul", "KR", "Asia/Seoul", "ko")
    praxis.plugins.enable(budapest, "stamps", Actor(None, "t"))
    praxis.plugins.enable(seoul, "licences", Actor(None, "t"))
    admin = create_user(praxis, [budapest, seoul], role="admin")
    doctor = create_user(praxis, [budapest], role="doctor")
    return praxis, budapest, seoul, client_for(praxis, admin), doctor


def test_identifier_is_normalised_stored_and_shown(world) -> None:  # noqa: ANN001
    praxis, _, _, admin, doctor = world
    response = admin.patch(f"/api/users/{doctor}", json={"identifiers": {"xx.stamp": " 12 345 "}})
    assert response.status_code == 200, response.text
    assert response.json()["identifiers"] == [{"type": "xx.stamp", "title": "Stamp number", "country": "XX",
                                               "value": "12345"}]
    assert admin.get(f"/api/users/{doctor}").json()["identifiers"][0]["value"] == "12345"
    listed = admin.get("/api/users").json()["items"]
    assert next(u for u in listed if u["id"] == doctor)["identifiers"][0]["value"] == "12345"
    with Session(praxis.engine) as session:
        [row] = session.exec(select(UserIdentifier).where(UserIdentifier.user_id == doctor)).all()
        assert (row.type_code, row.value) == ("xx.stamp", "12345")
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "user.identifiers_changed")).one()
        assert entry.target == f"user:{doctor}" and entry.data == {"xx.stamp": {"from": None, "to": "12345"}}


def test_invalid_value_and_foreign_types_are_422_naming_the_field(world) -> None:  # noqa: ANN001
    _, _, _, admin, doctor = world
    bad = admin.patch(f"/api/users/{doctor}", json={"identifiers": {"xx.stamp": "12a"}})
    assert bad.status_code == 422
    assert bad.json()["fields"] == [{"field": "identifiers.xx.stamp", "message": "a stamp number has 5 digits",
                                     "code": "invalid_identifier"}]
    # a patient identifier type is not a staff type; a type of a plugin enabled only in another clinic,
    # where the doctor does not work, does not apply; an unknown code neither
    for code in ("xx.pid", "yy.licence", "zz.nothing"):
        response = admin.patch(f"/api/users/{doctor}", json={"identifiers": {code: "A1"}})
        assert response.status_code == 422, code
        assert response.json()["fields"][0]["field"] == f"identifiers.{code}"
        assert response.json()["fields"][0]["code"] == "unknown_type"
    assert admin.get(f"/api/users/{doctor}").json()["identifiers"] == []


def test_types_of_every_clinic_apply_and_values_can_be_removed(world) -> None:  # noqa: ANN001
    praxis, budapest, seoul, admin, _ = world
    both = create_user(praxis, [budapest, seoul], role="doctor")
    response = admin.patch(f"/api/users/{both}", json={"identifiers": {"xx.stamp": "54321", "yy.licence": "ab-9"},
                                                      "speciality": "Dentist"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["speciality"] == "Dentist"
    assert {i["type"]: i["value"] for i in body["identifiers"]} == {"xx.stamp": "54321", "yy.licence": "AB-9"}
    # types left out stay; null removes
    response = admin.patch(f"/api/users/{both}", json={"identifiers": {"yy.licence": None}})
    assert {i["type"]: i["value"] for i in response.json()["identifiers"]} == {"xx.stamp": "54321"}
    response = admin.patch(f"/api/users/{both}", json={"identifiers": {"xx.stamp": "11111"}})
    assert {i["type"]: i["value"] for i in response.json()["identifiers"]} == {"xx.stamp": "11111"}


def test_identifiers_on_create_and_permission_needed(world) -> None:  # noqa: ANN001
    praxis, budapest, _, admin, doctor = world
    created = admin.post("/api/users", json={"login": "dr.new", "name": "Dr New", "memberships": [
        {"clinic_id": budapest, "role": "doctor"}], "identifiers": {"xx.stamp": "99999"}})
    assert created.status_code == 201, created.text
    assert created.json()["identifiers"][0]["value"] == "99999"
    refused = admin.post("/api/users", json={"login": "dr.bad", "name": "Dr Bad", "memberships": [
        {"clinic_id": budapest, "role": "doctor"}], "identifiers": {"xx.stamp": "1"}})
    assert refused.status_code == 422
    assert admin.get("/api/users", params={"q": "dr.bad"}).json()["total"] == 0  # one transaction: no user
    receptionist = create_user(praxis, [budapest], role="receptionist")
    forbidden = client_for(praxis, receptionist).patch(f"/api/users/{doctor}",
                                                       json={"identifiers": {"xx.stamp": "12345"}})
    assert forbidden.status_code == 403
