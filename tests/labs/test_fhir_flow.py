"""Orders through the FHIR connector end to end: ServiceRequest + Specimen out (conditional creates), DiagnosticReport
+ Observation polled back onto the patient."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.specimen import Specimen
from praxis_lab_fhir import plugin
from praxis_lab_fhir.fake_server import FakeFhirLab

from tests.labs.helpers import outbox_items, set_up_lab


@pytest.fixture
def fake() -> Iterator[FakeFhirLab]:
    with FakeFhirLab() as lab:
        yield lab


@pytest.fixture
def app(plugin_app: Any, fake: FakeFhirLab) -> Any:
    return plugin_app(plugin, settings=fake.plugin_settings(timeout_seconds=1.0))


def base(app: Any) -> str:
    return f"/api/clinics/{app.clinic_id}/labs"


def test_an_order_becomes_fhir_resources_and_reports_come_back_to_the_patient(app: Any, fake: FakeFhirLab):
    setup = set_up_lab(app, "lab_fhir")
    answer = app.client.post(f"{base(app)}/orders", json={"provider_id": setup.provider_id,
                                                          "appointment_id": setup.appointment_id})
    assert answer.status_code == 201, answer.text
    order = answer.json()
    placer = order["placer_order_number"]
    app.outbox.run()
    assert fake.effects == [placer]
    requests = fake.service_requests(placer)
    assert sorted(r["code"]["coding"][0]["code"] for r in requests) == ["2345-7", "718-7"]
    for request in requests:
        ServiceRequest(**request)  # valid R4 (R4B model)
        assert request["status"] == "active" and request["intent"] == "order"
        assert request["identifier"][0]["type"]["coding"][0]["code"] == "PLAC"
        assert request["specimen"][0]["reference"].startswith("Specimen/")
    (specimen,) = fake.store["Specimen"].values()
    Specimen(**specimen)
    assert specimen["accessionIdentifier"]["value"] == order["specimens"][0]["accession_number"]
    got = app.client.get(f"{base(app)}/orders/{order['id']}").json()
    assert got["status"] == "acknowledged" and got["ack_id"].startswith("ServiceRequest/")

    fake.report(placer, [{"code": "2345-7", "value": 182, "units": "mg/dL", "low": 70, "high": 99, "flag": "H"}],
                status="preliminary")
    app.ctx.enqueue("core.labs.poll", {})  # what the periodic job queues every two minutes
    app.outbox.run()
    assert app.client.get(f"{base(app)}/orders/{order['id']}").json()["status"] == "partial"
    fake.report(placer, [{"code": "2345-7", "value": 180, "units": "mg/dL", "low": 70, "high": 99, "flag": "H"},
                         {"code": "718-7", "value": 13.9, "units": "g/dL", "low": 12, "high": 16, "flag": "N"}])
    app.ctx.enqueue("core.labs.poll", {})
    app.outbox.run()
    got = app.client.get(f"{base(app)}/orders/{order['id']}").json()
    assert got["status"] == "final" and got["filler_order_number"] == f"FL-{placer}"
    (ready,) = outbox_items(app, "core.messaging.event")
    assert ready.payload["event"] == "lab.result_ready" and ready.payload["patient_id"] == str(setup.patient_id)
    results = {r["test_code"]: r for r in app.client.get(f"{base(app)}/patients/{setup.patient_id}/results").json()}
    assert (results["2345-7"]["value"], results["2345-7"]["reference_range"], results["2345-7"]["abnormal"]) == (
        "180", "70-99", True)
    assert results["2345-7"]["history"][0]["status"] == "preliminary"
    assert results["718-7"]["abnormal"] is False and results["718-7"]["units"] == "g/dL"


def test_a_fhir_lab_that_is_down_keeps_the_order_waiting(app: Any, fake: FakeFhirLab, praxis_clock: Any):
    setup = set_up_lab(app, "lab_fhir")
    fake.fail_next(2, status=503)
    answer = app.client.post(f"{base(app)}/orders", json={"provider_id": setup.provider_id,
                                                          "appointment_id": setup.appointment_id})
    app.outbox.run()
    (item,) = outbox_items(app, "lab.order")
    assert item.status == "pending" and "503" in (item.last_error or "")
    praxis_clock.advance(timedelta(minutes=10))
    app.outbox.run()
    praxis_clock.advance(timedelta(minutes=10))
    app.outbox.run()
    (item,) = outbox_items(app, "lab.order")
    assert item.status == "done" and fake.effects == [answer.json()["placer_order_number"]]
