"""The permission catalog, built-in roles, custom roles, per-person overrides and the dependencies."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from core.audit import Actor
from core.auth.deps import clinic_permission, load_principal, permission
from core.auth.passwords import hash_password, verify_password
from core.auth.permissions import BUILTIN_ROLES, CORE_CODES, catalog, effective
from core.models.auth import User
from tests.auth_helpers import client_for, create_user

PREAMBLE_CODES = set("""clinics.view clinics.manage users.manage roles.manage audit.view plugins.view plugins.manage
outbox.view outbox.manage patients.view patients.edit patients.delete patients.merge patients.view_identifiers
appointments.view appointments.edit appointments.overbook schedules.manage""".split())


def test_core_catalog_is_the_agreed_list_with_titles(world):
    cat = catalog(world.praxis.runtime)
    assert PREAMBLE_CODES <= CORE_CODES  # later domains (messaging, records, labs) add their own
    assert all(code.count(".") == 1 and code == code.lower() for code in CORE_CODES)
    assert all(cat.by_code[c].title and cat.by_code[c].plugin is None for c in PREAMBLE_CODES)


def test_plugin_permissions_come_from_manifest_and_hook_within_the_plugin_prefix(world):
    cat = catalog(world.praxis.runtime)
    assert cat.by_code["permplug.break_glass"].plugin == "permplug"
    assert cat.by_code["permplug.export"].title == "Export everything"
    assert "other.stolen" not in cat


def test_builtin_roles(world):
    cat = catalog(world.praxis.runtime)
    assert cat.builtin_grants("admin") == cat.codes  # plugins' permissions included
    for role in ("doctor", "assistant", "receptionist"):
        grants = cat.builtin_grants(role)
        assert {"patients.view", "appointments.view", "appointments.edit"} <= grants
        assert not grants & {"users.manage", "roles.manage", "plugins.manage", "clinics.manage", "patients.merge"}
    assert "appointments.overbook" in cat.builtin_grants("doctor")
    assert "patients.view_identifiers" not in cat.builtin_grants("assistant")
    assert set(BUILTIN_ROLES) == {"admin", "doctor", "assistant", "receptionist"}


def test_effective_is_role_plus_grants_minus_denials_within_scopes():
    assert effective({"a.x", "a.y"}, {"a.z": True, "a.y": False}) == {"a.x", "a.z"}
    assert effective({"a.x", "a.y"}, {}, scopes=["a.y", "a.q"]) == {"a.y"}
    assert effective({"a.x", "gone.p"}, {}, known=frozenset({"a.x"})) == {"a.x"}


def test_principal_per_clinic_with_overrides(world):
    uid = create_user(world.praxis, [world.budapest], role="receptionist",
                      grant=["appointments.overbook", "permplug.break_glass"], deny=["patients.edit"])
    client = client_for(world.praxis, uid)
    client_admin = client_for(world.praxis, create_user(world.praxis, [world.budapest, world.seoul]))
    assert client_admin.put(f"/api/users/{uid}/memberships/{world.seoul}",
                            json={"role": "doctor"}).status_code == 200
    with Session(world.praxis.engine) as s:
        principal = load_principal(s, world.praxis.runtime, s.get(User, uid), method="token")
    assert principal.roles == {world.budapest: "receptionist", world.seoul: "doctor"}
    budapest = principal.permissions_in(world.budapest)
    assert "appointments.overbook" in budapest and "permplug.break_glass" in budapest
    assert "patients.edit" not in budapest and "patients.edit" in principal.permissions_in(world.seoul)
    assert principal.clinics_with("patients.edit") == [world.seoul]
    assert principal.has_anywhere("permplug.break_glass") and not principal.has_anywhere("users.manage")
    # The plugin route guarded by the plugin's permission: only where the person holds it.
    for clinic in (world.budapest, world.seoul):
        world.praxis.plugins.enable(clinic, "permplug", Actor.system("test"))
    assert client.get(f"/api/clinics/{world.budapest}/x/permplug/secret").status_code == 200
    assert client.get(f"/api/clinics/{world.seoul}/x/permplug/secret").status_code == 403


def test_dependencies_reject_malformed_codes():
    with pytest.raises(ValueError):
        permission("Not A Code")
    with pytest.raises(ValueError):
        clinic_permission("patients")
    assert clinic_permission("patients.view") is clinic_permission("patients.view")  # one dependency per code


def test_passwords_are_argon2id_and_verify():
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert verify_password("correct horse battery", hashed)[0]
    assert not verify_password("correct horse batterY", hashed)[0]
    assert verify_password("x", "not a hash") == (False, None)
    assert verify_password("x", "") == (False, None)


def test_weaker_hashes_are_upgraded_at_login(world):
    """pwdlib's verify_and_update: a hash made with cheaper parameters is replaced by the current ones."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from core.auth import passwords
    from core.db import transaction
    from tests.auth_helpers import anonymous_client

    uid = create_user(world.praxis, [world.budapest], login="anna", password="correct horse battery")
    weak = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=512, parallelism=1),)).hash("correct horse battery")
    with transaction(world.praxis.engine) as s:
        user = s.get(User, uid)
        user.password_hash = weak
        s.add(user)
    assert anonymous_client(world.praxis).post(
        "/api/auth/login", json={"login": "anna", "password": "correct horse battery"}).status_code == 200
    with Session(world.praxis.engine) as s:
        upgraded = s.get(User, uid).password_hash
    assert upgraded != weak and "m=1024" in upgraded and passwords.verify_password("correct horse battery", upgraded)[0]
