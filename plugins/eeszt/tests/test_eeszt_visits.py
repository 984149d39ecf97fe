"""Visits are reported through the outbox: event opened on arrival, closed on done, outpatient report sent."""

from __future__ import annotations

from datetime import timedelta
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


def test_eeszt_down_the_clinic_keeps_working_the_sync_is_retried_and_the_admin_sees_the_backlog(eeszt: Any) -> None:
    eeszt.fake.stop()
    patient = eeszt.patient()  # writes succeed while EESZT is down
    visit = eeszt.visit(patient)
    eeszt.status(visit, "arrived")
    eeszt.record(patient, visit, "Fogkő eltávolítás.")
    eeszt.status(visit, "done")
    eeszt.app.outbox.run()
    assert eeszt.fake.events == {}

    items = eeszt.app.outbox.items(status="pending")
    assert {i.topic for i in items} == {"eeszt.event.open", "eeszt.event.close"}
    assert all(i.attempts == 1 and "cannot be reached" in (i.last_error or "") for i in items)
    clinic = eeszt.app.clinic_id
    pending = eeszt.client.get(f"/api/clinics/{clinic}/outbox", params={"plugin": "eeszt", "status": "pending"})
    assert pending.status_code == 200 and pending.json()["total"] == 2
    backlog = eeszt.client.get(f"{eeszt.base}/sync").json()
    assert sorted(b["step"] for b in backlog) == ["close_event", "open_event"]
    assert all(b["status"] == "retrying" and "cannot be reached" in b["last_error"] for b in backlog)
    assert eeszt.client.get(f"{eeszt.base}/status").json()["backlog"] == 2

    eeszt.fake.start()
    eeszt.fake.maintenance = True  # up but in maintenance: still retried
    eeszt.clock.advance(timedelta(hours=1))
    eeszt.app.outbox.run()
    assert eeszt.fake.events == {}
    assert all(i.attempts == 2 for i in eeszt.app.outbox.items(status="pending"))

    eeszt.fake.maintenance = False
    eeszt.clock.advance(timedelta(hours=2))
    eeszt.app.outbox.run()
    events = list(eeszt.fake.events.values())
    assert len(events) == 1 and events[0].status == "closed"
    assert len([d for d in eeszt.fake.documents.values() if d.event_id == events[0].id]) == 1
    assert eeszt.app.outbox.items(status="pending") == []
    assert eeszt.client.get(f"{eeszt.base}/sync").json() == []


def test_the_report_waits_for_a_finalised_record_and_problems_are_shown_on_the_visit(eeszt: Any) -> None:
    patient = eeszt.patient()
    visit = eeszt.visit(patient)
    eeszt.record(patient, visit, "Félkész jegyzet", status="draft")
    eeszt.status(visit, "done")  # straight to done: the event is opened, then closed
    eeszt.app.outbox.run()
    assert [e.status for e in eeszt.fake.events.values()] == ["closed"]
    assert eeszt.fake.documents == {}
    shown = eeszt.client.get(f"{eeszt.base}/visits/{visit}").json()
    report = next(s for s in shown["sync"] if s["step"] == "send_report")
    assert report["status"] == "retrying" and "finalised" in report["last_error"]

    eeszt.record(patient, visit, "Kész ambuláns lap")
    eeszt.clock.advance(timedelta(minutes=16))
    eeszt.app.outbox.run()
    assert [d.text for d in eeszt.fake.documents.values()] == ["Status\nKész ambuláns lap"]


def test_a_refused_report_is_failed_for_an_admin_to_see(eeszt: Any) -> None:
    patient = eeszt.patient()
    visit = eeszt.visit(patient)
    eeszt.app.client.put(f"{eeszt.base}/doctors/{eeszt.app.user_id}", json={"stamp_number": "11111"})
    eeszt.status(visit, "arrived")
    eeszt.app.outbox.run()
    dead = eeszt.app.outbox.items(status="dead")
    assert [i.topic for i in dead] == ["eeszt.event.open"]
    shown = eeszt.client.get(f"{eeszt.base}/sync", params={"status": "failed"}).json()
    assert shown[0]["step"] == "open_event" and "unknown_doctor" in shown[0]["last_error"]
