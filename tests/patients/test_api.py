"""The patients REST API: permissions, status codes, JSON bodies."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from core.models.auth import AccessLog
from tests.auth_helpers import anonymous_client, client_for, create_user

NID = "123 456 786"


@pytest.fixture
def api(world):
    admin = client_for(world.praxis, create_user(world.praxis, [world.clinic_id], role="admin"))
    return admin


def base(world, clinic_id=None) -> str:
    return f"/api/clinics/{clinic_id or world.clinic_id}/patients"


def register(api, world, **body):
    body.setdefault("family_name", "Kovács")
    body.setdefault("given_name", "Anna")
    response = api.post(base(world), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_register_open_change_and_search(world, api):
    p = register(api, world, phones=[{"number": "06 30 123 4567"}], identifiers={"xx.nid": NID},
                 birth_date="1980-05-17", alerts=[{"type": "allergy", "text": "Penicillin", "severity": "high"}])
    assert p["chart_number"] == "000001" and p["identifiers"][0]["masked"] == "*** *** 786"
    assert p["identifiers"][0]["value"] is None
    got = api.get(f"{base(world)}/{p['id']}").json()
    assert got["alerts"][0]["text"] == "Penicillin" and got["phones"][0]["e164"] == "+36301234567"
    changed = api.patch(f"{base(world)}/{p['id']}", json={"version": 1, "vip": True, "tags": ["ortho"]})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    page = api.get(base(world), params={"q": "kov", "vip": True, "tag": "ortho"}).json()
    assert page["total"] == 1 and page["items"][0]["phones"] == ["+36301234567"]
    assert api.get(base(world), params={"phone": "0630123"}).json()["total"] == 1
    assert api.get(base(world), params={"chart": "000001"}).json()["total"] == 1
    assert api.get(base(world), params={"identifier_type": "xx.nid", "identifier": "123456786"}).json()["total"] == 1
    history = api.get(f"{base(world)}/{p['id']}/history").json()
    assert [h["action"] for h in history] == ["patient.created", "patient.access.view", "patient.updated"]


def test_validation_errors_are_422_with_fields(world, api):
    response = api.post(base(world), json={"family_name": "X", "phones": [{"number": "1"}],
                                           "identifiers": {"xx.nid": "123"}})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert {f["field"] for f in body["fields"]} == {"phones.0", "identifiers.xx.nid"}
    missing = api.post(base(world), json={"given_name": "No family"})
    assert missing.status_code == 422 and missing.json()["fields"][0]["field"] == "family_name"
    vetoed = api.post(base(world), json={"family_name": "Vetoed"})
    assert vetoed.status_code == 422 and vetoed.json()["plugin"] == "nid"
    bad_search = api.get(base(world), params={"phone": "1"})
    assert bad_search.status_code == 422 and bad_search.json()["fields"][0]["field"] == "phone"


def test_duplicate_warning_is_409_with_candidates(world, api):
    first = register(api, world, birth_date="1990-01-02")
    again = api.post(base(world), json={"family_name": "Kovacs", "given_name": "Anna", "birth_date": "1990-01-02"})
    assert again.status_code == 409
    body = again.json()
    assert body["error"] == "duplicate_warning" and body["candidates"][0]["patient"]["id"] == first["id"]
    confirmed = api.post(base(world), json={"family_name": "Kovacs", "given_name": "Anna",
                                            "birth_date": "1990-01-02", "confirm_duplicate": True})
    assert confirmed.status_code == 201


def test_version_conflict_is_409(world, api):
    p = register(api, world)
    assert api.patch(f"{base(world)}/{p['id']}", json={"version": 1, "notes": "a"}).status_code == 200
    stale = api.patch(f"{base(world)}/{p['id']}", json={"version": 1, "notes": "b"})
    assert stale.status_code == 409 and stale.json() == {
        "error": "version_conflict", "current_version": 2,
        "message": "the patient was changed by someone else since you read it; reload and apply your change again"}


def test_trash_restore_and_trash_list(world, api):
    p = register(api, world)
    no_reason = api.post(f"{base(world)}/{p['id']}/delete", json={})
    assert no_reason.status_code == 422 and no_reason.json()["fields"][0]["field"] == "reason"
    assert api.delete(f"{base(world)}/{p['id']}").status_code == 422
    gone = api.delete(f"{base(world)}/{p['id']}", params={"reason": "duplicate card"})
    assert gone.status_code == 200 and gone.json()["status"] == "trashed"
    assert api.get(base(world)).json()["total"] == 0
    trash = api.get(f"{base(world)}/trash").json()
    assert trash["items"][0]["delete_reason"] == "duplicate card"
    assert api.post(f"{base(world)}/{p['id']}/delete", json={"reason": "again"}).status_code == 409
    assert api.post(f"{base(world)}/{p['id']}/restore").json()["status"] == "active"
    assert api.get(base(world)).json()["total"] == 1


def test_merge_and_unmerge(world, api):
    a = register(api, world, phones=[{"number": "+36301234567"}])
    b = register(api, world, family_name="Kovacs", phones=[{"number": "+36209998888"}])
    merged = api.post(f"{base(world)}/merge", json={"survivor_id": a["id"], "merged_id": b["id"]})
    assert merged.status_code == 200 and merged.json()["moved"]["phones"] == 1
    assert api.get(base(world)).json()["total"] == 1
    back = api.post(f"{base(world)}/unmerge", json={"merged_id": b["id"]})
    assert back.status_code == 200 and back.json()["phones"][0]["e164"] == "+36209998888"
    assert api.post(f"{base(world)}/unmerge", json={"merged_id": b["id"]}).status_code == 409


def test_reveal_needs_its_own_permission_and_is_logged(world, api):
    p = register(api, world, identifiers={"xx.nid": NID})
    shown = api.get(f"{base(world)}/{p['id']}", params={"reveal": 1})
    assert shown.status_code == 200 and shown.json()["identifiers"][0]["value"] == "123456786"
    assistant = client_for(world.praxis, create_user(world.praxis, [world.clinic_id], role="assistant"))
    assert assistant.get(f"{base(world)}/{p['id']}").json()["identifiers"][0]["value"] is None
    refused = assistant.get(f"{base(world)}/{p['id']}", params={"reveal": 1})
    assert refused.status_code == 403
    with Session(world.praxis.engine) as session:
        assert session.exec(select(AccessLog.action)).all() == ["view", "view_identifiers", "view"]


def test_chart_format_route(world, api):
    assert api.get(f"{base(world)}/chart-format").json() == {"format": "{seq:06d}", "example": "000001"}
    changed = api.put(f"{base(world)}/chart-format", json={"format": "P{seq:04d}"})
    assert changed.json() == {"format": "P{seq:04d}", "example": "P0001"}
    assert register(api, world)["chart_number"] == "P0001"
    bad = api.put(f"{base(world)}/chart-format", json={"format": "{nope}"})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "format"


ROUTES = [
    ("GET", "", None, "patients.view"),
    ("POST", "", {"family_name": "X"}, "patients.edit"),
    ("GET", "/trash", None, "patients.delete"),
    ("GET", "/chart-format", None, "patients.view"),
    ("PUT", "/chart-format", {"format": "P{seq}"}, "clinics.manage"),
    ("POST", "/merge", {"survivor_id": "{id}", "merged_id": "{id2}"}, "patients.merge"),
    ("POST", "/unmerge", {"merged_id": "{id2}"}, "patients.merge"),
    ("GET", "/{id}", None, "patients.view"),
    ("PATCH", "/{id}", {"version": 1, "notes": "x"}, "patients.edit"),
    ("POST", "/{id}/delete", {"reason": "x"}, "patients.delete"),
    ("DELETE", "/{id}?reason=x", None, "patients.delete"),
    ("POST", "/{id}/restore", None, "patients.delete"),
    ("GET", "/{id}/history", None, "patients.view"),
]


def _call(client, method, url, body):
    return client.request(method, url, json=body) if body is not None else client.request(method, url)


def _fill(value, ids):
    if isinstance(value, str):
        return value.replace("{id}", ids[0]).replace("{id2}", ids[1])
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def test_every_route_answers_401_403_and_404(world, api):
    anonymous = anonymous_client(world.praxis)
    # A member of another clinic only: this clinic is not theirs -> 404.
    stranger = client_for(world.praxis, create_user(world.praxis, [world.other_clinic_id], role="admin"))
    lacking = {}
    for method, path, body, needed in ROUTES:
        ids = [register(api, world, family_name=f"P{i}", confirm_duplicate=True)["id"] for i in range(2)]
        url = base(world) + _fill(path, ids)
        body = _fill(body, ids)
        if needed not in lacking:
            everything_else = [p for p in ("patients.view", "patients.edit", "patients.delete", "patients.merge",
                                           "patients.view_identifiers", "clinics.view", "clinics.manage")
                               if p != needed]
            user = create_user(world.praxis, [world.clinic_id], permissions=everything_else)
            lacking[needed] = client_for(world.praxis, user)
        assert _call(anonymous, method, url, body).status_code == 401, (method, path)
        assert _call(lacking[needed], method, url, body).status_code == 403, (method, path)
        assert _call(stranger, method, url, body).status_code == 404, (method, path)
        # With the permission the guard lets the call through (unmerge/restore of an active card: 409).
        assert _call(api, method, url, body).status_code in (200, 201, 409), (method, path)


def test_every_patient_route_is_in_the_permission_table(world, api):
    from core.api.routes.patients import router

    listed = {(m, p.split("?")[0]) for m, p, _, _ in ROUTES}
    for route in router.routes:
        for method in route.methods:
            path = route.path.removeprefix(router.prefix).replace("{patient_id}", "{id}")
            assert (method, path) in listed, (method, path)


@pytest.mark.parametrize("path", ["/{id}", "/{id}/history"])
def test_a_patient_of_another_clinic_is_404_even_for_an_admin_of_both(world, api, path):
    admin_both = client_for(world.praxis, create_user(world.praxis, [world.clinic_id, world.other_clinic_id]))
    p = register(api, world)
    url = base(world, world.other_clinic_id) + path.replace("{id}", p["id"])
    response = admin_both.get(url)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    patch = admin_both.patch(base(world, world.other_clinic_id) + f"/{p['id']}", json={"version": 1, "notes": "x"})
    assert patch.status_code == 404
