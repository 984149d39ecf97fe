"""The admin screens through TestClient: staff and per-person permission overrides, roles, the audit journal
with its filters and verification, the access log, the login history and the outbox with retry."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text as sql
from sqlmodel import Session

from core.auth.permissions import catalog
from core.auth.users import effective_in
from core.clock import now
from core.db import transaction
from core.models.outbox import OutboxItem
from tests.auth_helpers import create_user
from tests.conftest import add_clinic
from tests.ui.helpers import csrf_of, log_in, web_client
from tests.ui.screens import field_errors, set_up_book
from ui import i18n

PASSWORD = "correct horse battery"


@pytest.fixture
def site(make_praxis):
    praxis = make_praxis([])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    admin = create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD, name="Anna Admin")
    return praxis, clinic, admin


def client_as(praxis, login="anna", locale=None):  # type: ignore[no-untyped-def]
    client = web_client(praxis)
    if locale:
        client.cookies.set(i18n.LANG_COOKIE, locale)
    assert log_in(client, login, PASSWORD).status_code == 303
    return client


def test_create_a_person_with_errors_next_to_fields_then_set_an_override(site):
    praxis, clinic, _ = site
    client = client_as(praxis)
    base = f"/clinics/{clinic}/admin/staff"
    token = csrf_of(client.get(base).text)
    refused = client.post(f"{base}/new", data={"csrf_token": token, "login": "a b", "name": "", "password": "short",
                                               "role": "doctor"})
    assert refused.status_code == 422
    assert field_errors(refused.text) == {"f-name": "This field is required.",
                                          "f-login": "Use 2-100 letters, digits or . _ @ + -, without spaces.",
                                          "f-password": "The password is too short."}
    made = client.post(f"{base}/new", data={"csrf_token": token, "login": "bela", "name": "Dr. Nagy Béla",
                                            "password": "a much longer password", "role": "doctor"},
                       follow_redirects=False)
    assert made.status_code == 303
    person = client.get(made.headers["location"])
    assert "Dr. Nagy Béla" in person.text and 'value="doctor" selected' in person.text
    user_id = int(made.headers["location"].rsplit("/", 1)[1])
    saved = client.post(f"{base}/{user_id}/access", data={"csrf_token": token, "role": "doctor",
                                                          "perm.audit.view": "grant",
                                                          "perm.appointments.overbook": "deny"},
                        follow_redirects=False)
    assert saved.status_code == 303
    with Session(praxis.engine) as session:
        held = effective_in(session, catalog(praxis.runtime), user_id, clinic)
    assert held is not None and "audit.view" in held and "appointments.overbook" not in held
    assert "with overrides" in client.get(base).text


def test_nobody_hands_out_permissions_they_do_not_hold(site):
    praxis, clinic, _ = site
    create_user(praxis, [clinic], permissions=["users.manage", "patients.view"], login="lead", password=PASSWORD)
    target = create_user(praxis, [clinic], role="assistant", name="Asszisztens Éva")
    lead = client_as(praxis, "lead")
    page = lead.get(f"/clinics/{clinic}/admin/staff/{target}")
    assert page.status_code == 200
    refused = lead.post(f"/clinics/{clinic}/admin/staff/{target}/access", data={
        "csrf_token": csrf_of(page.text), "role": "assistant", "perm.audit.view": "grant"})
    assert refused.status_code == 403
    assert "You cannot give permissions you do not hold yourself." in refused.text


def test_roles_matrix_and_custom_roles(site):
    praxis, clinic, _ = site
    client = client_as(praxis, locale="ru")
    page = client.get(f"/clinics/{clinic}/admin/roles")
    assert "Администратор" in page.text and "Открытие карт пациентов" in page.text
    token = csrf_of(page.text)
    bad = client.post(f"/clinics/{clinic}/admin/roles/new", data={"csrf_token": token, "code": "Bad", "title": ""})
    assert field_errors(bad.text)["f-title"] == "Обязательное поле."
    made = client.post(f"/clinics/{clinic}/admin/roles/new", data={
        "csrf_token": token, "code": "hygienist", "title": "Гигиенист",
        "permissions": ["patients.view", "appointments.view"]}, follow_redirects=False)
    assert made.status_code == 303
    edit = client.get(f"/clinics/{clinic}/admin/roles?edit=hygienist")
    assert 'id="role-perm-patients.view" name="permissions" value="patients.view" checked' in edit.text
    builtin = client.post(f"/clinics/{clinic}/admin/roles/doctor", data={"csrf_token": token, "title": "x"})
    assert builtin.status_code == 409


def test_the_audit_journal_filters_and_verifies_and_detects_tampering(site):
    praxis, clinic, _ = site
    data = set_up_book(praxis, clinic)
    client = client_as(praxis)
    base = f"/clinics/{clinic}/admin/audit"
    everything = client.get(base).text
    assert "appointment.created" in everything and "patient.created" in everything
    only = client.get(f"{base}?action=appointment").text
    assert "appointment.created" in only and "patient.created" not in only
    assert f"patient:{data.patient}" in client.get(f"{base}?target=patient:{data.patient}").text
    token = csrf_of(everything)
    intact = client.post(f"{base}/verify", data={"csrf_token": token})
    assert intact.status_code == 200 and "The journal is intact." in intact.text
    with transaction(praxis.engine) as session:
        session.execute(sql("UPDATE core_audit SET actor_name = 'someone else' WHERE seq = 3"))
    broken = client.post(f"{base}/verify", data={"csrf_token": token})
    assert broken.status_code == 409 and "The journal was tampered with." in broken.text and "Entry 3:" in broken.text


def test_access_log_and_login_history(site):
    praxis, clinic, _ = site
    data = set_up_book(praxis, clinic)
    client = client_as(praxis)
    client.get(f"/clinics/{clinic}/desk/{data.patient}")
    log_in(web_client(praxis), "anna", "wrong password")
    access = client.get(f"/clinics/{clinic}/admin/audit/access").text
    assert "Kovács Anna" in access and "Opened the card" in access and "Anna Admin" in access
    logins = client.get(f"/clinics/{clinic}/admin/audit/logins?failed=1").text
    assert "Wrong password" in logins and "Logged in" not in logins


def test_the_outbox_lists_dead_items_per_plugin_and_retries_them(site):
    praxis, clinic, _ = site
    item_id = uuid.uuid4()
    with transaction(praxis.engine) as session:
        session.add(OutboxItem(id=item_id, clinic_id=clinic, plugin="sms_vendor", topic="sms.send", status="dead",
                               attempts=12, last_error="the vendor refused the number", finished_at=now()))
    create_user(praxis, [clinic], permissions=["outbox.view"], login="watcher", password=PASSWORD)
    watcher = client_as(praxis, "watcher")
    page = watcher.get(f"/clinics/{clinic}/admin/outbox?status=dead")
    assert "sms_vendor" in page.text and "the vendor refused the number" in page.text and "Dead-lettered" in page.text
    assert "/retry" not in page.text
    assert watcher.post(f"/clinics/{clinic}/admin/outbox/{item_id}/retry",
                        data={"csrf_token": csrf_of(page.text)}).status_code == 403
    client = client_as(praxis)
    page = client.get(f"/clinics/{clinic}/admin/outbox")
    done = client.post(f"/clinics/{clinic}/admin/outbox/{item_id}/retry", data={"csrf_token": csrf_of(page.text)},
                       follow_redirects=False)
    assert done.status_code == 303
    with Session(praxis.engine) as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None and item.status == "pending" and item.attempts == 0
    assert "The item will be sent again." in client.get(done.headers["location"]).text


def test_admin_menu_items_follow_permissions(site):
    praxis, clinic, _ = site
    create_user(praxis, [clinic], role="receptionist", login="rec", password=PASSWORD)
    receptionist = client_as(praxis, "rec")
    menu = receptionist.get(f"/clinics/{clinic}/").text.split('id="main-menu"')[1].split("</nav>")[0]
    assert "Patients" in menu and "Appointment book" in menu and "Staff" not in menu and "Audit journal" not in menu
    assert receptionist.get(f"/clinics/{clinic}/admin/staff").status_code == 403
    admin_menu = client_as(praxis).get(f"/clinics/{clinic}/").text.split('id="main-menu"')[1].split("</nav>")[0]
    for title in ("Staff", "Roles", "Audit journal", "Outbox", "Plugins"):
        assert title in admin_menu
