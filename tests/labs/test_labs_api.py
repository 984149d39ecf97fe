"""Lab set-up, labels and dental cases through the REST API: catalogue import and mapping, 422s naming the field,
ZPL labels checked by a fake printer (and the PDF fallback), dental lab case warnings and turnaround, permissions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from praxis_lab_hl7 import plugin

from core.clock import now
from tests.auth_helpers import client_for, create_user
from tests.labs.helpers import FakePrinter, add_patient, add_visit, set_up_lab


@pytest.fixture(scope="module")
def app(module_plugin_app: Any) -> Any:
    """One app for the module (each test sets up its own lab, patients and visits)."""
    return module_plugin_app(plugin, settings={"host": "127.0.0.1", "port": 9})  # the lab is never called here


@pytest.fixture
def printer() -> Iterator[FakePrinter]:
    fake = FakePrinter()
    yield fake
    fake.close()


def base(app: Any) -> str:
    return f"/api/clinics/{app.clinic_id}/labs"


def fields_of(answer: Any) -> dict[str, str]:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_error"
    return {f["field"]: f["code"] for f in body["fields"]}


def test_catalogue_import_single_and_bulk_mapping(app: Any):
    setup = set_up_lab(app, "lab_hl7")
    client, url = app.client, base(app)
    tests = client.get(f"{url}/providers/{setup.provider_id}/tests").json()
    assert {t["code"]: t["services"] for t in tests} == {"2093-3": ["LAB-CHOL"], "2345-7": ["LAB-GLU", "LAB-PANEL"],
                                                         "718-7": ["LAB-CBC", "LAB-PANEL"]}
    again = client.post(f"{url}/providers/{setup.provider_id}/tests/import", json={
        "format": "json", "content": '[{"code": "2345-7", "name": "Glucose", "services": ["LAB-GLU"]}]',
        "replace_mappings": True})
    assert again.json() == {"created": 0, "updated": 1, "mapped": 0}
    glucose = next(t for t in client.get(f"{url}/providers/{setup.provider_id}/tests").json()
                   if t["code"] == "2345-7")
    assert glucose["services"] == ["LAB-GLU"] and glucose["name"] == "Glucose"
    single = client.post(f"{url}/tests/{glucose['id']}/services", json={"service_code": "LAB-FAST"})
    assert single.status_code == 201 and single.json()["services"] == ["LAB-FAST", "LAB-GLU"]
    bulk = client.post(f"{url}/providers/{setup.provider_id}/mappings",
                       json={"mappings": [{"test_code": "2093-3", "service_code": "LAB-LIPID"},
                                          {"test_code": "718-7", "service_code": "LAB-LIPID"}]})
    assert bulk.json() == {"added": 2}
    assert client.delete(f"{url}/tests/{glucose['id']}/services/LAB-FAST").status_code == 204
    order = client.post(f"{url}/orders", json={"provider_id": setup.provider_id, "patient_id": str(setup.patient_id),
                                               "services": ["LAB-LIPID"]}).json()
    assert sorted(line["test_code"] for line in order["lines"]) == ["2093-3", "718-7"]
    assert order["source"] == "services"


def test_bad_input_is_refused_with_the_field_named(app: Any):
    setup = set_up_lab(app, "lab_hl7")
    client, url = app.client, base(app)
    assert fields_of(client.post(f"{url}/providers", json={"name": "X", "connector_plugin": "nope"})) == {
        "connector_plugin": "unknown_plugin"}
    assert fields_of(client.post(f"{url}/providers", json={"name": setup.provider_name})) == {"name": "duplicate"}
    bad_csv = "code,name\n,Nameless\n2345-7,\n"
    assert fields_of(client.post(f"{url}/providers/{setup.provider_id}/tests/import",
                                 json={"format": "csv", "content": bad_csv})) == {"rows[0].code": "required",
                                                                                  "rows[1].name": "required"}
    assert fields_of(client.post(f"{url}/providers/{setup.provider_id}/mappings",
                                 json={"mappings": [{"test_code": "0000-0", "service_code": "X"}]})) == {
        "mappings[0].test_code": "unknown_test"}
    assert fields_of(client.post(f"{url}/orders", json={"provider_id": setup.provider_id,
                                                        "patient_id": str(setup.patient_id),
                                                        "services": ["NOTHING"]})) == {"services": "not_mapped"}
    empty_visit = add_visit(app, setup.patient_id, ["CONSULT"])
    assert fields_of(client.post(f"{url}/orders", json={"provider_id": setup.provider_id,
                                                        "appointment_id": empty_visit})) == {"services": "not_mapped"}
    assert fields_of(client.post(f"{url}/orders", json={"provider_id": setup.provider_id})) == {
        "patient_id": "required"}
    assert client.get(f"{url}/orders/999999").status_code == 404


def test_a_specimen_label_reaches_the_printer_as_checked_zpl(app: Any, printer: FakePrinter):
    patient_id = add_patient(app, family="김", given="민준^~", birth=date(1975, 5, 17))
    setup = set_up_lab(app, "lab_hl7", printer_host="127.0.0.1", printer_port=printer.port)
    client, url = app.client, base(app)
    order = client.post(f"{url}/orders", json={"provider_id": setup.provider_id, "patient_id": str(patient_id),
                                               "services": ["LAB-PANEL"]}).json()
    (specimen,) = order["specimens"]
    collected = client.post(f"{url}/specimens/{specimen['id']}/collect",
                            json={"collected_at": "2026-03-14T09:25:00+01:00"})
    assert collected.json()["collected_at"] == "2026-03-14T08:25:00+00:00"
    printed = client.post(f"{url}/specimens/{specimen['id']}/label")
    assert printed.status_code == 200 and printed.json() == {"printed": True, "printer": f"127.0.0.1:{printer.port}"}
    (label,) = printer.labels
    parsed = FakePrinter.check(label)
    assert parsed["utf8"] and parsed["barcode"] == specimen["accession_number"]
    assert "^BCN," in label  # Code 128
    assert parsed["fields"][0] == "김 민준^~  1975-05-17"  # escaped with ^FH, so ^ and ~ cannot break the label
    assert "2345-7 718-7" in parsed["fields"][-1]
    got = client.get(f"{url}/orders/{order['id']}").json()
    assert got["specimens"][0]["label_printed_at"]


def test_without_a_printer_the_label_is_a_pdf_and_a_dead_printer_is_reported(app: Any):
    setup = set_up_lab(app, "lab_hl7")
    client, url = app.client, base(app)
    order = client.post(f"{url}/orders", json={"provider_id": setup.provider_id, "appointment_id":
                                               setup.appointment_id}).json()
    specimen_id = order["specimens"][0]["id"]
    pdf = client.post(f"{url}/specimens/{specimen_id}/label")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 500
    closed = FakePrinter()
    port = closed.port
    closed.close()
    client.patch(f"{url}/providers/{setup.provider_id}", json={"printer_host": "127.0.0.1", "printer_port": port})
    down = client.post(f"{url}/specimens/{specimen_id}/label")
    assert down.status_code == 502 and down.json()["error"] == "printer_unavailable"


def dental_lab(app: Any, name: str = "Smile Dental Lab") -> int:
    answer = app.client.post(f"{base(app)}/providers", json={"name": name, "kind": "dental"})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_the_appointment_book_warns_when_lab_work_will_not_be_back_in_time(app: Any, praxis_clock: Any):
    client, url = app.client, base(app)
    lab = dental_lab(app, "Warning Lab")
    patient = add_patient(app)
    fitting_at = now() + timedelta(days=7)
    fitting = add_visit(app, patient, ["CROWN-FIT"], start=fitting_at)
    fit_day = fitting_at.date()
    case = client.post(f"{url}/dental-cases", json={
        "patient_id": str(patient), "provider_id": lab, "work_type": "crown", "teeth": [36], "shade": "A2",
        "appointment_id": fitting, "sent_on": str(now().date()), "due_date": str(fit_day + timedelta(days=2))})
    assert case.status_code == 201, case.text
    case = case.json()
    assert case["status"] == "sent"
    status = client.get(f"{url}/appointments/{fitting}/lab-status").json()
    assert status["ok"] is False and status["lab_status"] == "late"
    assert [w["code"] for w in status["cases"][0]["warnings"]] == ["due_after_appointment"]
    week = client.get(f"{url}/dental-cases/warnings", params={"start": now().isoformat(),
                                                              "end": (now() + timedelta(days=14)).isoformat()})
    assert [w["appointment_id"] for w in week.json()] == [fitting]

    moved = client.patch(f"{url}/dental-cases/{case['id']}", json={"due_date": str(fit_day - timedelta(days=1)),
                                                                    "version": case["version"]})
    assert moved.status_code == 200
    assert client.get(f"{url}/appointments/{fitting}/lab-status").json()["lab_status"] == "in_progress"
    stale = client.patch(f"{url}/dental-cases/{case['id']}", json={"shade": "A3", "version": case["version"]})
    assert stale.status_code == 409

    praxis_clock.set(datetime.combine(fit_day, datetime.min.time(), tzinfo=fitting_at.tzinfo) + timedelta(hours=6))
    status = client.get(f"{url}/appointments/{fitting}/lab-status").json()
    assert "not_received" in [w["code"] for w in status["cases"][0]["warnings"]]

    back = client.patch(f"{url}/dental-cases/{case['id']}", json={"received_on": str(fit_day - timedelta(days=1)),
                                                                  "checked_on": str(fit_day)})
    assert back.json()["status"] == "checked"
    status = client.get(f"{url}/appointments/{fitting}/lab-status").json()
    assert status["ok"] is True and status["lab_status"] == "ready"


def test_dental_case_validation_and_turnaround_per_lab(app: Any):
    client, url = app.client, base(app)
    lab = dental_lab(app)
    other = client.post(f"{url}/providers", json={"name": "Fast Lab", "kind": "dental"}).json()["id"]
    patient = add_patient(app)
    bad = client.post(f"{url}/dental-cases", json={"patient_id": str(patient), "provider_id": lab,
                                                   "work_type": "bridge", "teeth": [36, 99],
                                                   "sent_on": "2026-03-10", "received_on": "2026-03-01"})
    assert set(fields_of(bad)) == {"teeth", "received_on"}
    medical = client.post(f"{url}/providers", json={"name": "Blood lab", "kind": "medical"}).json()["id"]
    assert fields_of(client.post(f"{url}/dental-cases", json={"patient_id": str(patient), "provider_id": medical,
                                                              "work_type": "denture"})) == {"provider_id": "wrong_kind"}
    for provider, sent, received, due in [(lab, "2026-03-02", "2026-03-09", "2026-03-10"),
                                          (lab, "2026-03-02", "2026-03-13", "2026-03-10"),
                                          (other, "2026-03-02", "2026-03-05", "2026-03-06"),
                                          (lab, "2026-03-20", None, "2026-03-27")]:
        values = {"patient_id": str(patient), "provider_id": provider, "work_type": "crown", "teeth": [11],
                  "sent_on": sent, "due_date": due, **({"received_on": received} if received else {})}
        assert client.post(f"{url}/dental-cases", json=values).status_code == 201
    stats = {s["name"]: s for s in client.get(f"{url}/dental-turnaround").json()}
    assert stats["Smile Dental Lab"] == {"provider_id": lab, "name": "Smile Dental Lab", "cases_back": 2,
                                         "cases_out": 1, "mean_days": 9.0, "median_days": 9.0, "max_days": 11,
                                         "on_time_rate": 0.5}
    assert (stats["Fast Lab"]["mean_days"], stats["Fast Lab"]["on_time_rate"]) == (3.0, 1.0)
    sent_case = client.get(f"{url}/dental-cases", params={"provider_id": other}).json()[0]
    assert client.delete(f"{url}/dental-cases/{sent_case['id']}").status_code == 409


def test_every_lab_route_needs_its_permission(app: Any):
    setup = set_up_lab(app, "lab_hl7")
    receptionist = client_for(app.praxis, create_user(app.praxis, clinic_ids=[app.clinic_id], role="receptionist"))
    doctor = client_for(app.praxis, create_user(app.praxis, clinic_ids=[app.clinic_id], role="doctor"))
    url = base(app)
    assert receptionist.get(f"{url}/providers").status_code == 403
    assert receptionist.get(f"{url}/patients/{setup.patient_id}/results").status_code == 403
    assert doctor.get(f"{url}/providers").status_code == 200
    assert doctor.post(f"{url}/providers", json={"name": "Doctor's own"}).status_code == 403  # set-up is labs.manage
    order = doctor.post(f"{url}/orders", json={"provider_id": setup.provider_id,
                                               "appointment_id": setup.appointment_id})
    assert order.status_code == 201 and order.json()["doctor_id"] == app.user_id  # the visit's doctor
