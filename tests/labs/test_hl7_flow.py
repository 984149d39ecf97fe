"""Orders through the HL7 connector end to end: a real Praxis, the lab_hl7 plugin, the fake LIS over MLLP and the
plugin's result listener on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import hl7
import pytest
from praxis_lab_hl7 import plugin, store
from praxis_lab_hl7.fake_lab import FakeLis
from praxis_lab_hl7.listener import LISTENERS
from praxis_lab_hl7.messages import control_id
from sqlalchemy import func, select

from core.models.labs import LabResult
from tests.labs.helpers import free_port, outbox_items, session, set_up_lab


@pytest.fixture
def fake() -> Iterator[FakeLis]:
    with FakeLis() as lis:
        yield lis


@pytest.fixture
def app(plugin_app: Any, fake: FakeLis) -> Iterator[Any]:
    port = free_port()
    built = plugin_app(plugin, settings=fake.plugin_settings(listener_host="127.0.0.1", listener_port=port,
                                                             timeout_seconds=1.0))
    fake.push_to = ("127.0.0.1", port)
    built.outbox.run()  # runs the periodic job that starts the listener
    assert LISTENERS.get(built.clinic_id) is not None
    yield built
    LISTENERS.stop(built.clinic_id)


def base(app: Any) -> str:
    return f"/api/clinics/{app.clinic_id}/labs"


def order_from_visit(app: Any, setup: Any) -> dict[str, Any]:
    answer = app.client.post(f"{base(app)}/orders", json={"provider_id": setup.provider_id,
                                                          "appointment_id": setup.appointment_id})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_an_order_reaches_the_lab_as_a_valid_orm_and_results_come_back_to_the_patient(app: Any, fake: FakeLis):
    setup = set_up_lab(app, "lab_hl7")
    order = order_from_visit(app, setup)
    assert order["status"] == "placed" and order["source"] == "appointment"
    assert sorted(line["test_code"] for line in order["lines"]) == ["2345-7", "718-7"]  # CONSULT maps to nothing
    assert len(order["specimens"]) == 1 and order["specimens"][0]["accession_number"].startswith("S")

    app.outbox.run()
    placer = order["placer_order_number"]
    assert fake.effects == [placer]
    orm = hl7.parse(fake.orders[placer]["raw"])
    msh = orm.segment("MSH")
    assert str(msh(9)) == "ORM^O01^ORM_O01" and str(msh(12)) == "2.5"
    assert str(msh(10)) == control_id(order["outbox_item_id"])  # the outbox id is the idempotency key
    assert str(orm.segment("PID")(5)) == "Nagy^Éva" and str(orm.segment("PID")(7)) == "19800229"
    assert [str(s(1)) for s in orm.segments("ORC")] == ["NW", "NW"]
    assert sorted(str(s(4)).split("^")[0] for s in orm.segments("OBR")) == ["2345-7", "718-7"]
    assert str(orm.segments("OBR")[0](18)) == order["specimens"][0]["accession_number"]
    got = app.client.get(f"{base(app)}/orders/{order['id']}").json()
    assert got["status"] == "acknowledged" and got["filler_order_number"] == fake.orders[placer]["filler"]

    answer = fake.report(placer, [{"code": "2345-7", "value": "182", "units": "mg/dL", "range": "70-99", "flag": "H",
                                   "status": "preliminary"}])
    assert answer is not None and answer.code == "AA"
    app.outbox.run()
    got = app.client.get(f"{base(app)}/orders/{order['id']}").json()
    assert got["status"] == "partial"
    assert not [i for i in outbox_items(app, "core.messaging.event")]  # not ready yet: no message to the patient

    fake.report(placer, [{"code": "2345-7", "value": "180", "units": "mg/dL", "range": "70-99", "flag": "H"},
                         {"code": "718-7", "value": "13.9", "units": "g/dL", "range": "12.0-16.0", "flag": "N",
                          "note": "Fasting sample"}])
    app.outbox.run()
    got = app.client.get(f"{base(app)}/orders/{order['id']}").json()
    assert got["status"] == "final" and got["completed_at"]
    (ready,) = outbox_items(app, "core.messaging.event")
    assert ready.payload["event"] == "lab.result_ready" and ready.payload["patient_id"] == str(setup.patient_id)
    assert ready.payload["data"]["abnormal"] is True and ready.payload["appointment_id"] == setup.appointment_id

    fake.report(placer, [{"code": "2345-7", "value": "118", "units": "mg/dL", "range": "70-99", "flag": "H",
                          "status": "corrected"}])
    app.outbox.run()
    results = app.client.get(f"{base(app)}/patients/{setup.patient_id}/results").json()
    by_code = {r["test_code"]: r for r in results}
    glucose, hemoglobin = by_code["2345-7"], by_code["718-7"]
    assert (glucose["value"], glucose["status"], glucose["abnormal"], glucose["version"]) == ("118", "corrected",
                                                                                            True, 3)
    assert [(h["status"], h["value"]) for h in glucose["history"]] == [("preliminary", "182"), ("final", "180")]
    assert (hemoglobin["abnormal"], hemoglobin["notes"], hemoglobin["units"]) == (False, "Fasting sample", "g/dL")
    assert glucose["observed_at"].endswith("+00:00")
    assert len(outbox_items(app, "core.messaging.event")) == 2  # the correction is news for the patient too
    abnormal = app.client.get(f"{base(app)}/patients/{setup.patient_id}/results",
                              params={"abnormal_only": True}).json()
    assert [r["test_code"] for r in abnormal] == ["2345-7"]


def test_a_resent_result_message_is_stored_once(app: Any, fake: FakeLis):
    setup = set_up_lab(app, "lab_hl7")
    order = order_from_visit(app, setup)
    app.outbox.run()
    raw = fake.oru(order["placer_order_number"], [{"code": "2345-7", "value": "90"}], control="RESEND1")
    assert fake.push(raw).code == "AA"
    assert fake.push(raw).code == "AA"  # the lab did not get our first ACK and sends again
    app.outbox.run()
    with session(app) as s:
        assert s.execute(select(func.count()).select_from(LabResult)).scalar_one() == 1
        assert s.execute(select(func.count()).select_from(store.inbox)).scalar_one() == 1


@pytest.mark.parametrize(("mangle", "ack", "code", "words"), [
    (lambda raw: raw.replace("OBX|1|", "ZZZ|1|").replace("OBR|1|", "OBX|9|NM|1-1^x^LN||1|||||F\rOBR|1|", 1),
     "AE", "100", "before any OBR"),
    (lambda raw: "\r".join(s for s in raw.split("\r") if not s.startswith(("OBR", "OBX", "ORC"))), "AE", "101",
     "no OBR"),
    (lambda raw: raw.replace("C1-", "X9-"), "AE", "204", "unknown order"),
    (lambda raw: raw.replace("|PRAXIS|CLINIC|", "|OTHER|CLINIC|", 1), "AR", "103", "MSH-5/6"),
    (lambda raw: raw.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01"), "AR", "200", "ADT^A01"),
    (lambda raw: raw.replace("|2.5|", "|3.0|", 1), "AR", "203", "version"),
    (lambda raw: raw.replace("|F|||", "|Q|||"), "AE", "103", "OBX-11"),
    (lambda raw: raw.replace("|NM|2345-7", "|NM|2345-7").replace("|95|", "|high|"), "AE", "102", "not a number"),
])
def test_malformed_or_unknown_messages_are_refused_with_a_reason_and_nothing_is_stored(
        app: Any, fake: FakeLis, mangle: Any, ack: str, code: str, words: str):
    setup = set_up_lab(app, "lab_hl7")
    order = order_from_visit(app, setup)
    app.outbox.run()
    raw = fake.oru(order["placer_order_number"], [{"code": "2345-7", "value": "95", "units": "mg/dL"},
                                                  {"code": "718-7", "value": "14.1"}])
    answer = fake.push(mangle(raw))
    assert (answer.code, answer.error_code) == (ack, code), answer.raw
    assert words in answer.text, answer.text
    assert "ERR|" in answer.raw
    app.outbox.run()
    with session(app) as s:
        assert s.execute(select(func.count()).select_from(store.inbox)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(LabResult)).scalar_one() == 0
    assert app.client.get(f"{base(app)}/orders/{order['id']}").json()["status"] == "acknowledged"


def test_an_unreachable_lab_keeps_the_order_in_the_outbox_until_it_is_back(app: Any, fake: FakeLis,
                                                                            praxis_clock: Any):
    setup = set_up_lab(app, "lab_hl7")
    fake.stop()
    order = order_from_visit(app, setup)
    app.outbox.run()
    (item,) = [i for i in outbox_items(app, "lab.order")]
    assert item.status == "pending" and item.attempts == 1 and "unreachable" in (item.last_error or "")
    assert fake.effects == []
    fake.start()
    praxis_clock.advance(timedelta(minutes=5))
    app.outbox.run()
    (item,) = [i for i in outbox_items(app, "lab.order")]
    assert item.status == "done" and fake.effects == [order["placer_order_number"]]
    assert app.client.get(f"{base(app)}/orders/{order['id']}").json()["status"] == "acknowledged"


def test_a_refused_order_is_rejected_with_the_labs_reason(app: Any, fake: FakeLis):
    setup = set_up_lab(app, "lab_hl7")
    client = app.client
    added = client.post(f"{base(app)}/providers/{setup.provider_id}/tests/import",
                        json={"rows": [{"code": "HOUSE-1", "name": "House special", "services": ["LAB-HOUSE"]}]})
    assert added.status_code == 200
    answer = client.post(f"{base(app)}/orders", json={"provider_id": setup.provider_id,
                                                      "patient_id": str(setup.patient_id), "services": ["LAB-HOUSE"]})
    assert answer.status_code == 201, answer.text
    app.outbox.run()
    got = client.get(f"{base(app)}/orders/{answer.json()['id']}").json()
    assert got["status"] == "rejected" and "AE-103" in got["status_reason"] and "HOUSE-1" in got["status_reason"]
    assert fake.effects == []


def test_cancelling_tells_the_lab_only_when_it_has_the_order(app: Any, fake: FakeLis):
    setup = set_up_lab(app, "lab_hl7")
    queued = order_from_visit(app, setup)
    cancelled = app.client.post(f"{base(app)}/orders/{queued['id']}/cancel", json={"reason": "patient left"}).json()
    assert cancelled["status"] == "cancelled"
    app.outbox.run()
    assert fake.effects == [] and not [r for r in fake.received if "ORM^O01" in r]  # withdrawn before delivery

    sent = order_from_visit(app, setup)
    app.outbox.run()
    assert app.client.post(f"{base(app)}/orders/{sent['id']}/cancel", json={}).status_code == 200
    app.outbox.run()
    assert fake.orders[sent["placer_order_number"]]["cancelled"] is True
    again = app.client.post(f"{base(app)}/orders/{sent['id']}/cancel", json={})
    assert again.status_code == 409 and again.json()["error"] == "conflict"
