"""Lab results on the patient card and the dental lab-case warning in the appointment dialog, through TestClient:
values, units, ranges, statuses and times in the clinic's time zone, abnormal values marked by class and text,
the orders with their status, permissions, and all five languages."""

from __future__ import annotations

import re

import pytest

from core.audit import Actor
from core.db import transaction
from core.models.labs import DentalLabCase
from core.patients.schemas import PatientCreate
from core.patients.service import PatientService
from tests.auth_helpers import create_user
from tests.conftest import add_clinic
from tests.ui.helpers import log_in, web_client
from tests.ui.labs_screens import add_labs
from tests.ui.screens import HTMX
from ui import i18n

PASSWORD = "correct horse battery"
ACTOR = Actor(None, "test")


@pytest.fixture
def site(make_praxis):
    praxis = make_praxis([])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    doc = create_user(praxis, [clinic], role="doctor", login="doc", password=PASSWORD, name="Dr. Kovács Anna")
    create_user(praxis, [clinic], role="receptionist", login="desk", password=PASSWORD)
    patient = PatientService(praxis).create(clinic, PatientCreate(family_name="Nagy", given_name="Béla"), ACTOR)
    labs = add_labs(praxis, clinic, str(patient.id), doc)
    return praxis, clinic, labs


def client_as(praxis, login, locale=None):  # type: ignore[no-untyped-def]
    client = web_client(praxis)
    if locale:
        client.cookies.set(i18n.LANG_COOKIE, locale)
    assert log_in(client, login, PASSWORD).status_code == 303
    return client


def rows(html: str, cls: str) -> list[str]:
    return re.findall(rf'<tr class="{cls}[^"]*">(.*?)</tr>', html, re.S)


def test_the_card_loads_the_lab_section_and_lists_results_with_abnormal_values_marked(site):
    praxis, clinic, labs = site
    client = client_as(praxis, "doc")
    card = client.get(f"/clinics/{clinic}/desk/{labs.patient}")
    assert card.status_code == 200
    assert f'hx-get="/clinics/{clinic}/labs/patient/{labs.patient}"' in card.text and "Lab results" in card.text
    part = client.get(f"/clinics/{clinic}/labs/patient/{labs.patient}", headers=HTMX)
    assert part.status_code == 200 and "<html" not in part.text
    results = rows(part.text, "lab-result")
    assert len(results) == 2
    glucose = next(r for r in results if "Glucose" in r)
    hemoglobin = next(r for r in results if "Hemoglobin" in r)
    assert '<tr class="lab-result abnormal">' in part.text  # the highlight class
    assert "Critically high" in glucose and "abnormal-marker" in glucose  # a text and an icon marker
    assert "11.2" in glucose and "mmol/L" in glucose and "3.9-5.5" in glucose and "Final" in glucose
    assert "Critically high" not in hemoglobin and "abnormal" not in hemoglobin and "Preliminary" in hemoglobin
    assert "3/6/26, 12:30" in glucose  # observed 23:30 UTC: shown in Budapest's time
    orders = rows(part.text, "lab-order")
    assert len(orders) == 1 and "Some results in" in orders[0] and "Glucose" in orders[0]


def test_an_empty_patient_says_so(site):
    praxis, clinic, _ = site
    other = PatientService(praxis).create(clinic, PatientCreate(family_name="Kis", given_name="Ádám"), ACTOR)
    part = client_as(praxis, "doc").get(f"/clinics/{clinic}/labs/patient/{other.id}", headers=HTMX)
    assert "No lab results yet." in part.text and "No lab orders yet." in part.text


def test_without_labs_view_the_section_is_hidden_and_the_route_refused(site):
    praxis, clinic, labs = site
    desk = client_as(praxis, "desk")
    card = desk.get(f"/clinics/{clinic}/desk/{labs.patient}")
    assert card.status_code == 200 and "/labs/patient/" not in card.text
    assert desk.get(f"/clinics/{clinic}/labs/patient/{labs.patient}", headers=HTMX).status_code == 403
    dialog = desk.get(f"/clinics/{clinic}/book/appointments/{labs.late_appointment}", headers=HTMX)
    assert dialog.status_code == 200 and "lab-case-warning" not in dialog.text


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_the_lab_section_and_the_warning_in_every_language(site, locale):
    praxis, clinic, labs = site
    client = client_as(praxis, "doc", locale)
    with i18n.using(i18n.LocaleState(locale, client.app.state.ui.catalogs.get(locale), i18n.timezone("UTC"), {})):
        marker, heading = i18n.gettext("Critically high"), i18n.gettext("Results")
        warning = i18n.gettext("The lab work may not be back in time for this appointment.")
    part = client.get(f"/clinics/{clinic}/labs/patient/{labs.patient}", headers=HTMX)
    assert marker in part.text and heading in part.text
    dialog = client.get(f"/clinics/{clinic}/book/appointments/{labs.late_appointment}", headers=HTMX)
    assert dialog.status_code == 200 and warning in dialog.text
    if locale != "en":
        assert "Critically high" not in part.text and "may not be back in time" not in dialog.text


def test_the_dialog_warns_only_while_the_lab_work_will_be_late(site):
    praxis, clinic, labs = site
    client = client_as(praxis, "doc")
    url = f"/clinics/{clinic}/book/appointments/{labs.late_appointment}"
    dialog = client.get(url, headers=HTMX)
    assert "lab-case-warning" in dialog.text and "crown (36)" in dialog.text
    assert "The lab&#39;s due date" in dialog.text or "The lab's due date" in dialog.text
    with transaction(praxis.engine) as session:
        case = session.query(DentalLabCase).filter_by(appointment_id=labs.late_appointment).one()
        case.status = "received"
    assert "lab-case-warning" not in client.get(url, headers=HTMX).text
