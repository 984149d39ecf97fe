"""Clinics through the API and the CLI, and the patient access log."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlmodel import Session, select

from core.auth.access import log_access
from core.cli.main import cli
from core.db import transaction
from core.models.audit import AuditEntry
from core.models.auth import AccessLog, Membership, User
from core.models.clinic import Clinic
from core.models.plugin import PluginState
from tests.auth.conftest import PERM_PLUGIN
from tests.auth_helpers import anonymous_client, client_for, create_user
from tests.conftest import add_clinic


def test_list_shows_only_ones_own_clinics(world):
    client = client_for(world.praxis, create_user(world.praxis, [world.seoul], role="receptionist"))
    clinics = client.get("/api/clinics").json()
    assert [(c["id"], c["name"], c["role"]) for c in clinics] == [(world.seoul, "Seoul", "receptionist")]
    assert client.get(f"/api/clinics/{world.budapest}").status_code == 404
    assert client.get("/api/clinics/999999").status_code == 404
    assert client.get("/api/clinics/not-a-number").status_code == 404
    assert client.patch(f"/api/clinics/{world.seoul}", json={"name": "x"}).status_code == 403


def test_create_clinic_seeds_plugins_in_the_same_transaction_and_makes_the_creator_admin(make_praxis):
    praxis = make_praxis([PERM_PLUGIN], plugins_toml='[plugins.permplug]\nenable_for = ["AT"]\n')
    first = add_clinic(praxis)
    creator = create_user(praxis, [first])
    client = client_for(praxis, creator)
    response = client.post("/api/clinics", json={"name": "Wien", "country": "at", "timezone": "Europe/Vienna",
                                                 "locale": "en", "email": "wien@example.at"})
    assert response.status_code == 201, response.text
    clinic = response.json()
    assert clinic["country"] == "AT" and clinic["role"] == "admin"
    assert praxis.runtime.is_enabled(clinic["id"], "permplug")
    with Session(praxis.engine) as s:
        assert s.exec(select(PluginState).where(PluginState.clinic_id == clinic["id"])).one().enabled
        membership = s.exec(select(Membership).where(Membership.clinic_id == clinic["id"])).one()
        actions = [e.action for e in s.exec(select(AuditEntry).where(AuditEntry.clinic_id == clinic["id"]))]
    assert membership.user_id == creator
    assert actions[:2] == ["clinic.created", "plugin.enabled"] and "user.membership_set" in actions
    assert client.get(f"/api/clinics/{clinic['id']}").status_code == 200


def test_clinic_field_errors_and_nothing_half_written(world):
    client = client_for(world.praxis, create_user(world.praxis, [world.budapest]))
    response = client.post("/api/clinics", json={"name": "", "country": "XX", "timezone": "Europe/Atlantis",
                                                 "locale": "de", "email": "no"})
    assert response.status_code == 422
    assert {f["field"]: f["code"] for f in response.json()["fields"]} == {
        "name": "required", "country": "invalid_country", "timezone": "invalid_timezone", "locale": "invalid_locale",
        "email": "invalid_email"}
    missing = client.post("/api/clinics", json={"name": "x"})
    assert missing.status_code == 422 and {"country", "timezone", "locale"} <= {
        f["field"] for f in missing.json()["fields"]}
    patched = client.patch(f"/api/clinics/{world.budapest}", json={"timezone": "Mars/Olympus"})
    assert patched.status_code == 422 and patched.json()["fields"][0]["field"] == "timezone"
    with Session(world.praxis.engine) as s:
        assert len(s.exec(select(Clinic)).all()) == 2
        assert s.get(Clinic, world.budapest).timezone == "Europe/Budapest"


def test_patch_clinic_is_audited_and_reaches_the_plugin_state_cache(world):
    client = client_for(world.praxis, create_user(world.praxis, [world.budapest]))
    response = client.patch(f"/api/clinics/{world.budapest}", json={"locale": "EN", "address": "Váci út 1"})
    assert response.status_code == 200 and response.json()["locale"] == "en"
    assert world.praxis.runtime.snapshot().clinics[world.budapest].locale == "en"
    with Session(world.praxis.engine) as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "clinic.updated")).one()
    assert entry.data["locale"] == {"from": "hu", "to": "en"} and entry.clinic_id == world.budapest


def test_creating_clinics_needs_clinics_manage(world):
    doctor = client_for(world.praxis, create_user(world.praxis, [world.budapest], role="doctor"))
    response = doctor.post("/api/clinics", json={"name": "Wien", "country": "AT", "timezone": "Europe/Vienna",
                                                 "locale": "en"})
    assert response.status_code == 403


def test_access_log(world):
    doctor = create_user(world.praxis, [world.budapest], role="doctor", name="Dr. Kovács")
    with transaction(world.praxis.engine) as s:
        principal = _principal(world, s, doctor)
        log_access(s, principal, world.budapest, "3f1c", action="view")
        log_access(s, principal, world.budapest, "3f1c", action="print")
    with Session(world.praxis.engine) as s:
        rows = s.exec(select(AccessLog)).all()
        audit = s.exec(select(AuditEntry).where(AuditEntry.target == "patient:3f1c")).all()
    assert [(r.user_id, r.user_name, r.patient_id, r.action) for r in rows] == [
        (doctor, "Dr. Kovács", "3f1c", "view"), (doctor, "Dr. Kovács", "3f1c", "print")]
    assert [a.action for a in audit] == ["patient.access.view", "patient.access.print"]
    auditor = client_for(world.praxis, create_user(world.praxis, [world.budapest]))
    page = auditor.get(f"/api/clinics/{world.budapest}/access-log", params={"patient_id": "3f1c"}).json()
    assert page["total"] == 2 and page["items"][0]["action"] == "print"
    assert client_for(world.praxis, doctor).get(f"/api/clinics/{world.budapest}/access-log").status_code == 403


def _principal(world, session, user_id):
    from core.auth.deps import load_principal

    return load_principal(session, world.praxis.runtime, session.get(User, user_id), method="token")


def test_cli_first_clinic_and_admin(make_praxis, cli_env):
    praxis = make_praxis()
    cli_env(praxis)
    runner = CliRunner()
    assert "No clinics yet" in runner.invoke(cli, ["clinics", "list"]).output
    bad = runner.invoke(cli, ["clinics", "create", "--name", "B", "--country", "XX", "--timezone", "Nowhere/City",
                              "--locale", "hu"])
    assert bad.exit_code == 1 and "country:" in bad.output and "timezone:" in bad.output
    assert "Traceback" not in bad.output
    made = runner.invoke(cli, ["clinics", "create", "--name", "Budapest", "--country", "HU",
                               "--timezone", "Europe/Budapest", "--locale", "hu"])
    assert made.exit_code == 0 and "Created clinic Budapest" in made.output
    listed = json.loads(runner.invoke(cli, ["clinics", "list", "--json"]).output)
    assert [c["name"] for c in listed] == ["Budapest"]

    weak = runner.invoke(cli, ["users", "create", "--login", "ada", "--name", "Ada", "--clinic", "Budapest",
                               "--password-stdin"], input="short\n")
    assert weak.exit_code == 1 and "at least 10 characters" in weak.output and "Traceback" not in weak.output
    nowhere = runner.invoke(cli, ["users", "create", "--login", "ada", "--name", "Ada", "--clinic", "Atlantis",
                                  "--password-stdin"], input="long enough secret\n")
    assert nowhere.exit_code == 1 and "no clinic 'Atlantis'" in nowhere.output
    prompted = runner.invoke(cli, ["users", "create", "--login", "Ada", "--name", "Ada Admin", "--clinic", "budapest"],
                             input="long enough secret\nlong enough secret\n")
    assert prompted.exit_code == 0, prompted.output
    assert "long enough secret" not in prompted.output
    again = runner.invoke(cli, ["users", "create", "--login", "ada", "--name", "Ada", "--clinic", "Budapest",
                                "--password-stdin"], input="long enough secret\n")
    assert again.exit_code == 1 and "login: 'ada' is already taken" in again.output
    users = json.loads(runner.invoke(cli, ["users", "list", "--json"]).output)
    assert users[0]["login"] == "ada" and users[0]["clinics"] == {"Budapest": "admin"}
    table = runner.invoke(cli, ["users", "list"]).output
    assert "ada" in table and "Budapest: admin" in table

    login = client_for(praxis, users[0]["id"])  # the CLI-made admin can use the API
    assert login.get("/api/users").json()["total"] == 1
    reset = runner.invoke(cli, ["users", "set-password", "ada", "--password-stdin"], input="another long secret\n")
    assert reset.exit_code == 0
    response = anonymous_client(praxis).post("/api/auth/login",
                                             json={"login": "ada", "password": "another long secret"})
    assert response.status_code == 200
    assert runner.invoke(cli, ["users", "unlock", "ada"]).output.strip() == "ada was not locked"
