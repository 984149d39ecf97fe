"""The records screens through TestClient: writing, finalising and amending from the patient card with errors
next to the fields, the list of records waiting for a signature with its filters, batch signing with one intent
check (SMS code with wrong tries, QR face check, none), countersigning, verification reports and permissions."""

from __future__ import annotations

import re
import uuid
from importlib.metadata import EntryPoint

import pytest

from core.audit import Actor
from core.patients.schemas import PatientCreate
from core.patients.service import PatientService
from tests.auth_helpers import create_user
from tests.conftest import add_clinic
from tests.ui import signing_plugin
from tests.ui.helpers import csrf_of, log_in, web_client
from tests.ui.screens import field_errors
from ui import i18n

PASSWORD = "correct horse battery"
ACTOR = Actor(None, "test")
SIGNING = EntryPoint(name="signing_fixture", value="tests.ui.signing_plugin", group="praxis.plugins")


@pytest.fixture
def site(make_praxis):
    praxis = make_praxis([SIGNING])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    praxis.plugins.enable(clinic, "signing_fixture", ACTOR)
    users = {
        "doc": create_user(praxis, [clinic], role="doctor", login="doc", password=PASSWORD, name="Dr. Kovács Anna"),
        "boss": create_user(praxis, [clinic], role="doctor", login="boss", password=PASSWORD, name="Dr. Fő Nővér"),
        "trainee": create_user(praxis, [clinic], login="trainee", password=PASSWORD, name="Dr. Gyakornok",
                               permissions=["patients.view", "records.view", "records.edit", "records.verify"]),
        "assistant": create_user(praxis, [clinic], role="assistant", login="asst", password=PASSWORD,
                                 name="Asszisztens Éva"),
    }
    other = add_clinic(praxis, "Other", country="HU", timezone="Europe/Budapest", locale="en")
    create_user(praxis, [other], role="admin", login="outsider", password=PASSWORD)
    patient = PatientService(praxis).create(clinic, PatientCreate(family_name="Nagy", given_name="Béla"), ACTOR)
    return praxis, clinic, users, str(patient.id)


def client_as(praxis, login, locale=None):  # type: ignore[no-untyped-def]
    client = web_client(praxis)
    if locale:
        client.cookies.set(i18n.LANG_COOKIE, locale)
    assert log_in(client, login, PASSWORD).status_code == 303
    return client


def write(client, clinic, patient, title, *, finalise=True):  # type: ignore[no-untyped-def]
    form = client.get(f"/clinics/{clinic}/records/new/{patient}")
    assert form.status_code == 200
    data = {"csrf_token": csrf_of(form.text), "title": title, "kind": "visit_note", "text": "36: composite filling",
            "content": '{"tooth": "36"}'}
    if finalise:
        data["finalise"] = "1"
    made = client.post(f"/clinics/{clinic}/records/new/{patient}", data=data, follow_redirects=False)
    assert made.status_code == 303, made.text
    return made.headers["location"].rsplit("/", 1)[1]


def test_write_with_errors_next_to_fields_then_finalise_from_the_patient_card(site):
    praxis, clinic, _, patient = site
    doc = client_as(praxis, "doc")
    card = doc.get(f"/clinics/{clinic}/desk/{patient}")
    assert f'hx-get="/clinics/{clinic}/records/patient/{patient}"' in card.text
    token = csrf_of(card.text)
    refused = doc.post(f"/clinics/{clinic}/records/new/{patient}", data={
        "csrf_token": token, "title": "x" * 201, "kind": "Not A Kind", "text": "", "content": "[1, 2"})
    assert refused.status_code == 422
    errors = field_errors(refused.text)
    assert errors["f-content"].startswith("Enter the findings as a JSON object")
    assert errors["f-title"] == "Enter at most 200 characters."
    assert errors["f-kind"] == "The value is not in the expected format."
    assert "[1, 2" in refused.text  # what was typed is kept
    record = write(doc, clinic, patient, "Filling 36", finalise=False)
    shown = doc.get(f"/clinics/{clinic}/records/{record}")
    assert "Draft" in shown.text and "Filling 36" in shown.text and "&#34;tooth&#34;: &#34;36&#34;" in shown.text
    edited = doc.post(f"/clinics/{clinic}/records/{record}/edit", data={
        "csrf_token": token, "title": "Filling 36 (DO)", "kind": "visit_note", "text": "done", "content": "",
        "revision": "1", "finalise": "1"}, follow_redirects=False)
    assert edited.status_code == 303
    section = doc.get(f"/clinics/{clinic}/records/patient/{patient}", headers={"HX-Request": "true"})
    assert "Filling 36 (DO)" in section.text and "Waiting for the author&#39;s signature" in section.text
    stale = doc.post(f"/clinics/{clinic}/records/{record}/edit", data={
        "csrf_token": token, "title": "changed", "kind": "visit_note", "text": "", "content": "", "revision": "1"})
    assert stale.status_code == 409
    assert "This record is final: turn it back into a draft before editing." in stale.text


def test_batch_signing_with_an_sms_code_then_verify_and_amend(site):
    praxis, clinic, _, patient = site
    doc = client_as(praxis, "doc")
    first = write(doc, clinic, patient, "Filling 36")
    second = write(doc, clinic, patient, "Crown 11")
    listing = doc.get(f"/clinics/{clinic}/records")
    assert listing.status_code == 200
    assert listing.text.count('name="record_ids"') == 2 and "Sign the chosen records" in listing.text
    begun = doc.post(f"/clinics/{clinic}/records/sign", data={
        "csrf_token": csrf_of(listing.text), "record_ids": [first, second], "provider": "signing_fixture",
        "method": "sms_code", "kind": "sign", "back": f"/clinics/{clinic}/records"})
    assert begun.status_code == 200
    assert "You are signing 2 records." in begun.text and "+36 30 ***4567" in begun.text
    session = re.search(r'action="[^"]*/records/signing/([0-9a-f-]+)"', begun.text).group(1)
    form = {"csrf_token": csrf_of(begun.text), "record_ids": [first, second], "kind": "sign",
            "provider": "signing_fixture", "challenge_kind": "sms_code", "back": f"/clinics/{clinic}/records"}
    wrong = doc.post(f"/clinics/{clinic}/records/signing/{session}", data={**form, "response": "000000"})
    assert wrong.status_code == 422
    assert field_errors(wrong.text) == {"f-response": "The code is not correct. 2 more tries."}
    right = doc.post(f"/clinics/{clinic}/records/signing/{session}", data={**form, "response": signing_plugin.CODE},
                     follow_redirects=False)
    assert right.status_code == 303
    after = doc.get(right.headers["location"])
    assert "2 records signed." in after.text and "No records match." in after.text
    everything = doc.get(f"/clinics/{clinic}/records?show=all")
    row = re.search(rf'<tr id="record-{first}">(.*?)</tr>', everything.text, re.S).group(1)
    # a doctor with full authority signs and the record is locked at once: signer, time, expiry, locked
    assert "Locked" in row and f"<td>user {site[2]['doc']}</td>" in row and "—" not in row and "<td>Yes</td>" in row
    shown = doc.get(f"/clinics/{clinic}/records/{first}")
    assert f'href="/api/clinics/{clinic}/records/{first}/pdf"' in shown.text
    report = doc.post(f"/clinics/{clinic}/records/{first}/verify", data={"csrf_token": csrf_of(shown.text)},
                      headers={"HX-Request": "true"})
    assert report.status_code == 200 and "All checks passed: the signatures are valid." in report.text
    assert "<html" not in report.text
    pdf = doc.get(f"/api/clinics/{clinic}/records/{first}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    no_reason = doc.post(f"/clinics/{clinic}/records/{first}/amend", data={
        "csrf_token": csrf_of(shown.text), "reason": "", "title": "Filling 36", "text": "corrected", "content": ""})
    assert no_reason.status_code == 422 and field_errors(no_reason.text) == {"f-reason": "This field is required."}
    amended = doc.post(f"/clinics/{clinic}/records/{first}/amend", data={
        "csrf_token": csrf_of(shown.text), "reason": "wrong surface", "title": "Filling 36", "text": "MOD",
        "content": ""}, follow_redirects=False)
    assert amended.status_code == 303
    new_version = doc.get(amended.headers["location"])
    assert "Amendment: wrong surface" in new_version.text and "version 2" in new_version.text


def test_locked_session_face_check_and_countersigning(site):
    praxis, clinic, _, patient = site
    doc = client_as(praxis, "doc")
    record = write(doc, clinic, patient, "Extraction 48")
    token = csrf_of(doc.get(f"/clinics/{clinic}/records").text)
    back = f"/clinics/{clinic}/records"
    begun = doc.post(f"/clinics/{clinic}/records/sign", data={"csrf_token": token, "record_ids": [record],
                                                                 "method": "qr_face", "kind": "sign", "back": back})
    assert begun.status_code == 200 and 'src="data:image/svg+xml' in begun.text
    session = re.search(r'/records/signing/([0-9a-f-]+)"', begun.text).group(1)
    form = {"csrf_token": token, "record_ids": [record], "kind": "sign", "challenge_kind": "qr_face", "back": back,
            "qr_url": "https://face.example/check/x"}
    pending = doc.post(f"/clinics/{clinic}/records/signing/{session}", data=form)
    assert pending.status_code == 409 and "The check is not finished yet" in pending.text
    signing_plugin.FACE_DONE.update(signing_plugin.PROVIDER.kinds)
    done = doc.post(f"/clinics/{clinic}/records/signing/{session}", data=form, follow_redirects=False)
    assert "1 record signed." in doc.get(done.headers["location"]).text

    trainee = client_as(praxis, "trainee")
    note = write(trainee, clinic, patient, "Scaling")
    signed = trainee.post(f"/clinics/{clinic}/records/sign", data={
        "csrf_token": csrf_of(trainee.get(back).text), "record_ids": [note], "method": "", "kind": "sign",
        "back": back}, follow_redirects=False)
    assert "1 record signed." in trainee.get(signed.headers["location"]).text
    assert 'name="record_ids"' not in trainee.get(back).text  # it waits for someone else now
    boss = client_as(praxis, "boss")
    waiting = boss.get(back)
    assert "Waiting for a countersignature" in waiting.text and f'value="{note}"' in waiting.text
    locked = boss.post(f"/clinics/{clinic}/records/sign", data={
        "csrf_token": csrf_of(waiting.text), "record_ids": [note], "method": "sms_code", "kind": "countersign",
        "back": back})
    session = re.search(r'/records/signing/([0-9a-f-]+)"', locked.text).group(1)
    form = {"csrf_token": csrf_of(waiting.text), "record_ids": [note], "kind": "countersign",
            "challenge_kind": "sms_code", "back": back}
    for _ in range(2):
        assert boss.post(f"/clinics/{clinic}/records/signing/{session}",
                         data={**form, "response": "1"}).status_code == 422
    gone = boss.post(f"/clinics/{clinic}/records/signing/{session}", data={**form, "response": "1"},
                     follow_redirects=False)
    assert "Too many wrong codes" in boss.get(gone.headers["location"]).text
    ok = boss.post(f"/clinics/{clinic}/records/sign", data={
        "csrf_token": csrf_of(waiting.text), "record_ids": [note], "kind": "countersign", "back": back},
        follow_redirects=False)
    assert "1 record countersigned." in boss.get(ok.headers["location"]).text
    everything = boss.get(f"{back}?show=all&author={site[2]['trainee']}")
    assert "Scaling" in everything.text and "Extraction 48" not in everything.text
    assert "Yes" in re.search(rf'<tr id="record-{note}">(.*?)</tr>', everything.text, re.S).group(1)  # locked


def test_filters_errors_and_someone_elses_records_in_hungarian(site):
    praxis, clinic, _, patient = site
    doc = client_as(praxis, "doc")
    record = write(doc, clinic, patient, "Filling 36")
    boss = client_as(praxis, "boss", locale="hu")
    listing = boss.get(f"/clinics/{clinic}/records?date_from=2030-13-01&patient={uuid.uuid4()}")
    assert listing.status_code == 422
    errors = field_errors(listing.text)
    assert set(errors) == {"f-date_from", "f-patient"}
    assert errors["f-date_from"] != "Enter a date."
    plain = boss.get(f"/clinics/{clinic}/records?patient={patient}")
    assert "Filling 36" in plain.text and 'name="record_ids"' not in plain.text  # not the boss's to sign
    refused = boss.post(f"/clinics/{clinic}/records/sign", data={
        "csrf_token": csrf_of(plain.text), "record_ids": [record], "kind": "sign",
        "back": f"/clinics/{clinic}/records"}, follow_redirects=False)
    flashed = boss.get(refused.headers["location"])
    assert "Csak a saját" in flashed.text or "saját" in flashed.text


def test_permissions_of_the_records_screens(site):
    praxis, clinic, _, patient = site
    doc = client_as(praxis, "doc")
    record = write(doc, clinic, patient, "Filling 36")
    assistant = client_as(praxis, "asst")
    listing = assistant.get(f"/clinics/{clinic}/records")
    assert listing.status_code == 200 and "Filling 36" in listing.text and "sign-batch" not in listing.text
    token = csrf_of(listing.text)
    assert assistant.get(f"/clinics/{clinic}/records/new/{patient}").status_code == 403
    assert assistant.post(f"/clinics/{clinic}/records/sign", data={"csrf_token": token, "record_ids": [record],
                                                                    "kind": "sign"}).status_code == 403
    assert assistant.post(f"/clinics/{clinic}/records/{record}/verify",
                          data={"csrf_token": token}).status_code == 403
    outsider = client_as(praxis, "outsider")
    assert outsider.get(f"/clinics/{clinic}/records/{record}").status_code == 404
    assert doc.get(f"/clinics/{clinic}/records/{uuid.uuid4()}").status_code == 404
    menu = doc.get(f"/clinics/{clinic}/desk")
    assert f'href="/clinics/{clinic}/records"' in menu.text
