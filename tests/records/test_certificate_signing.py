"""Records signed with a doctor's certificate and a time-stamp (signing_certificate plugin, fake TSA), end to end
through the REST API: sign -> verify, tampering, refused certificates, TSA down, amendments, trainees, PDF."""

from __future__ import annotations

import re
import zlib
from datetime import timedelta

from sqlalchemy import text
from sqlmodel import Session, col, select

from core.models.audit import AuditEntry
from core.models.records import RecordSignature
from core.records import pdf
from tests.records.plugins import listener


def _actions(world, prefix: str = "records.") -> list[str]:
    with Session(world.praxis.engine) as session:
        return [e.action for e in session.exec(select(AuditEntry).where(col(AuditEntry.action).startswith(prefix))
                                               .order_by(col(AuditEntry.seq))).all()]


def _events(world) -> list[str]:
    from core.models.outbox import OutboxItem

    with Session(world.praxis.engine) as session:
        return [i.payload.get("name") for i in session.exec(select(OutboxItem).order_by(col(OutboxItem.created_at)))
                .all() if isinstance(i.payload, dict)]


def test_sign_then_verify_passes_and_the_record_is_locked(make_world, doctor_cert):
    world = make_world()
    assert world.enroll_certificate("doctor", doctor_cert).status_code == 200
    record = world.write()
    assert record["status"] == "final"

    signed = world.sign("doctor", [record["id"]])
    (entry,) = signed["signed"]
    assert entry["status"] == "locked"
    sig = entry["signature"]
    assert sig["signer_name"] == "Dr. Kim Minji" and sig["provider"] == "signing_certificate"
    assert sig["timestamped_at"] and sig["expires_at"] and sig["certificate_serial"]

    shown = world.get(record["id"])
    assert shown["status"] == "locked" and shown["locked"] and shown["signed_at"]

    report = world.verify(record["id"])
    assert report["valid"] is True, report["summary"]
    names = [c["name"] for c in report["signatures"][0]["checks"]]
    assert names == ["format", "content digest", "format", "digest", "signature", "time-stamp",
                     "certificate validity", "certificate chain"]
    assert all(c["passed"] for c in report["signatures"][0]["checks"])
    actions = _actions(world)
    for expected in ("records.enrolled", "records.created", "records.finalised", "records.signing_started",
                     "records.signed", "records.verified"):
        assert expected in actions
    assert [e for e in _events(world) if e and e.startswith("record.")] == ["record.created", "record.signed"]
    assert listener  # the fixture plugin subscribed to events, so they were queued for it


def test_a_signed_record_cannot_be_edited_and_says_how_to_correct_it(make_world, doctor_cert):
    world = make_world()
    world.enroll_certificate("doctor", doctor_cert)
    record = world.write()
    world.sign("doctor", [record["id"]])
    response = world.client("doctor").patch(f"{world.base}/{record['id']}", json={"text": "changed"})
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "record_signed" and "amendment" in body["message"]
    assert world.client("doctor").delete(f"{world.base}/{record['id']}").status_code == 409


def test_one_changed_byte_behind_the_apps_back_fails_verification_and_says_why(make_world, doctor_cert):
    world = make_world()
    world.enroll_certificate("doctor", doctor_cert)
    record = world.write(text="Tooth 36: composite filling.")
    world.sign("doctor", [record["id"]])
    with world.praxis.engine.begin() as conn:  # a database admin edits the note: 36 -> 37
        conn.execute(text("UPDATE core_clinical_record SET text = :t WHERE id = :id"),
                     {"t": "Tooth 37: composite filling.", "id": record["id"].replace("-", "")
                      if world.praxis.engine.dialect.name == "sqlite" else record["id"]})
    report = world.verify(record["id"])
    assert report["valid"] is False
    failed = {c["name"]: c["message"] for c in report["signatures"][0]["checks"] if not c["passed"]}
    assert "content digest" in failed and "changed after signing" in failed["content digest"]
    assert "digest" in failed and "changed after it was signed" in failed["digest"]
    assert "NOT valid" in report["summary"]
    assert _actions(world)[-1] == "records.verified"


def test_expired_and_not_yet_valid_certificates_are_refused_at_upload(make_world, pki):
    world = make_world()
    expired = world.enroll_certificate("doctor", pki.expired())
    assert expired.status_code == 422
    (field,) = expired.json()["fields"]
    assert field["field"] == "pkcs12" and field["code"] == "certificate_expired"
    future = world.enroll_certificate("doctor", pki.not_yet_valid())
    assert future.status_code == 422 and future.json()["fields"][0]["code"] == "certificate_not_yet_valid"
    untrusted = world.enroll_certificate("doctor", type(pki)("Some Other CA").doctor("Dr. Stranger"))
    assert untrusted.status_code == 422 and untrusted.json()["fields"][0]["code"] == "untrusted"
    wrong = world.client("doctor").post(
        f"{world.base}/signing/providers/signing_certificate/enrollment/certificate",
        json={"data": {"pkcs12": pki.doctor().pkcs12_b64("right"), "password": "wrong"}})
    assert wrong.status_code == 422 and wrong.json()["fields"][0]["field"] == "password"
    assert _actions(world).count("records.enrollment_refused") == 4


def test_a_certificate_that_expired_after_upload_is_refused_at_signing(make_world, doctor_cert, praxis_clock):
    from datetime import UTC, datetime

    praxis_clock.set(datetime.now(UTC))
    world = make_world()
    world.enroll_certificate("doctor", doctor_cert)
    record = world.write()
    begun = world.begin("doctor", [record["id"]], provider="signing_certificate").json()
    praxis_clock.set(doctor_cert.certificate.not_valid_after_utc + timedelta(days=1))
    refused = world.complete("doctor", begun["session_id"])
    assert refused.status_code == 424 and refused.json()["vendor_code"] == "certificate_expired"
    assert "expired" in refused.json()["message"]
    again = world.begin("doctor", [record["id"]], provider="signing_certificate")
    assert again.status_code == 409 and again.json()["error"] == "not_enrolled"
    assert "expired" in again.json()["message"]
    assert world.get(record["id"])["status"] == "final"


def test_tsa_down_means_not_signed_with_a_clear_error_then_the_same_session_succeeds(make_world, doctor_cert,
                                                                                    fake_tsa):
    world = make_world()
    world.enroll_certificate("doctor", doctor_cert)
    record = world.write()
    begun = world.begin("doctor", [record["id"]], provider="signing_certificate").json()
    fake_tsa.stop()
    response = world.complete("doctor", begun["session_id"])
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "signing_unavailable" and "time-stamp authority" in body["message"]
    shown = world.get(record["id"])
    assert shown["status"] == "final" and shown["signatures"] == [] and not shown["locked"]
    with Session(world.praxis.engine) as session:
        assert session.exec(select(RecordSignature)).all() == []
    assert "records.signing_failed" in _actions(world)

    fake_tsa.start()
    fake_tsa.reject_next("time_not_available", "clock unsynchronised")
    refused = world.complete("doctor", begun["session_id"])
    assert refused.status_code == 424 and "time_not_available" in refused.json()["message"]
    assert world.get(record["id"])["status"] == "final"
    again = world.sign("doctor", [record["id"]])
    assert again["signed"][0]["status"] == "locked"


def test_an_amendment_is_signed_on_its_own_and_the_old_version_stays_verifiable(make_world, doctor_cert):
    world = make_world()
    world.enroll_certificate("doctor", doctor_cert)
    original = world.write(text="Tooth 36: composite filling.")
    world.sign("doctor", [original["id"]])
    response = world.client("doctor").post(f"{world.base}/{original['id']}/amend",
                                           json={"reason": "wrong tooth", "text": "Tooth 37: composite filling."})
    assert response.status_code == 201, response.text
    amendment = response.json()
    assert amendment["version"] == 2 and amendment["previous_version_id"] == original["id"]
    assert amendment["status"] == "draft" and amendment["chain_id"] == original["chain_id"]
    again = world.client("doctor").post(f"{world.base}/{original['id']}/amend", json={"reason": "twice"})
    assert again.status_code == 409 and again.json()["error"] == "already_amended"

    world.client("doctor").post(f"{world.base}/{amendment['id']}/finalise")
    world.sign("doctor", [amendment["id"]])
    old, new = world.verify(original["id"]), world.verify(amendment["id"])
    assert old["valid"] and new["valid"], (old["summary"], new["summary"])
    assert any(c["name"] == "amended version" and c["passed"] for c in new["checks"])
    versions = world.client("reader").get(f"{world.base}/{amendment['id']}/versions").json()
    assert [(v["version"], v["status"], v["text"]) for v in versions] == [
        (1, "locked", "Tooth 36: composite filling."), (2, "locked", "Tooth 37: composite filling.")]
    assert versions[0]["superseded_by_id"] == amendment["id"]
    assert "records.amended" in _actions(world)
    waiting = world.client("reader").get(world.base, params={"latest_only": True}).json()
    assert [r["id"] for r in waiting["items"]] == [amendment["id"]]


def test_a_trainees_record_needs_a_supervisors_countersignature(make_world, trainee_cert, supervisor_cert):
    world = make_world()
    world.enroll_certificate("trainee", trainee_cert)
    world.enroll_certificate("supervisor", supervisor_cert)
    record = world.write("trainee")
    signed = world.sign("trainee", [record["id"]])
    assert signed["signed"][0]["status"] == "signed"
    shown = world.get(record["id"], "reader")
    assert shown["requires_countersign"] and not shown["locked"]
    listing = world.client("reader").get(world.base, params={"waiting": True}).json()
    assert [(r["id"], r["waiting_for"]) for r in listing["items"]] == [(record["id"], "countersign")]
    report = world.verify(record["id"])
    assert report["valid"] is True  # what is there verifies; the record is just not complete yet

    own = world.begin("trainee", [record["id"]], provider="signing_certificate", countersign=True)
    assert own.status_code == 403  # trainees lack records.countersign
    self_counter = world.begin("doctor", [world.write("doctor")["id"]], provider="signing_certificate",
                               countersign=True)
    assert self_counter.status_code == 403 and self_counter.json()["error"] == "own_record"
    counter = world.sign("supervisor", [record["id"]], countersign=True)
    assert counter["signed"][0]["status"] == "locked"
    final = world.get(record["id"])
    assert [s["kind"] for s in final["signatures"]] == ["sign", "countersign"]
    assert [s["signer_name"] for s in final["signatures"]] == ["Dr. Lee Trainee", "Dr. Park Supervisor"]
    report = world.verify(record["id"])
    assert report["valid"] and len(report["signatures"]) == 2
    assert "records.countersigned" in _actions(world)


def test_only_the_author_signs_and_only_final_records(make_world, doctor_cert, supervisor_cert):
    world = make_world()
    world.enroll_certificate("doctor", doctor_cert)
    world.enroll_certificate("supervisor", supervisor_cert)
    draft = world.write(finalise=False)
    response = world.begin("doctor", [draft["id"]], provider="signing_certificate")
    assert response.status_code == 409 and response.json()["error"] == "record_not_final"
    final = world.write()
    response = world.begin("supervisor", [final["id"]], provider="signing_certificate")
    assert response.status_code == 403 and response.json()["error"] == "not_author"
    missing = world.begin("doctor", ["00000000-0000-0000-0000-000000000000"], provider="signing_certificate")
    assert missing.status_code == 404
    assert world.begin("reader", [final["id"]], provider="signing_certificate").status_code == 403


def test_pdf_export_prints_the_signature_details(make_world, doctor_cert, monkeypatch):
    world = make_world()
    world.enroll_certificate("doctor", doctor_cert)
    record = world.write(text="치료: 36번 치아 충전. 治疗：补牙。Kezelés: tömés.")
    world.sign("doctor", [record["id"]])
    response = world.client("reader").get(f"{world.base}/{record['id']}/pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    if pdf.NOTO_CJK.is_file():  # Debian fonts-noto-cjk: the Korean face is embedded for a Korean clinic
        assert b"NotoSansCJKKR" in response.content
    assert "records.exported" in _actions(world)

    # Without any Unicode font the export still works, in Latin-1, and says what is missing. The core font keeps
    # the text readable in the PDF's streams, so the signature details can be checked here.
    monkeypatch.setattr(pdf, "NOTO_CJK", pdf.Path("/nonexistent/noto.ttc"))
    monkeypatch.setattr(pdf, "DEJAVU", pdf.Path("/nonexistent/dejavu.ttf"))
    monkeypatch.delenv("PRAXIS_PDF_FONT", raising=False)
    fallback = world.client("reader").get(f"{world.base}/{record['id']}/pdf")
    assert fallback.status_code == 200
    shown = _pdf_text(fallback.content)
    sig = world.get(record["id"])["signatures"][0]
    for expected in ("Signature by Dr. Kim Minji", "Time-stamp", f"Certificate serial: {sig['certificate_serial']}",
                     sig["document_sha256"], "no Unicode font is installed", "valid: 1 signature(s) verified",
                     "Kezel", "Status: locked (locked)"):
        assert expected in shown, expected


def _pdf_text(data: bytes) -> str:
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(match.group(1)).decode("latin-1"))
        except zlib.error:
            continue
    return "".join(out).replace("\\(", "(").replace("\\)", ")")
