"""Outbox administration: the API (list, summary, item, retry, resolve), audit entries and purge."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from core.db import transaction
from core.models.audit import AuditEntry
from core.models.outbox import JobRun, OutboxItem
from core.outbox import admin
from core.outbox.worker import Worker
from tests.auth_helpers import anonymous_client, client_for, create_user
from tests.conftest import add_clinic
from tests.outbox.conftest import outbox_plugin
from tests.outbox.helpers import ADMIN, item, queue


def setup(make_praxis):
    praxis = make_praxis([outbox_plugin("courier"), outbox_plugin("listener")])
    clinic, other = add_clinic(praxis, "Budapest"), add_clinic(praxis, "Debrecen")
    for c in (clinic, other):
        praxis.plugins.enable(c, "courier", ADMIN)
    return praxis, clinic, other


def test_list_filters_and_pages_with_permissions(make_praxis, frozen):
    praxis, clinic, other = setup(make_praxis)
    ids = {mode: queue(praxis, clinic, mode, phone="+3612345678") for mode in ("ok", "permanent", "unknown")}
    queue(praxis, other, "ok")
    Worker(praxis, name="w").run_once()
    admin_client = client_for(praxis, create_user(praxis, [clinic], role="admin"))
    page = admin_client.get(f"/api/clinics/{clinic}/outbox").json()
    assert page["total"] == 3 and {i["id"] for i in page["items"]} == {str(i) for i in ids.values()}
    assert all("payload" not in i for i in page["items"])  # payloads (patient data) only per item
    dead = admin_client.get(f"/api/clinics/{clinic}/outbox", params={"status": "dead", "plugin": "courier"}).json()
    assert [i["id"] for i in dead["items"]] == [str(ids["permanent"])]
    assert dead["items"][0]["last_error"] == "PermanentError [E164]: invalid phone number"
    first = admin_client.get(f"/api/clinics/{clinic}/outbox", params={"limit": 2}).json()
    rest = admin_client.get(f"/api/clinics/{clinic}/outbox", params={"limit": 2, "offset": 2}).json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["total"] == 3
    bad = admin_client.get(f"/api/clinics/{clinic}/outbox", params={"status": "lost", "limit": 0})
    assert bad.status_code == 422 and {f["field"] for f in bad.json()["fields"]} == {"status", "limit"}
    one = admin_client.get(f"/api/clinics/{clinic}/outbox/{ids['ok']}").json()
    assert one["payload"] == {"mode": "ok", "phone": "+3612345678"} and one["status"] == "done"
    assert admin_client.get(f"/api/clinics/{other}/outbox/{ids['ok']}").status_code == 404  # not a member
    other_admin = client_for(praxis, create_user(praxis, [other], role="admin"))
    missing = other_admin.get(f"/api/clinics/{other}/outbox/{ids['ok']}")  # exists, but in another clinic
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert anonymous_client(praxis).get(f"/api/clinics/{clinic}/outbox").status_code == 401
    nobody = client_for(praxis, create_user(praxis, [clinic], permissions=[]))
    assert nobody.get(f"/api/clinics/{clinic}/outbox").status_code == 403


def test_summary_counts_per_plugin_and_status(make_praxis, frozen):
    praxis, clinic, other = setup(make_praxis)
    for mode in ("ok", "ok", "permanent", "unknown"):
        queue(praxis, clinic, mode)
    Worker(praxis, name="w").run_once()
    waiting = queue(praxis, clinic, "ok", available_at=frozen.at + timedelta(hours=1))
    queue(praxis, other, "ok")
    client = client_for(praxis, create_user(praxis, [clinic], role="admin"))
    summary = client.get(f"/api/clinics/{clinic}/outbox/summary").json()
    assert summary["totals"] == {"pending": 1, "done": 2, "dead": 1, "unknown": 1}  # not the other clinic's
    courier = summary["plugins"]["courier"]
    assert (courier["pending"], courier["done"], courier["dead"], courier["unknown"]) == (1, 2, 1, 1)
    assert courier["oldest_pending_at"] is not None
    assert item(praxis, waiting).status == "pending"


def test_retry_dead_item_is_audited_and_delivered_again(make_praxis, frozen):
    praxis, clinic, _ = setup(make_praxis)
    dead = queue(praxis, clinic, "permanent")
    pending = queue(praxis, clinic, "ok", available_at=frozen.at + timedelta(hours=1))
    Worker(praxis, name="w").run_once()
    viewer = client_for(praxis, create_user(praxis, [clinic], permissions=["outbox.view"]))
    assert viewer.post(f"/api/clinics/{clinic}/outbox/{dead}/retry").status_code == 403
    manager_id = create_user(praxis, [clinic], permissions=["outbox.view", "outbox.manage"], name="Olga Admin")
    manager = client_for(praxis, manager_id)
    answer = manager.post(f"/api/clinics/{clinic}/outbox/{dead}/retry")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["attempts"]) == ("pending", 0)
    refused = manager.post(f"/api/clinics/{clinic}/outbox/{pending}/retry")
    assert refused.status_code == 409 and refused.json()["error"] == "not_retryable"
    assert manager.post(f"/api/clinics/{clinic}/outbox/not-a-uuid/retry").status_code == 422
    with Session(praxis.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "outbox.retried")).one()
    assert entry.target == f"outbox:{dead}" and entry.actor_id == manager_id and entry.clinic_id == clinic
    assert entry.data["from_status"] == "dead" and "E164" in entry.data["last_error"]
    Worker(praxis, name="w").run_once()
    assert item(praxis, dead).attempts == 1 and item(praxis, dead).status == "dead"  # the vendor still refuses


def test_resolve_unknown_outcome_by_a_person(make_praxis, frozen):
    praxis, clinic, _ = setup(make_praxis)
    sent, not_sent, done = (queue(praxis, clinic, m) for m in ("unknown", "unknown", "ok"))
    Worker(praxis, name="w").run_once()
    client = client_for(praxis, create_user(praxis, [clinic], role="admin"))
    url = f"/api/clinics/{clinic}/outbox"
    yes = client.post(f"{url}/{sent}/resolve", json={"outcome": "done", "note": "vendor portal shows it sent"})
    assert yes.status_code == 200 and yes.json()["status"] == "done"
    assert yes.json()["result"]["resolution"]["note"] == "vendor portal shows it sent"
    no = client.post(f"{url}/{not_sent}/resolve", json={"outcome": "dead"})
    assert no.json()["status"] == "dead"
    again = client.post(f"{url}/{done}/resolve", json={"outcome": "dead"})
    assert again.status_code == 409 and again.json()["error"] == "not_unknown"
    invalid = client.post(f"{url}/{sent}/resolve", json={"outcome": "maybe"})
    assert invalid.status_code == 422 and invalid.json()["fields"][0]["field"] == "outcome"
    with Session(praxis.engine) as session:
        actions = [(e.action, e.data["outcome"]) for e in session.exec(
            select(AuditEntry).where(AuditEntry.action == "outbox.resolved").order_by(AuditEntry.seq))]
    assert actions == [("outbox.resolved", "done"), ("outbox.resolved", "dead")]
    Worker(praxis, name="w").run_once()
    assert item(praxis, not_sent).attempts == 1  # a person said no: never sent again


def test_purge_removes_old_done_items_and_superseded_job_runs_only(make_praxis, frozen):
    praxis, clinic, _ = setup(make_praxis)
    old = {mode: queue(praxis, clinic, mode) for mode in ("ok", "permanent", "unknown")}
    Worker(praxis, name="w").run_once()
    with transaction(praxis.engine) as session:
        for slot_hour in (1, 2):
            session.add(JobRun(job="courier.sync", clinic_id=clinic, slot=frozen.at.replace(hour=slot_hour),
                               claimed_by="w", started_at=frozen.at))
    frozen.advance(days=6)
    recent = queue(praxis, clinic, "ok")
    waiting = queue(praxis, clinic, "ok", available_at=frozen.at + timedelta(days=30))
    Worker(praxis, name="w").run_once()  # its own purge finds nothing old enough yet
    frozen.advance(days=2)
    assert admin.purge(praxis.engine, keep_done=timedelta(days=7)) == (1, 1)
    with Session(praxis.engine) as session:
        left = {i.id for i in session.exec(select(OutboxItem))}
        slots = [r.slot.hour for r in session.exec(select(JobRun).where(JobRun.job == "courier.sync"))]
    assert left == {old["permanent"], old["unknown"], recent, waiting}
    assert slots == [2]  # the newest run of a job stays, or its slot would run again


def test_the_worker_purges_as_a_maintenance_step(make_praxis, frozen):
    praxis, clinic, _ = setup(make_praxis)
    first = queue(praxis, clinic, "ok")
    Worker(praxis, name="w").run_once()
    frozen.advance(days=2)
    worker = Worker(praxis, name="w", keep_done=timedelta(days=1))
    worker.run_once()
    with Session(praxis.engine) as session:
        assert session.get(OutboxItem, first) is None


def test_the_app_runs_an_embedded_worker_when_asked(make_praxis):
    import time

    from fastapi.testclient import TestClient

    from core.api.app import create_app

    praxis, clinic, _ = setup(make_praxis)
    item_id = queue(praxis, clinic, "ok")
    with TestClient(create_app(praxis, start_worker=True)):
        deadline = time.monotonic() + 10
        while item(praxis, item_id).status != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert item(praxis, item_id).status == "done"
    assert not any(t.name == "outbox-embedded" and t.is_alive() for t in __import__("threading").enumerate())
