"""Fixtures for the records tests: a clinic with both signing plugins installed, a test PKI with the fake TSA,
the fake cloud vendor, staff (doctor, trainee, supervisor, a reader without records.edit) and a patient."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from praxis_signing_certificate.fake_tsa import FakeTSA
from praxis_signing_certificate.testing import Issued, TestPKI
from praxis_signing_cloud.fake_vendor import FakeCloudVendor

from core.app_context import Praxis
from core.audit import Actor
from core.patients.schemas import PatientCreate
from core.patients.service import PatientService
from tests.auth_helpers import client_for, create_user
from tests.conftest import add_clinic

ADMIN = Actor(None, "test admin")
PASSWORD = "Ki-CA 2026!"
SECRET = "records-tests-key-encryption-secret-0123456789"
CLOUD_DOCTOR = {"name": "郑程", "id_type": "CRED_PSN_CH_IDCARD", "id_number": "11010519491231002X",
                "phone": "13812345678"}
SEAL_PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
PLUGINS = [
    EntryPoint(name="signing_certificate", value="praxis_signing_certificate.plugin", group="praxis.plugins"),
    EntryPoint(name="signing_cloud", value="praxis_signing_cloud.plugin", group="praxis.plugins"),
    EntryPoint(name="records_listener", value="tests.records.plugins.listener", group="praxis.plugins"),
]


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    return TestPKI()


@pytest.fixture(scope="session")
def doctor_cert(pki: TestPKI) -> Issued:
    return pki.doctor("Dr. Kim Minji")


@pytest.fixture(scope="session")
def supervisor_cert(pki: TestPKI) -> Issued:
    return pki.doctor("Dr. Park Supervisor")


@pytest.fixture(scope="session")
def trainee_cert(pki: TestPKI) -> Issued:
    return pki.doctor("Dr. Lee Trainee")


@pytest.fixture(scope="module")
def fake_tsa(pki: TestPKI) -> Iterator[FakeTSA]:
    with FakeTSA(pki.tsa()) as tsa:
        yield tsa


@pytest.fixture(scope="module")
def fake_vendor() -> Iterator[FakeCloudVendor]:
    with FakeCloudVendor() as vendor:
        vendor.register_person(CLOUD_DOCTOR["name"], CLOUD_DOCTOR["id_number"], CLOUD_DOCTOR["phone"])
        yield vendor


@pytest.fixture(autouse=True)
def _fresh_fakes(request: pytest.FixtureRequest) -> Iterator[None]:
    fakes = [request.getfixturevalue(name) for name in ("fake_tsa", "fake_vendor") if name in request.fixturenames]
    for fake in fakes:
        fake.start()
        fake.reset()
    yield
    for fake in fakes:
        fake.release()


@dataclass
class World:
    praxis: Praxis
    clinic: int
    other_clinic: int
    patient: str
    users: dict[str, int]
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, who: str) -> Any:
        if who not in self.clients:
            self.clients[who] = client_for(self.praxis, self.users[who])
        return self.clients[who]

    @property
    def base(self) -> str:
        return f"/api/clinics/{self.clinic}/records"

    def write(self, who: str = "doctor", *, text: str = "Tooth 36: composite filling. 치료 완료.",
              finalise: bool = True, **fields: Any) -> dict[str, Any]:
        body = {"patient_id": self.patient, "kind": "visit_note", "title": "Filling",
                "content": {"tooth": "36", "procedure": "composite", "surfaces": ["O", "D"]}, "text": text, **fields}
        response = self.client(who).post(self.base, json=body)
        assert response.status_code == 201, response.text
        record = response.json()
        if finalise:
            response = self.client(who).post(f"{self.base}/{record['id']}/finalise")
            assert response.status_code == 200, response.text
            record = response.json()
        return record

    def begin(self, who: str, ids: list[str], *, provider: str, method: str | None = None,
              countersign: bool = False) -> Any:
        body: dict[str, Any] = {"record_ids": ids, "provider": provider}
        if method:
            body["method"] = method
        return self.client(who).post(f"{self.base}/{'countersigning' if countersign else 'signing'}", json=body)

    def complete(self, who: str, session_id: str, response: str | None = None) -> Any:
        return self.client(who).post(f"{self.base}/signing/{session_id}/complete", json={"response": response})

    def sign(self, who: str, ids: list[str], *, provider: str = "signing_certificate",
             countersign: bool = False) -> dict[str, Any]:
        begun = self.begin(who, ids, provider=provider, countersign=countersign)
        assert begun.status_code == 201, begun.text
        done = self.complete(who, begun.json()["session_id"])
        assert done.status_code == 200, done.text
        return done.json()

    def get(self, record_id: str, who: str = "doctor") -> dict[str, Any]:
        response = self.client(who).get(f"{self.base}/{record_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def verify(self, record_id: str, who: str = "doctor") -> dict[str, Any]:
        response = self.client(who).post(f"{self.base}/{record_id}/verify")
        assert response.status_code == 200, response.text
        return response.json()

    def enroll_certificate(self, who: str, issued: Issued) -> Any:
        return self.client(who).post(
            f"{self.base}/signing/providers/signing_certificate/enrollment/certificate",
            json={"data": {"pkcs12": issued.pkcs12_b64(PASSWORD), "password": PASSWORD}})

    def enroll_cloud(self, who: str) -> None:
        url = f"{self.base}/signing/providers/signing_cloud/enrollment"
        response = self.client(who).post(f"{url}/identity", json={"data": CLOUD_DOCTOR})
        assert response.status_code == 200, response.text
        response = self.client(who).post(f"{url}/seal", json={"data": {"image": SEAL_PNG}})
        assert response.status_code == 200, response.text
        assert response.json()["ready"] is True


@pytest.fixture
def make_world(make_praxis: Callable[..., Praxis], pki: TestPKI, fake_tsa: FakeTSA,
               fake_vendor: FakeCloudVendor) -> Callable[..., World]:
    def make(*, certificate: bool = True, cloud: bool = False, country: str = "KR") -> World:
        praxis = make_praxis(PLUGINS)
        clinic = add_clinic(praxis, "Seoul Dental", country, "Asia/Seoul", "ko")
        other = add_clinic(praxis, "Budapest", "HU", "Europe/Budapest", "hu")
        praxis.plugins.enable(clinic, "records_listener", ADMIN)
        if certificate:
            praxis.plugins.enable(clinic, "signing_certificate", ADMIN)
            praxis.plugins.configure(clinic, "signing_certificate", {
                "tsa_url": fake_tsa.url, "tsa_timeout_seconds": 2.0, "trusted_roots_pem": pki.pem,
                "key_encryption_secret": SECRET}, ADMIN)
        if cloud:
            praxis.plugins.enable(clinic, "signing_cloud", ADMIN)
            praxis.plugins.configure(clinic, "signing_cloud", fake_vendor.plugin_settings(), ADMIN)
        users = {
            "doctor": create_user(praxis, [clinic], role="doctor", name="Dr. Kim Minji"),
            "supervisor": create_user(praxis, [clinic], role="doctor", name="Dr. Park Supervisor"),
            # A trainee: a doctor whose override withholds records.sign (and countersigning), so a supervisor
            # countersigns their records.
            "trainee": create_user(praxis, [clinic], role="doctor", deny=["records.sign", "records.countersign"],
                                   name="Dr. Lee Trainee"),
            "reader": create_user(praxis, [clinic], permissions=["records.view"], name="Reader"),
            "outsider": create_user(praxis, [other], role="admin", name="Other clinic admin"),
        }
        patient = PatientService(praxis).create(clinic, PatientCreate(family_name="김", given_name="민수"), ADMIN)
        return World(praxis, clinic, other, str(patient.id), users)

    return make
