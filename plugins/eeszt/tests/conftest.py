"""Fixtures: a fake EESZT on loopback (reading the test clock) and a Hungarian clinic with EESZT set up the way
an administrator does it: settings, certificate uploaded and activated with the SMS code, the doctor's stamp
number. ``plugin_app`` and ``praxis_clock`` come from Praxis's pytest plugin."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from praxis_eeszt import plugin
from praxis_eeszt.fake_server import FakeEeszt

INSTITUTION, UNIT, STAMP = "506097", "001044299", "58012"
VALID_TAJ = "111 111 110"


@pytest.fixture
def fake(praxis_clock: Any) -> Iterator[FakeEeszt]:
    with FakeEeszt(clock=lambda: praxis_clock.now) as server:
        server.add_institution(INSTITUTION, UNIT)
        server.add_doctor(STAMP, password="titok-2026", pin="4321")
        yield server


@dataclass
class Eeszt:
    INSTITUTION = INSTITUTION
    UNIT = UNIT
    STAMP = STAMP

    app: Any
    fake: FakeEeszt
    clock: Any

    @property
    def client(self) -> Any:
        return self.app.client

    @property
    def base(self) -> str:
        return f"/api/clinics/{self.app.clinic_id}/x/eeszt"

    def patient(self, taj: str | None = VALID_TAJ, family_name: str = "Kovács") -> str:
        body: dict[str, Any] = {"family_name": family_name, "given_name": "Anna"}
        if taj is not None:
            body["identifiers"] = {"hu.taj": taj}
        answer = self.client.post(f"/api/clinics/{self.app.clinic_id}/patients", json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def login_eid(self) -> Any:
        self.fake.present_card(INSTITUTION, STAMP, "4321")
        return self.client.post(f"{self.base}/session/eid")

    def visit(self, patient_id: str) -> int:
        from core.scheduling.appointments import create

        start = self.clock.now + timedelta(minutes=5)
        out = create(self.app.praxis, self.app.clinic_id,
                     {"patient_id": uuid.UUID(patient_id), "doctor_id": self.app.user_id, "start_at": start,
                      "end_at": start + timedelta(minutes=30)}, self.caller(), overbook=True)
        return int(out["id"])

    def caller(self) -> Any:
        from core.audit import Actor
        from core.scheduling.appointments import Caller

        return Caller(Actor(self.app.user_id, "Dr. Test"), can_overbook=True)

    def status(self, appointment_id: int, status: str) -> dict[str, Any]:
        from core.scheduling.appointments import set_status

        return set_status(self.app.praxis, self.app.clinic_id, appointment_id, self.caller(), status=status)

    def record(self, patient_id: str, appointment_id: int, text: str, status: str = "final") -> None:
        from core.db import transaction
        from core.models.records import ClinicalRecord

        record_id = uuid.uuid4()
        with transaction(self.app.praxis.engine) as session:
            session.add(ClinicalRecord(id=record_id, chain_id=record_id, clinic_id=self.app.clinic_id,
                                       patient_id=uuid.UUID(patient_id), author_id=self.app.user_id,
                                       appointment_id=appointment_id, kind="visit_note", title="Status",
                                       text=text, status=status))


def setup_eeszt(plugin_app: Any, fake: FakeEeszt, clock: Any, *, pkcs12: bool = True) -> Eeszt:
    app = plugin_app(plugin, also=["hungary"], settings={
        "institution_id": INSTITUTION, "unit_code": UNIT, "service_url": fake.base_url})
    issued = fake.issue_certificate(INSTITUTION)
    if pkcs12:
        files = {"file": ("eeszt.p12", issued.pkcs12, "application/x-pkcs12")}
        data = {"password": issued.pkcs12_password, "sms_code": issued.sms_code}
    else:
        files = {"file": ("eeszt.pem", issued.pem, "application/x-pem-file")}
        data = {"sms_code": issued.sms_code}
    env = Eeszt(app, fake, clock)
    answer = app.client.post(f"{env.base}/certificate", files=files, data=data)
    assert answer.status_code == 200, answer.text
    assert app.client.put(f"{env.base}/doctors/{app.user_id}", json={"stamp_number": STAMP}).status_code == 200
    return env


@pytest.fixture
def make_eeszt(plugin_app: Any, fake: FakeEeszt, praxis_clock: Any) -> Any:
    """``make_eeszt(pkcs12=True)``: the clinic set up (test modules cannot import this conftest)."""
    return lambda **options: setup_eeszt(plugin_app, fake, praxis_clock, **options)


@pytest.fixture
def eeszt(make_eeszt: Any) -> Eeszt:
    return make_eeszt()
