"""EHR documents with break-glass, eProfile versions and ownership, e-referral states."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest


@pytest.fixture
def doctor(eeszt: Any) -> Any:
    assert eeszt.login_eid().status_code == 200
    eeszt.patient_id = eeszt.patient()
    return eeszt


def test_restricted_documents_are_hidden_and_break_glass_needs_permission_and_reason_and_is_audited(
        doctor: Any) -> None:
    from sqlmodel import Session, select

    from core.models.audit import AuditEntry
    from tests.auth_helpers import client_for, create_user

    fake, base, pid = doctor.fake, doctor.base, doctor.patient_id
    fake.add_document("111111110", title="Zárójelentés")
    fake.add_document("111111110", title="Pszichiátriai lelet", restricted=True)
    fake.add_document("123456788", title="Another patient's")
    listed = doctor.client.get(f"{base}/patients/{pid}/documents").json()
    assert [d["title"] for d in listed["documents"]] == ["Zárójelentés"]
    assert listed["hidden"] == 1 and listed["notice"] == "DÖR-protected, 1 documents hidden"

    praxis, clinic = doctor.app.praxis, doctor.app.clinic_id
    plain_user = client_for(praxis, create_user(praxis, [clinic], permissions=["eeszt.use"]))
    body = {"reason_code": "EMERGENCY", "reason": "unconscious patient, medication history needed"}
    assert plain_user.post(f"{base}/patients/{pid}/documents/break-glass", json=body).status_code == 403
    no_reason = doctor.client.post(f"{base}/patients/{pid}/documents/break-glass",
                                   json={"reason_code": "EMERGENCY", "reason": ""})
    assert no_reason.status_code == 422 and no_reason.json()["fields"][0]["field"] == "reason"
    bad_code = doctor.client.post(f"{base}/patients/{pid}/documents/break-glass",
                                  json={**body, "reason_code": "CURIOUS"})
    assert bad_code.status_code == 422 and bad_code.json()["eeszt_code"] == "reason_code_required"

    opened = doctor.client.post(f"{base}/patients/{pid}/documents/break-glass", json=body)
    assert opened.status_code == 200, opened.text
    assert sorted(d["title"] for d in opened.json()["documents"]) == ["Pszichiátriai lelet", "Zárójelentés"]
    assert fake.access_log[-1]["break_glass"] is True and fake.access_log[-1]["reason_code"] == "EMERGENCY"
    with Session(praxis.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "eeszt.break_glass")).one()
    assert entry.actor_id == doctor.app.user_id and entry.target == f"patient:{pid}"
    assert entry.data["reason"] == body["reason"] and len(entry.data["documents"]) == 2


def test_eprofile_update_makes_a_new_version_and_only_own_entries_can_be_deleted(doctor: Any) -> None:
    fake, base, pid = doctor.fake, doctor.base, doctor.patient_id
    foreign = fake.add_eprofile_entry("111111110", category="allergy", description="Penicillin", owner="999999")
    created = doctor.client.post(f"{base}/patients/{pid}/eprofile",
                                 json={"category": "implant", "description": "Implant 36", "code": "Z96.5"})
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["owner_institution"] == doctor.INSTITUTION and entry["version"] == 1
    listed = doctor.client.get(f"{base}/patients/{pid}/eprofile").json()["entries"]
    assert {e["id"] for e in listed} == {foreign.id, entry["id"]}

    changed = doctor.client.put(f"{base}/patients/{pid}/eprofile/{entry['id']}",
                                json={"description": "Implant 36 (Straumann)"})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert fake.eprofile[entry["id"]].history[0]["description"] == "Implant 36"

    refused = doctor.client.delete(f"{base}/patients/{pid}/eprofile/{foreign.id}")
    assert refused.status_code == 409
    assert refused.json()["eeszt_code"] == "not_owner" and "999999" in refused.json()["message"]
    assert fake.eprofile[foreign.id].status == "active"
    assert doctor.client.delete(f"{base}/patients/{pid}/eprofile/{entry['id']}").status_code == 200
    assert [e["id"] for e in doctor.client.get(f"{base}/patients/{pid}/eprofile").json()["entries"]] == [foreign.id]
    bad = doctor.client.post(f"{base}/patients/{pid}/eprofile", json={"category": "gossip", "description": "x"})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "category"


def test_referrals_are_found_reserved_used_and_refused_with_the_reason(doctor: Any) -> None:
    fake, base, pid = doctor.fake, doctor.base, doctor.patient_id
    good = fake.add_referral("111111110")
    expired = fake.add_referral("111111110", valid_until=doctor.clock.now.date() - timedelta(days=1))
    theirs = fake.add_referral("111111110")
    fake._referral_step(theirs, "reserve", "222222")
    used = fake.add_referral("111111110")
    fake._referral_step(used, "use", "222222")

    found = doctor.client.get(f"{base}/referrals", params={"patient_id": pid}).json()["referrals"]
    assert {r["id"] for r in found} == {good.id, expired.id, theirs.id, used.id}
    by_id = doctor.client.get(f"{base}/referrals", params={"referral_id": good.id}).json()["referrals"]
    assert [r["status"] for r in by_id] == ["issued"]
    assert doctor.client.get(f"{base}/referrals").status_code == 422

    def act(referral: Any, action: str) -> Any:
        return doctor.client.post(f"{base}/referrals/{referral.id}/{action}")

    assert act(good, "reserve").json()["status"] == "reserved"
    assert act(good, "release").json()["status"] == "issued"
    assert act(good, "reserve").json()["reserved_by"] == doctor.INSTITUTION
    assert act(good, "use").json()["status"] == "used"
    for referral, code in ((good, "already_used"), (used, "already_used"), (expired, "expired"),
                           (theirs, "reserved_by_other")):
        refused = act(referral, "use")
        assert refused.status_code == 409 and refused.json()["eeszt_code"] == code, (code, refused.text)
    assert "222222" in act(theirs, "reserve").json()["message"]
    unknown = doctor.client.post(f"{base}/referrals/BEU-999999/reserve")
    assert unknown.status_code == 404
