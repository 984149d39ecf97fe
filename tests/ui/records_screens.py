"""A walk over every records screen (list, filters with errors, a record, its verification, the forms, the
signing challenge with a wrong code, the patient card's section) for the every-template test."""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint
from typing import Any

from core.audit import Actor
from core.records.schemas import RecordCreate
from core.records.service import RecordService
from core.records.signing import Signer, SigningService
from tests.ui.helpers import csrf_of
from tests.ui.screens import HTMX, set_up_book

SIGNING = EntryPoint(name="signing_fixture", value="tests.ui.signing_plugin", group="praxis.plugins")


def visit_records_screens(client: Any, praxis: Any, clinic: int, user_id: int, name: str) -> list[Any]:
    b = set_up_book(praxis, clinic)
    if not praxis.runtime.is_enabled(clinic, "signing_fixture"):
        praxis.plugins.enable(clinic, "signing_fixture", Actor(None, "test"))
    actor = Actor(user_id, name)
    svc = RecordService(praxis)
    draft = svc.create(clinic, RecordCreate(patient_id=b.patient, title="Filling 36", text="36"), actor)
    final = svc.finalise(clinic, svc.create(clinic, RecordCreate(patient_id=b.patient, title="Crown", text="11"),
                                            actor).id, actor)
    signed = svc.finalise(clinic, svc.create(clinic, RecordCreate(patient_id=b.patient, title="Scaling",
                                                                  text="all"), actor).id, actor)
    signer = Signer(actor, frozenset({"records.edit", "records.sign"}))
    session = SigningService(praxis).begin(clinic, signer, [signed.id], "sign", "signing_fixture", None)
    SigningService(praxis).complete(clinic, signer, session.session_id, None)
    base = f"/clinics/{clinic}/records"
    pages = [client.get(base), client.get(f"{base}?show=all&date_from=x&patient={b.patient}"),
             client.get(f"{base}/{signed.id}"), client.get(f"{base}/{draft.id}/edit"),
             client.get(f"{base}/{final.id}/edit"), client.get(f"{base}/{signed.id}/amend"),
             client.get(f"{base}/new/{b.patient}"), client.get(f"{base}/patient/{b.patient}", headers=HTMX)]
    token = csrf_of(pages[0].text)
    pages.append(client.post(f"{base}/{signed.id}/verify", data={"csrf_token": token}))
    pages.append(client.post(f"{base}/{signed.id}/verify", data={"csrf_token": token}, headers=HTMX))
    pages.append(client.post(f"{base}/new/{b.patient}", data={"csrf_token": token, "title": "x" * 300,
                                                             "content": "[", "kind": "visit_note"}))
    challenge = client.post(f"{base}/sign", data={"csrf_token": token, "record_ids": [str(final.id)],
                                                  "method": "sms_code", "kind": "sign", "back": base})
    pages.append(challenge)
    found = re.search(r'/records/signing/([0-9a-f-]+)"', challenge.text)
    assert found, challenge.text[:500]
    pages.append(client.post(f"{base}/signing/{found.group(1)}", data={
        "csrf_token": token, "record_ids": [str(final.id)], "kind": "sign", "challenge_kind": "sms_code",
        "response": "1", "back": base}))
    qr = client.post(f"{base}/sign", data={"csrf_token": token, "record_ids": [str(final.id)], "method": "qr_face",
                                           "kind": "sign", "back": base})
    pages.append(qr)
    return pages
