"""Visits are reported through the outbox: event opened on arrival, closed on done, outpatient report sent."""

from __future__ import annotations

from typing import Any


def test_a_visit_from_arrival_to_done_opens_and_closes_an_event_and_sends_the_report(eeszt: Any) -> None:
    patient = eeszt.patient()
    visit = eeszt.visit(patient)
    eeszt.status(visit, "arrived")
    eeszt.app.outbox.run()
    events = list(eeszt.fake.events.values())
    assert len(events) == 1 and events[0].status == "open" and events[0].taj == "111111110"
    assert events[0].doctor == "O58012" and events[0].unit == "001044299"
    eeszt.status(visit, "in_progress")  # still the same event
    eeszt.record(patient, visit, "Caries profunda 36; tömés.")
    eeszt.status(visit, "done")
    eeszt.app.outbox.run()
    assert len(eeszt.fake.events) == 1 and events[0].status == "closed"
    documents = [d for d in eeszt.fake.documents.values() if d.event_id == events[0].id]
    assert len(documents) == 1
    assert documents[0].type == "outpatient_report" and "Caries profunda 36" in documents[0].text
    shown = eeszt.client.get(f"{eeszt.base}/visits/{visit}").json()
    assert shown["event"]["id"] == events[0].id and shown["event"]["status"] == "closed"
    assert shown["document"]["id"] == documents[0].id
    assert [(s["step"], s["status"]) for s in shown["sync"]] == [
        ("open_event", "done"), ("close_event", "done"), ("send_report", "done")]
