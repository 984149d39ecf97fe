"""Records without signing: the canonical form, drafts, finalising, the list with its filters, permissions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.models.records import ClinicalRecord
from core.records import canonical


def _record(**overrides) -> ClinicalRecord:
    values = dict(id=uuid.UUID(int=1), chain_id=uuid.UUID(int=1), version=1, clinic_id=3,
                  patient_id=uuid.UUID(int=2), author_id=7, kind="visit_note", title="Filling",
                  content={"tooth": "36", "b": [1, 2.5, None, True]}, text="Tooth 36", status="final")
    values.update(overrides)
    return ClinicalRecord(**values)


def test_the_canonical_form_is_frozen():
    expected = ('{"amendment_reason":null,"appointment_id":null,"author_id":7,'
                '"chain_id":"00000000-0000-0000-0000-000000000001","clinic_id":3,'
                '"content":{"b":[1,2.5,null,true],"tooth":"36"},"format":"praxis-record/1",'
                '"id":"00000000-0000-0000-0000-000000000001","kind":"visit_note",'
                '"patient_id":"00000000-0000-0000-0000-000000000002","previous_sha256":null,'
                '"previous_version_id":null,"text":"Tooth 36","title":"Filling","version":1}')
    assert canonical.canonical_bytes(_record()) == expected.encode()
    # Status and timestamps are not content: they do not change the bytes.
    assert canonical.canonical_bytes(_record(status="locked", created_at=datetime(2020, 1, 1, tzinfo=UTC))) \
        == expected.encode()


def test_the_canonical_form_normalises_unicode_keys_order_and_line_breaks():
    decomposed = _record(text="Kezele\u0301s\r\n\uce58\ub8cc", content={"z": 1, "e\u0301": "e\u0301"})
    composed = _record(text="Kezel\u00e9s\n\uce58\ub8cc", content={"\u00e9": "\u00e9", "z": 1})
    assert decomposed.text != composed.text
    assert canonical.canonical_bytes(decomposed) == canonical.canonical_bytes(composed)
    assert "치료".encode() in canonical.canonical_bytes(composed)  # written as UTF-8, not \\u escapes
    with pytest.raises(canonical.NotCanonical, match=r"content\.x: NaN"):
        canonical.normalise_content({"x": float("nan")})
    with pytest.raises(canonical.NotCanonical, match="same once normalised"):
        canonical.normalise_content({"\u00e9": 1, "e\u0301": 2})


def test_drafts_are_edited_by_their_author_then_finalised(make_world):
    world = make_world(certificate=False)
    record = world.write(finalise=False, text="first")
    assert record["status"] == "draft" and record["revision"] == 1 and record["author_name"] == "Dr. Kim Minji"
    url = f"{world.base}/{record['id']}"
    changed = world.client("doctor").patch(url, json={"text": "second\r\nline", "expected_revision": 1})
    assert changed.status_code == 200 and changed.json()["text"] == "second\nline"
    assert changed.json()["revision"] == 2
    stale = world.client("doctor").patch(url, json={"text": "third", "expected_revision": 1})
    assert stale.status_code == 409 and stale.json()["error"] == "stale_revision"
    other = world.client("supervisor").patch(url, json={"text": "not mine"})
    assert other.status_code == 403 and other.json()["error"] == "not_author"
    assert world.client("reader").patch(url, json={"text": "x"}).status_code == 403
    assert world.client("outsider").get(url).status_code == 404
    nan = world.client("doctor").patch(url, json={"content": {"depth": {"a": {"b": 1}}}, "kind": "Bad Kind"})
    assert nan.status_code == 422 and nan.json()["fields"][0]["field"] == "kind"

    final = world.client("doctor").post(f"{url}/finalise")
    assert final.status_code == 200 and final.json()["status"] == "final" and final.json()["finalised_at"]
    assert world.client("doctor").patch(url, json={"text": "x"}).json()["error"] == "record_not_draft"
    reopened = world.client("doctor").post(f"{url}/reopen")
    assert reopened.json()["status"] == "draft"
    assert world.client("doctor").delete(url).status_code == 204
    assert world.client("doctor").get(url).status_code == 404


def test_input_is_checked_naming_the_field(make_world):
    world = make_world(certificate=False)
    client = world.client("doctor")
    unknown = client.post(world.base, json={"patient_id": str(uuid.uuid4()), "text": "x"})
    assert unknown.status_code == 422 and unknown.json()["fields"][0]["field"] == "patient_id"
    other = make_world(certificate=False)
    foreign = client.post(world.base, json={"patient_id": other.patient, "text": "x"})
    assert foreign.status_code == 422 and foreign.json()["fields"][0]["code"] == "not_found"
    appointment = client.post(world.base, json={"patient_id": world.patient, "appointment_id": 999, "text": "x"})
    assert appointment.status_code == 422 and appointment.json()["fields"][0]["field"] == "appointment_id"
    empty = world.write(finalise=False, text="", content={})
    response = client.post(f"{world.base}/{empty['id']}/finalise")
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "text"
    extra = client.post(world.base, json={"patient_id": world.patient, "text": "x", "status": "locked"})
    assert extra.status_code == 422


def test_the_list_filters_by_date_doctor_and_patient(make_world, praxis_clock):
    praxis_clock.set(datetime(2026, 3, 10, 1, 0, tzinfo=UTC))  # 10:00 in Seoul
    world = make_world(certificate=False)
    a = world.write(text="day one")
    praxis_clock.advance(timedelta(days=1))
    b = world.write("supervisor", text="day two")
    praxis_clock.advance(timedelta(minutes=5))
    c = world.write(finalise=False, text="draft")
    client = world.client("reader")

    def ids(**params):
        return [r["id"] for r in client.get(world.base, params=params).json()["items"]]

    assert ids() == [c["id"], b["id"], a["id"]]  # newest first
    assert ids(date_from="2026-03-10", date_to="2026-03-10") == [a["id"]]
    assert ids(date_from="2026-03-11") == [c["id"], b["id"]]
    assert ids(author_id=world.users["supervisor"]) == [b["id"]]
    assert ids(waiting=True) == [b["id"], a["id"]]
    assert ids(status="draft") == [c["id"]]
    assert ids(patient_id=str(uuid.uuid4())) == []
    assert ids(patient_id=world.patient) == [c["id"], b["id"], a["id"]]
    row = client.get(world.base, params={"waiting": True}).json()["items"][0]
    assert row["patient_name"] == "김 민수" and row["author_name"] == "Dr. Park Supervisor"
    assert row["waiting_for"] == "sign" and row["signed_at"] is None and row["locked"] is False
    assert client.get(world.base, params={"status": "bogus"}).status_code == 422
    assert world.client("outsider").get(world.base).status_code == 404


def test_reading_a_record_is_in_the_patient_access_log(make_world):
    from sqlmodel import Session, select

    from core.models.auth import AccessLog

    world = make_world(certificate=False)
    record = world.write()
    world.get(record["id"], "reader")
    with Session(world.praxis.engine) as session:
        logs = session.exec(select(AccessLog).where(AccessLog.user_id == world.users["reader"])).all()
    assert [(log.patient_id, log.action) for log in logs] == [(world.patient, "view")]
