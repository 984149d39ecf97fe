"""Users, memberships, overrides and roles through the API: validation, scoping, no escalation, audit."""

from __future__ import annotations

from sqlmodel import Session, select

from core.models.audit import AuditEntry
from core.models.auth import PasswordHistory, User
from tests.auth_helpers import anonymous_client, client_for, create_user

GOOD = "correct horse battery"


def _new(clinic_id: int, **over):
    body = {"login": "bela", "name": "Kovács Béla", "email": "bela@example.hu", "phone": "06 30 123 4567",
            "speciality": "Fogszakorvos", "password": GOOD, "memberships": [{"clinic_id": clinic_id, "role": "doctor"}]}
    return {**body, **over}


def test_create_user_normalises_and_audits_without_the_password(world):
    admin = client_for(world.praxis, create_user(world.praxis, [world.budapest]))
    response = admin.post("/api/users", json=_new(world.budapest, login="Bela"))
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["login"] == "bela" and user["phone"] == "+36301234567" and user["must_change_password"] is True
    assert user["memberships"][0]["role"] == "doctor" and "patients.view" in user["memberships"][0]["permissions"]
    assert "password" not in user
    with Session(world.praxis.engine) as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "user.created",
                                                AuditEntry.target == f"user:{user['id']}")).one()
        stored = s.get(User, user["id"])
        history = s.exec(select(PasswordHistory).where(PasswordHistory.user_id == user["id"])).all()
    assert GOOD not in str(entry.data) and entry.actor_id is not None and entry.target == f"user:{user['id']}"
    assert stored.password_hash.startswith("$argon2id$") and len(history) == 1
    login = anonymous_client(world.praxis).post("/api/auth/login", json={"login": "BELA", "password": GOOD})
    assert login.status_code == 200 and login.json()["user"]["must_change_password"] is True


def test_create_user_field_errors(world):
    admin = client_for(world.praxis, create_user(world.praxis, [world.budapest], login="taken"))
    response = admin.post("/api/users", json=_new(world.budapest, login="taken", email="nope", phone="12",
                                                  password="taken", name=" "))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    codes = {(f["field"], f["code"]) for f in body["fields"]}
    assert {("login", "taken"), ("email", "invalid_email"), ("phone", "invalid_phone"), ("name", "required"),
            ("password", "too_short"), ("password", "same_as_login")} <= codes
    bad_role = admin.post("/api/users", json=_new(world.budapest, memberships=[
        {"clinic_id": world.budapest, "role": "wizard", "grant": ["no.such"]}]))
    assert {f["field"] for f in bad_role.json()["fields"]} == {"memberships.0.role", "memberships.0.grant"}
    none = admin.post("/api/users", json=_new(world.budapest, memberships=[]))
    assert none.status_code == 422 and none.json()["fields"][0]["field"] == "memberships"
    with Session(world.praxis.engine) as s:
        assert len(s.exec(select(User)).all()) == 1  # nothing half-written


def test_users_are_scoped_to_the_clinics_one_manages(world):
    budapest_admin = create_user(world.praxis, [world.budapest])
    seoul_admin = create_user(world.praxis, [world.seoul])
    both = create_user(world.praxis, [world.budapest, world.seoul], role="doctor", name="Both Clinics")
    seoul_only = create_user(world.praxis, [world.seoul], role="doctor")
    client = client_for(world.praxis, budapest_admin)
    listed = client.get("/api/users").json()
    ids = {u["id"] for u in listed["items"]}
    assert ids == {budapest_admin, both} and listed["total"] == 2
    shared = next(u for u in listed["items"] if u["id"] == both)
    assert [m["clinic_id"] for m in shared["memberships"]] == [world.budapest]  # Seoul's membership is not shown
    assert client.get(f"/api/users/{seoul_only}").status_code == 404
    assert client.get(f"/api/users/{seoul_admin}").status_code == 404
    assert client.patch(f"/api/users/{seoul_only}", json={"name": "X"}).status_code == 404
    assert client.get("/api/users", params={"q": "both"}).json()["total"] == 1
    assert client.get("/api/users", params={"clinic_id": world.seoul}).json()["total"] == 0
    # A person working in both clinics is changed account-wide only by someone managing both.
    refused = client.patch(f"/api/users/{both}", json={"name": "Renamed"})
    assert refused.status_code == 403 and refused.json()["error"] == "not_all_clinics"
    assert client.delete(f"/api/users/{both}").status_code == 403
    owner = client_for(world.praxis, create_user(world.praxis, [world.budapest, world.seoul]))
    renamed = owner.patch(f"/api/users/{both}", json={"name": "Renamed", "speciality": "Ortodontus"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed"


def test_no_escalation_beyond_ones_own_permissions(world):
    staff_manager = create_user(world.praxis, [world.budapest], permissions=["users.manage", "patients.view"])
    doctor = create_user(world.praxis, [world.budapest], role="doctor")
    client = client_for(world.praxis, staff_manager)
    to_admin = client.put(f"/api/users/{doctor}/memberships/{world.budapest}", json={"role": "admin"})
    assert to_admin.status_code == 403 and to_admin.json()["error"] == "escalation"
    self_grant = client.put(f"/api/users/{staff_manager}/memberships/{world.budapest}",
                            json={"role": "admin"})
    assert self_grant.status_code == 403
    create = client.post("/api/users", json=_new(world.budapest, memberships=[
        {"clinic_id": world.budapest, "role": "receptionist"}]))
    assert create.status_code == 403
    from core.auth.permissions import catalog

    beyond = sorted(catalog(world.praxis.runtime).builtin_grants("receptionist") - {"patients.view"})
    allowed = client.post("/api/users", json=_new(world.budapest, memberships=[
        {"clinic_id": world.budapest, "role": "receptionist", "deny": beyond}]))
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["memberships"][0]["permissions"] == ["patients.view"]
    other_clinic = client.post("/api/users", json=_new(world.seoul, login="zz"))
    assert other_clinic.status_code == 404


def test_memberships_and_overrides(world):
    admin = client_for(world.praxis, create_user(world.praxis, [world.budapest]))
    doctor = create_user(world.praxis, [world.budapest], role="doctor")
    url = f"/api/users/{doctor}/memberships/{world.budapest}"
    changed = admin.put(url, json={"role": "assistant", "grant": ["patients.merge"], "deny": ["patients.edit"]})
    assert changed.status_code == 200, changed.text
    membership = changed.json()["memberships"][0]
    assert membership["role"] == "assistant" and membership["grant"] == ["patients.merge"]
    assert "patients.merge" in membership["permissions"] and "patients.edit" not in membership["permissions"]
    both = admin.put(url, json={"role": "assistant", "grant": ["patients.edit"], "deny": ["patients.edit"]})
    assert both.status_code == 422
    assert client_for(world.praxis, doctor).get("/api/auth/me").json()["clinics"][0]["role"] == "assistant"
    assert admin.delete(url).status_code == 204
    assert admin.get(f"/api/users/{doctor}").status_code == 404  # no longer in any clinic the admin manages
    assert admin.put(f"/api/users/{doctor}/memberships/{world.seoul}", json={"role": "doctor"}).status_code == 404
    with Session(world.praxis.engine) as s:
        actions = [e.action for e in s.exec(select(AuditEntry).where(AuditEntry.target == f"user:{doctor}"))]
    assert actions.count("user.membership_set") == 1 and "user.membership_removed" in actions


def test_the_last_manager_cannot_be_removed(world):
    admin = create_user(world.praxis, [world.budapest])
    client = client_for(world.praxis, admin)
    demote = client.put(f"/api/users/{admin}/memberships/{world.budapest}", json={"role": "doctor"})
    assert demote.status_code == 409 and demote.json()["error"] == "last_manager"
    deny = client.put(f"/api/users/{admin}/memberships/{world.budapest}",
                      json={"role": "admin", "deny": ["users.manage"]})
    assert deny.status_code == 409
    assert client.delete(f"/api/users/{admin}/memberships/{world.budapest}").status_code == 409
    assert client.patch(f"/api/users/{admin}", json={"active": False}).status_code == 409
    second = create_user(world.praxis, [world.budapest])
    assert client.put(f"/api/users/{admin}/memberships/{world.budapest}", json={"role": "doctor"}).status_code == 200
    assert client_for(world.praxis, second).get("/api/users").status_code == 200


def test_admin_password_reset_forces_a_change_and_follows_the_policy(world):
    admin = client_for(world.praxis, create_user(world.praxis, [world.budapest]))
    anna = create_user(world.praxis, [world.budapest], role="doctor", login="anna", password=GOOD)
    assert admin.post(f"/api/users/{anna}/password", json={"password": GOOD}).json()["fields"][0]["code"] == "reused"
    assert admin.post(f"/api/users/{anna}/password", json={"password": "anna"}).status_code == 422
    assert admin.post(f"/api/users/{anna}/password", json={"password": "temporary secret 1"}).status_code == 204
    body = anonymous_client(world.praxis).post(
        "/api/auth/login", json={"login": "anna", "password": "temporary secret 1"}).json()
    assert body["user"]["must_change_password"] is True


def test_password_history_remembers_the_last_five(world):
    from core.auth import passwords
    from core.db import transaction

    uid = create_user(world.praxis, [world.budapest], login="anna", password="password number 0")
    for i in range(1, 6):
        with transaction(world.praxis.engine) as s:
            assert passwords.set_password(s, s.get(User, uid), f"password number {i}") == []
    with transaction(world.praxis.engine) as s:
        user = s.get(User, uid)
        assert passwords.set_password(s, user, "password number 2")[0].code == "reused"
        assert passwords.set_password(s, user, "password number 0") == []  # six passwords ago


def test_roles_crud(world):
    admin_id = create_user(world.praxis, [world.budapest])
    admin = client_for(world.praxis, admin_id)
    roles = admin.get("/api/roles").json()
    assert [r["code"] for r in roles[:4]] == ["admin", "doctor", "assistant", "receptionist"]
    assert all(r["is_builtin"] for r in roles[:4])
    created = admin.post("/api/roles", json={"code": "hygienist", "title": "Dental hygienist",
                                             "permissions": ["patients.view", "appointments.view"]})
    assert created.status_code == 201 and created.json()["permissions"] == ["appointments.view", "patients.view"]
    dup = admin.post("/api/roles", json={"code": "hygienist", "title": "Again", "permissions": []})
    assert dup.status_code == 422 and dup.json()["fields"][0]["code"] == "taken"
    assert admin.post("/api/roles", json={"code": "Bad Code", "title": "x"}).status_code == 422
    unknown = admin.post("/api/roles", json={"code": "odd", "title": "x", "permissions": ["no.such"]})
    assert unknown.status_code == 422 and unknown.json()["fields"][0]["field"] == "permissions"
    assert admin.patch("/api/roles/doctor", json={"permissions": []}).json()["error"] == "builtin_role"
    assert admin.delete("/api/roles/admin").status_code == 409
    user = create_user(world.praxis, [world.budapest], role="hygienist")
    assert client_for(world.praxis, user).get(f"/api/clinics/{world.budapest}").status_code == 403
    patched = admin.patch("/api/roles/hygienist", json={"permissions": ["patients.view", "clinics.view"]})
    assert patched.status_code == 200 and patched.json()["clinics_in_use"] == [world.budapest]
    assert client_for(world.praxis, user).get(f"/api/clinics/{world.budapest}").status_code == 200
    in_use = admin.delete("/api/roles/hygienist")
    assert in_use.status_code == 409 and in_use.json()["error"] == "role_in_use"
    admin.put(f"/api/users/{user}/memberships/{world.budapest}", json={"role": "doctor"})
    assert admin.delete("/api/roles/hygienist").status_code == 204
    assert admin.get("/api/roles/hygienist").status_code == 404
    catalog = admin.get("/api/permissions").json()
    assert {"code": "permplug.break_glass", "title": "Open any record in an emergency", "plugin": "permplug"} in catalog


def test_a_role_used_in_another_clinic_cannot_be_changed_from_here(world):
    create_user(world.praxis, [world.seoul], permissions=["patients.view"])  # a custom role used in Seoul
    seoul_role = next(r for r in client_for(world.praxis, create_user(world.praxis, [world.seoul]))
                      .get("/api/roles").json() if r["code"].startswith("test_role_"))
    budapest_admin = client_for(world.praxis, create_user(world.praxis, [world.budapest]))
    response = budapest_admin.patch(f"/api/roles/{seoul_role['code']}", json={"permissions": ["users.manage"]})
    assert response.status_code == 403 and response.json()["error"] == "not_all_clinics"
