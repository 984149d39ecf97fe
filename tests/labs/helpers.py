"""Set-up shared by the lab tests: a clinic with a lab, its catalogue mapped to services, a patient and a visit."""

from __future__ import annotations

import socket
import socketserver
import threading
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from core.clock import now
from core.db import transaction
from core.models.appointment import Appointment
from core.models.patient import Patient

CATALOGUE_CSV = """code,name,specimen_type,services
2345-7,Glucose [Mass/volume] in Serum or Plasma,SER,LAB-GLU;LAB-PANEL
718-7,Hemoglobin [Mass/volume] in Blood,SER,LAB-CBC;LAB-PANEL
2093-3,Cholesterol [Mass/volume] in Serum or Plasma,SER,LAB-CHOL
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def add_patient(app: Any, family: str = "Nagy", given: str = "Éva", birth: date = date(1980, 2, 29)) -> uuid.UUID:
    with transaction(app.praxis.engine) as session:
        patient = Patient(clinic_id=app.clinic_id, chart_number=f"C{uuid.uuid4().hex[:6]}", family_name=family,
                          given_name=given, birth_date=birth, sex="female")
        session.add(patient)
        session.flush()
        return patient.id


_next_slot = iter(range(1, 10_000))


def add_visit(app: Any, patient_id: uuid.UUID, services: list[Any], start: datetime | None = None) -> int:
    start = start or now() + timedelta(hours=next(_next_slot))  # one doctor: visits must not overlap
    with transaction(app.praxis.engine) as session:
        appt = Appointment(clinic_id=app.clinic_id, patient_id=patient_id, doctor_id=app.user_id, start_at=start,
                           end_at=start + timedelta(minutes=30), services=services)
        session.add(appt)
        session.flush()
        assert appt.id is not None
        return appt.id


@dataclass
class LabSetup:
    provider_id: int
    provider_name: str
    patient_id: uuid.UUID
    appointment_id: int


def set_up_lab(app: Any, plugin: str, **provider: Any) -> LabSetup:
    client = app.client
    base = f"/api/clinics/{app.clinic_id}/labs"
    values = {"name": f"Synlab {uuid.uuid4().hex[:6]}", "connector_plugin": plugin, "code": "LAB", **provider}
    answer = client.post(f"{base}/providers", json=values)
    assert answer.status_code == 201, answer.text
    provider_id = answer.json()["id"]
    imported = client.post(f"{base}/providers/{provider_id}/tests/import",
                           json={"format": "csv", "content": CATALOGUE_CSV})
    assert imported.status_code == 200, imported.text
    patient_id = add_patient(app)
    appointment_id = add_visit(app, patient_id, ["LAB-GLU", {"code": "LAB-CBC", "name": "Blood count"}, "CONSULT"])
    return LabSetup(provider_id, values["name"], patient_id, appointment_id)


def outbox_items(app: Any, topic: str | None = None) -> list[Any]:
    return app.outbox.items(topic=topic, plugin=None)


def session(app: Any) -> Session:
    return Session(app.praxis.engine)


class FakePrinter:
    """A raw-TCP label printer on loopback: stores each label and checks it is a well-formed ZPL format."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        printer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                data = self.rfile.read()
                printer.labels.append(data.decode("utf-8"))

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def check(label: str) -> dict[str, Any]:
        """Parse a ZPL label: every ^XA has its ^XZ, every ^FD ends with ^FS; returns the fields' data and the
        barcode's data (after ^BC)."""
        assert label.strip().startswith("^XA") and label.strip().endswith("^XZ"), label
        assert label.count("^XA") == label.count("^XZ") == 1
        fields, barcode = [], None
        for chunk in label.split("^FO")[1:]:
            assert "^FD" in chunk and chunk.count("^FS") == 1, chunk
            data = chunk.split("^FD", 1)[1].split("^FS", 1)[0]
            data = data.replace("\\5E", "^").replace("\\7E", "~").replace("\\5C", "\\")
            fields.append(data)
            if "^BC" in chunk:
                barcode = data
        return {"fields": fields, "barcode": barcode, "utf8": "^CI28" in label}
