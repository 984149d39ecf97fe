"""The desk through TestClient: search, the card, registering and editing with errors next to each field in
the user's language (plugin vetoes included), the duplicate warning, trash and restore, merge, permissions."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from sqlmodel import Session, select

from core.audit import Actor
from core.models.auth import AccessLog
from core.models.patient import Patient
from tests.auth_helpers import create_user
from tests.conftest import add_clinic
from tests.ui.helpers import csrf_of, log_in, web_client
from tests.ui.screens import field_errors, set_up_book
from ui import i18n

PASSWORD = "correct horse battery"
HUNGARY = EntryPoint(name="hungary", value="praxis_hungary.plugin", group="praxis.plugins")
HTMX = {"HX-Request": "true"}


@pytest.fixture
def site(make_praxis):
    praxis = make_praxis([HUNGARY])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD, name="Anna Admin")
    return praxis, clinic


def client_as(praxis, login="anna", locale=None):  # type: ignore[no-untyped-def]
    client = web_client(praxis)
    if locale:
        client.cookies.set(i18n.LANG_COOKIE, locale)
    assert log_in(client, login, PASSWORD).status_code == 303
    return client


def token(client, clinic):  # type: ignore[no-untyped-def]
    return csrf_of(client.get(f"/clinics/{clinic}/desk").text)


def test_a_new_patient_with_errors_shows_each_next_to_its_field_and_keeps_what_was_typed(site):
    praxis, clinic = site
    client = client_as(praxis)
    response = client.post(f"/clinics/{clinic}/desk/new", data={
        "csrf_token": token(client, clinic), "family_name": "", "given_name": "Anna", "birth_date": "2999-01-01",
        "phones.0.number": "12", "phones.0.kind": "mobile", "emails.0.email": "not-an-address",
        "alerts.0.text": "Latex", "alerts.0.type": "allergy", "alerts.0.severity": "high"})
    assert response.status_code == 422
    errors = field_errors(response.text)
    assert errors["f-family_name"] == "This field is required."
    assert 'id="f-family_name" name="family_name" value=""' in response.text
    assert 'aria-invalid="true"' in response.text
    assert 'value="Anna"' in response.text and 'value="Latex"' in response.text
    with Session(praxis.engine) as session:
        assert session.exec(select(Patient)).first() is None
    # the service's own checks, once the form is complete
    response = client.post(f"/clinics/{clinic}/desk/new", data={
        "csrf_token": token(client, clinic), "family_name": "Kovács", "birth_date": "2999-01-01",
        "phones.0.number": "", "phones.1.number": "12", "emails.0.email": "not-an-address"})
    errors = field_errors(response.text)
    assert errors == {"f-birth_date": "The birth date is in the future.",
                      "f-phones-1-number": "This is not a valid phone number.",
                      "f-emails-0-email": "This is not a valid e-mail address."}


def test_errors_are_in_the_users_language(site):
    praxis, clinic = site
    create_user(praxis, [clinic], role="receptionist", login="ji", password=PASSWORD)
    client = client_as(praxis, "ji", locale="ko")
    response = client.post(f"/clinics/{clinic}/desk/new", data={"csrf_token": token(client, clinic),
                                                                "family_name": "", "birth_date": "2999-01-01"})
    assert field_errors(response.text)["f-family_name"] == "필수 항목입니다."
    assert '<html lang="ko">' in response.text and "환자 등록" in response.text


def test_a_plugin_veto_is_shown_next_to_its_field_in_the_users_language(site):
    praxis, clinic = site
    praxis.plugins.enable(clinic, "hungary", Actor.system("t"))
    praxis.plugins.configure(clinic, "hungary", {"require_national_id": True}, Actor.system("t"))
    client = client_as(praxis)
    form = {"csrf_token": token(client, clinic), "family_name": "Kovács", "given_name": "Anna"}
    response = client.post(f"/clinics/{clinic}/desk/new", data=form)
    assert response.status_code == 422
    assert field_errors(response.text) == {"f-identifiers-hu-taj": "TAJ number is required in this clinic"}
    assert "TAJ number" in response.text  # the plugin's identifier field is on the form
    create_user(praxis, [clinic], role="receptionist", login="hu", password=PASSWORD)
    hungarian = client_as(praxis, "hu", locale="hu")
    response = hungarian.post(f"/clinics/{clinic}/desk/new", data={**form, "csrf_token": token(hungarian, clinic)})
    assert field_errors(response.text) == {"f-identifiers-hu-taj": "Ebben a rendelőben a TAJ-szám megadása kötelező"}
    bad = client.post(f"/clinics/{clinic}/desk/new", data={**form, "identifiers.hu.taj": "037 687 211"})
    assert field_errors(bad.text)["f-identifiers-hu-taj"].startswith("This number is not valid.")
    good = client.post(f"/clinics/{clinic}/desk/new", data={**form, "identifiers.hu.taj": "037 687 210"},
                       follow_redirects=False)
    assert good.status_code == 303
    card = client.get(good.headers["location"])
    assert "037687210" not in card.text and "210" in card.text  # masked on the card


def test_the_duplicate_warning_lists_the_candidates_and_register_anyway_registers(site):
    praxis, clinic = site
    client = client_as(praxis)
    form = {"csrf_token": token(client, clinic), "family_name": "Kovács", "given_name": "Anna",
            "birth_date": "1980-01-02", "phones.0.number": "+36 30 123 4567"}
    assert client.post(f"/clinics/{clinic}/desk/new", data=form, follow_redirects=False).status_code == 303
    warned = client.post(f"/clinics/{clinic}/desk/new", data=form)
    assert warned.status_code == 409
    assert "This may be a patient who is already registered" in warned.text
    assert "same name and birth date" in warned.text and "same phone number" in warned.text
    assert 'name="confirm_duplicate" value="1"' in warned.text
    again = client.post(f"/clinics/{clinic}/desk/new", data={**form, "confirm_duplicate": "1"}, follow_redirects=False)
    assert again.status_code == 303
    with Session(praxis.engine) as session:
        assert len(session.exec(select(Patient)).all()) == 2


def test_search_by_name_phone_and_chart_and_the_card(site):
    praxis, clinic = site
    data = set_up_book(praxis, clinic)
    client = client_as(praxis)
    for query in ("q=kov", "q=anna", "phone=1234567", "chart=000001"):
        page = client.get(f"/clinics/{clinic}/desk?{query}")
        assert "Kovács Anna" in page.text and "Nagy Béla" not in page.text, query
    partial = client.get(f"/clinics/{clinic}/desk?q=nagy", headers={**HTMX, "HX-Target": "results"})
    assert partial.text.lstrip().startswith('<div id="results"') and "Nagy Béla" in partial.text
    card = client.get(f"/clinics/{clinic}/desk/{data.patient}")
    assert card.status_code == 200
    alerts = card.text.split('aria-labelledby="alerts-heading"')[1].split("</section>")[0]
    assert "Penicillin" in alerts and "High" in alerts
    assert "badge vip" in card.text and "implant" in card.text
    assert "Registered" in card.text  # change history
    assert "Dr. Kovács Anna" in card.text  # appointment history with the doctor


def test_identifiers_are_masked_and_revealing_them_needs_the_permission_and_is_logged(make_praxis):
    praxis = make_praxis([HUNGARY])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    praxis.plugins.enable(clinic, "hungary", Actor.system("t"))
    create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD)
    create_user(praxis, [clinic], role="assistant", login="asst", password=PASSWORD)
    client = client_as(praxis)
    made = client.post(f"/clinics/{clinic}/desk/new", data={"csrf_token": token(client, clinic),
                       "family_name": "Kovács", "identifiers.hu.taj": "037 687 210"}, follow_redirects=False)
    url = made.headers["location"]
    assert "037687210" not in client.get(url).text
    revealed = client.get(url + "?reveal=1", headers=HTMX)
    assert revealed.text.lstrip().startswith('<section class="panel" id="identifiers"')
    assert "037687210" in revealed.text
    with Session(praxis.engine) as session:
        actions = [r.action for r in session.exec(select(AccessLog)).all()]
    assert "view_identifiers" in actions
    assistant = client_as(praxis, "asst")
    assert "Show in full" not in assistant.get(url).text
    assert assistant.get(url + "?reveal=1").status_code == 403


def test_editing_shows_errors_next_to_list_fields_and_saves(site):
    praxis, clinic = site
    data = set_up_book(praxis, clinic)
    client = client_as(praxis)
    edit = client.get(f"/clinics/{clinic}/desk/{data.patient}/edit")
    form = {"csrf_token": csrf_of(edit.text), "version": "1", "family_name": "Kovács", "given_name": "Anna Mária",
            "chart_number": "000001", "phones.0.number": "+36 30 123 4567", "phones.1.number": "999",
            "alerts.0.text": "Penicillin", "alerts.0.type": "allergy", "alerts.0.severity": "high"}
    refused = client.post(f"/clinics/{clinic}/desk/{data.patient}/edit", data=form)
    assert refused.status_code == 422
    assert field_errors(refused.text) == {"f-phones-1-number": "This is not a valid phone number."}
    form["phones.1.number"] = ""
    saved = client.post(f"/clinics/{clinic}/desk/{data.patient}/edit", data=form, follow_redirects=False)
    assert saved.status_code == 303
    card = client.get(saved.headers["location"])
    assert "Kovács Anna Mária" in card.text and "The card of Kovács Anna Mária is saved." in card.text
    stale = client.post(f"/clinics/{clinic}/desk/{data.patient}/edit", data=form)  # version 1 is stale now
    assert stale.status_code == 409 and "Someone else changed this card" in stale.text


def test_trash_needs_a_reason_then_restore_brings_the_card_back(site):
    praxis, clinic = site
    data = set_up_book(praxis, clinic)
    client = client_as(praxis)
    url = f"/clinics/{clinic}/desk/{data.other_patient}"
    refused = client.post(f"{url}/trash", data={"csrf_token": token(client, clinic), "reason": " "})
    assert refused.status_code == 422 and field_errors(refused.text) == {"f-reason": "Give a reason."}
    done = client.post(f"{url}/trash", data={"csrf_token": token(client, clinic), "reason": "registered twice"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert "This card is in the trash." in client.get(url).text
    trash = client.get(f"/clinics/{clinic}/desk/trash")
    assert "Nagy Béla" in trash.text and "registered twice" in trash.text
    assert "Nagy Béla" not in client.get(f"/clinics/{clinic}/desk?q=nagy").text
    client.post(f"{url}/restore", data={"csrf_token": token(client, clinic)})
    assert "Nagy Béla" in client.get(f"/clinics/{clinic}/desk?q=nagy").text


def test_merge_and_undo(site):
    praxis, clinic = site
    data = set_up_book(praxis, clinic)
    client = client_as(praxis)
    pick = client.get(f"/clinics/{clinic}/desk/{data.patient}/merge?q=nagy")
    assert f"merge?other={data.other_patient}" in pick.text
    merged = client.post(f"/clinics/{clinic}/desk/{data.patient}/merge", data={
        "csrf_token": csrf_of(pick.text), "other": data.other_patient, "keep": "this"}, follow_redirects=False)
    assert merged.headers["location"].endswith(data.patient)
    card = client.get(merged.headers["location"])
    assert "+36 30 111 2222" in card.text  # the other card's phone moved over
    other = client.get(f"/clinics/{clinic}/desk/{data.other_patient}")
    assert "This card was merged into another one." in other.text
    client.post(f"/clinics/{clinic}/desk/{data.other_patient}/unmerge", data={"csrf_token": csrf_of(other.text)})
    assert "This card was merged" not in client.get(f"/clinics/{clinic}/desk/{data.other_patient}").text


def test_permissions_shape_the_desk(site):
    praxis, clinic = site
    data = set_up_book(praxis, clinic)
    create_user(praxis, [clinic], permissions=["patients.view"], login="viewer", password=PASSWORD)
    viewer = client_as(praxis, "viewer")
    card = viewer.get(f"/clinics/{clinic}/desk/{data.patient}")
    assert card.status_code == 200
    assert "/edit" not in card.text and "Move this card to the trash" not in card.text
    assert "Appointments" not in card.text  # no appointments.view
    assert viewer.get(f"/clinics/{clinic}/desk/new").status_code == 403
    assert viewer.get(f"/clinics/{clinic}/desk/trash").status_code == 403
    assert viewer.post(f"/clinics/{clinic}/desk/{data.patient}/trash",
                       data={"csrf_token": token(viewer, clinic), "reason": "x"}).status_code == 403
    other_clinic = add_clinic(praxis, "Other")
    assert viewer.get(f"/clinics/{other_clinic}/desk").status_code == 404


def test_plugin_panels_appear_on_the_card_and_go_when_the_plugin_is_disabled(make_praxis):
    from tests.conftest import fixture_plugin

    praxis = make_praxis([fixture_plugin("greeter")])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD)
    data = set_up_book(praxis, clinic)
    client = client_as(praxis)
    url = f"/clinics/{clinic}/desk/{data.patient}"
    assert 'data-plugin="greeter"' not in client.get(url).text
    praxis.plugins.enable(clinic, "greeter", Actor.system("t"))
    card = client.get(url).text
    assert 'data-plugin="greeter"' in card and "Greetings sent" in card
    assert f'data-panel-url="/api/clinics/{clinic}/x/greeter/patients/{data.patient}/greetings"' in card
    praxis.plugins.disable(clinic, "greeter", Actor.system("t"))
    assert 'data-plugin="greeter"' not in client.get(url).text
