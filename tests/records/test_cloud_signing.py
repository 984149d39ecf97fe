"""Records signed through the cloud e-signature plugin (fake vendor): the intent check per batch, wrong codes,
locking, a batch of 50, the vendor down, the face check by QR code."""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.models.audit import AuditEntry
from core.models.records import RecordSignature, RecordSigningSession
from tests.records.conftest import CLOUD_DOCTOR

PROVIDER = "signing_cloud"


def _audit(world, action: str) -> list[AuditEntry]:
    with Session(world.praxis.engine) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)
                                 .order_by(col(AuditEntry.at))).all())


def _signatures(world) -> list[RecordSignature]:
    with Session(world.praxis.engine) as session:
        return list(session.exec(select(RecordSignature)).all())


def test_the_provider_list_shows_the_one_time_steps_until_done(make_world):
    world = make_world(certificate=False, cloud=True)
    (provider,) = world.client("doctor").get(f"{world.base}/signing/providers").json()
    assert provider["plugin"] == PROVIDER and provider["intent_methods"] == ["sms_code", "qr_face"]
    assert provider["enrollment"]["ready"] is False
    assert [(s["name"], s["done"]) for s in provider["enrollment"]["steps"]] == [("identity", False), ("seal", False)]
    record = world.write()
    refused = world.begin("doctor", [record["id"]], provider=PROVIDER)
    assert refused.status_code == 409 and refused.json()["error"] == "not_enrolled"
    bad = world.client("doctor").post(f"{world.base}/signing/providers/{PROVIDER}/enrollment/identity",
                                      json={"data": {**CLOUD_DOCTOR, "id_number": "110105194912310021"}})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "id_number"
    mismatch = world.client("doctor").post(f"{world.base}/signing/providers/{PROVIDER}/enrollment/identity",
                                           json={"data": {**CLOUD_DOCTOR, "phone": "13900000000"}})
    assert mismatch.status_code == 424 and "1560201" in mismatch.json()["message"]
    world.enroll_cloud("doctor")
    (provider,) = world.client("doctor").get(f"{world.base}/signing/providers").json()
    assert provider["enrollment"]["ready"] is True and provider["enrollment"]["details"]["mobile"] == "138****5678"


def test_a_wrong_sms_code_is_refused_and_audited_then_the_right_one_signs(make_world, fake_vendor):
    world = make_world(certificate=False, cloud=True)
    world.enroll_cloud("doctor")
    record = world.write()
    begun = world.begin("doctor", [record["id"]], provider=PROVIDER)
    assert begun.status_code == 201, begun.text
    challenge = begun.json()
    assert challenge["kind"] == "sms_code" and challenge["status"] == "pending"
    assert challenge["sent_to"] == "138****5678" and challenge["attempts_left"] == 5
    code = fake_vendor.last_code(CLOUD_DOCTOR["phone"])
    wrong = "000000" if code != "000000" else "111111"

    response = world.complete("doctor", challenge["session_id"], wrong)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "intent_check_failed" and body["attempts_left"] == 4
    assert body["fields"] == [{"field": "response", "message": "wrong code", "code": "wrong_code"}]
    assert world.get(record["id"])["status"] == "final" and _signatures(world) == []
    (failed,) = _audit(world, "records.intent_failed")
    assert failed.actor_id == world.users["doctor"] and failed.data["attempts_left"] == 4
    assert code not in str(failed.data)

    done = world.complete("doctor", challenge["session_id"], code)
    assert done.status_code == 200, done.text
    (entry,) = done.json()["signed"]
    assert entry["status"] == "locked" and entry["signature"]["signer_name"] == CLOUD_DOCTOR["name"]
    assert entry["signature"]["details"]["intent_check"] == "sms_code"
    assert entry["signature"]["expires_at"]
    assert world.verify(record["id"])["valid"] is True
    assert len(_audit(world, "records.intent_confirmed")) == 1


def test_five_wrong_codes_lock_the_session(make_world, fake_vendor):
    world = make_world(certificate=False, cloud=True)
    world.enroll_cloud("doctor")
    record = world.write()
    session_id = world.begin("doctor", [record["id"]], provider=PROVIDER).json()["session_id"]
    code = fake_vendor.last_code()
    wrong = "000000" if code != "000000" else "111111"
    statuses = [world.complete("doctor", session_id, wrong).status_code for _ in range(5)]
    assert statuses == [422, 422, 422, 422, 423]
    after = world.complete("doctor", session_id, code)  # even the right code is too late now
    assert after.status_code == 423 and after.json()["error"] == "session_locked"
    assert world.get(record["id"])["status"] == "final" and _signatures(world) == []
    assert len(_audit(world, "records.intent_failed")) == 4
    assert len(_audit(world, "records.intent_locked")) == 1
    with Session(world.praxis.engine) as session:
        assert session.get(RecordSigningSession, __import__("uuid").UUID(session_id)).status == "locked"
    fresh = world.begin("doctor", [record["id"]], provider=PROVIDER).json()
    assert world.complete("doctor", fresh["session_id"], fake_vendor.last_code()).status_code == 200


def test_a_batch_of_fifty_records_is_signed_after_one_intent_check(make_world, fake_vendor):
    world = make_world(certificate=False, cloud=True)
    world.enroll_cloud("doctor")
    ids = [world.write(text=f"Recall visit {n}: no findings.")["id"] for n in range(50)]
    waiting = world.client("doctor").get(world.base, params={"waiting": True, "limit": 100,
                                                             "author_id": world.users["doctor"]}).json()
    assert waiting["total"] == 50 and all(r["waiting_for"] == "sign" for r in waiting["items"])

    challenge = world.begin("doctor", ids, provider=PROVIDER).json()
    assert challenge["document_count"] == 50
    assert len(fake_vendor.sms) == 1
    done = world.complete("doctor", challenge["session_id"], fake_vendor.last_code())
    assert done.status_code == 200, done.text
    assert [s["record_id"] for s in done.json()["signed"]] == ids
    assert len(fake_vendor.sms) == 1  # one SMS, one intent check for the whole batch
    listing = world.client("doctor").get(world.base, params={"limit": 100}).json()
    assert {(r["status"], r["locked"], r["signer_name"]) for r in listing["items"]} == {
        ("locked", True, CLOUD_DOCTOR["name"])}
    assert all(r["signed_at"] and r["expires_at"] for r in listing["items"])
    assert world.client("doctor").get(world.base, params={"waiting": True}).json()["total"] == 0
    assert len(_audit(world, "records.signed")) == 50
    assert world.verify(ids[17])["valid"] is True


def test_cloud_down_means_not_signed_with_a_clear_error(make_world, fake_vendor):
    world = make_world(certificate=False, cloud=True)
    world.enroll_cloud("doctor")
    records = [world.write()["id"] for _ in range(3)]
    challenge = world.begin("doctor", records, provider=PROVIDER).json()
    code = fake_vendor.last_code()
    fake_vendor.fail_next(1, status=503, path="/v3/sign/hash-sign")
    response = world.complete("doctor", challenge["session_id"], code)
    assert response.status_code == 503
    assert response.json()["error"] == "signing_unavailable" and "HTTP 503" in response.json()["message"]
    assert {world.get(r)["status"] for r in records} == {"final"} and _signatures(world) == []

    fake_vendor.stop()
    response = world.complete("doctor", challenge["session_id"])
    assert response.status_code == 503 and "cannot be reached" in response.json()["message"]
    assert {world.get(r)["status"] for r in records} == {"final"} and _signatures(world) == []
    assert len(_audit(world, "records.signing_failed")) == 2

    fake_vendor.start()  # back: the intent check passed before, so the same session signs now
    done = world.complete("doctor", challenge["session_id"])
    assert done.status_code == 200, done.text
    assert {world.get(r)["status"] for r in records} == {"locked"}
    begun_down = world.write()
    fake_vendor.stop()
    refused = world.begin("doctor", [begun_down["id"]], provider=PROVIDER)
    assert refused.status_code == 503
    fake_vendor.start()


def test_the_face_check_by_qr_code(make_world, fake_vendor):
    world = make_world(certificate=False, cloud=True)
    world.enroll_cloud("doctor")
    record = world.write()
    challenge = world.begin("doctor", [record["id"]], provider=PROVIDER, method="qr_face").json()
    assert challenge["kind"] == "qr_face" and challenge["qr_url"].startswith(fake_vendor.base_url)
    early = world.complete("doctor", challenge["session_id"])
    assert early.status_code == 409 and early.json()["error"] == "intent_pending"
    import httpx

    assert httpx.post(challenge["qr_url"]).status_code == 200  # the doctor's phone opens the QR code
    done = world.complete("doctor", challenge["session_id"])
    assert done.status_code == 200, done.text
    assert done.json()["signed"][0]["signature"]["details"]["intent_check"] == "qr_face"
    bad = world.begin("doctor", [world.write()["id"]], provider=PROVIDER, method="fingerprint")
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "method"


def test_someone_elses_session_is_not_found(make_world, fake_vendor):
    world = make_world(certificate=False, cloud=True)
    world.enroll_cloud("doctor")
    challenge = world.begin("doctor", [world.write()["id"]], provider=PROVIDER).json()
    response = world.complete("supervisor", challenge["session_id"], fake_vendor.last_code())
    assert response.status_code == 404
