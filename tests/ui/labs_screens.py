"""Lab data for the UI tests (a lab, an order with a normal and an abnormal result, a dental case that will be
late for its appointment) and the walk over the lab screens for the every-template test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.clock import now
from core.db import transaction
from core.models.appointment import Appointment
from core.models.labs import DentalLabCase, LabOrder, LabOrderLine, LabProvider, LabResult
from tests.ui.screens import HTMX, set_up_book

OBSERVED = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)  # 6 March 00:30 in Budapest


@dataclass
class Labs:
    patient: str
    order: int
    late_appointment: int


def add_labs(praxis: Any, clinic: int, patient: str, doctor: int) -> Labs:
    patient_id = uuid.UUID(patient)
    with transaction(praxis.engine) as session:
        lab = LabProvider(clinic_id=clinic, name=f"Synlab {uuid.uuid4().hex[:4]}")
        dental = LabProvider(clinic_id=clinic, name=f"Fogtechnika {uuid.uuid4().hex[:4]}", kind="dental")
        session.add(lab)
        session.add(dental)
        session.flush()
        assert lab.id is not None and dental.id is not None
        order = LabOrder(clinic_id=clinic, provider_id=lab.id, patient_id=patient_id, doctor_id=doctor,
                         placer_order_number=f"P{uuid.uuid4().hex[:8]}", status="partial")
        session.add(order)
        session.flush()
        assert order.id is not None
        session.add(LabOrderLine(order_id=order.id, test_code="2345-7", test_name="Glucose"))
        session.add(LabResult(clinic_id=clinic, order_id=order.id, patient_id=patient_id, test_code="2345-7",
                              test_name="Glucose", value="11.2", units="mmol/L", reference_range="3.9-5.5",
                              abnormal_flag="HH", abnormal=True, status="final", observed_at=OBSERVED))
        session.add(LabResult(clinic_id=clinic, order_id=order.id, patient_id=patient_id, test_code="718-7",
                              test_name="Hemoglobin", value="140", units="g/L", reference_range="120-160",
                              abnormal_flag="N", abnormal=False, status="preliminary", observed_at=OBSERVED))
        start = now().replace(microsecond=0) + timedelta(days=40)
        appt = Appointment(clinic_id=clinic, patient_id=patient_id, doctor_id=doctor, start_at=start,
                           end_at=start + timedelta(minutes=30), services=[])
        session.add(appt)
        session.flush()
        assert appt.id is not None
        session.add(DentalLabCase(clinic_id=clinic, patient_id=patient_id, provider_id=dental.id,
                                  appointment_id=appt.id, work_type="crown", teeth=[36], status="sent",
                                  due_date=(start + timedelta(days=5)).date()))
        return Labs(patient=patient, order=order.id, late_appointment=appt.id)


def visit_labs_screens(client: Any, praxis: Any, clinic: int) -> list[Any]:
    b = set_up_book(praxis, clinic)
    labs = getattr(praxis, "_ui_labs", {}).get(clinic)
    if labs is None:
        labs = add_labs(praxis, clinic, b.patient, b.doctor)
        praxis._ui_labs = {**getattr(praxis, "_ui_labs", {}), clinic: labs}
    return [client.get(f"/clinics/{clinic}/labs/patient/{b.patient}", headers=HTMX),
            client.get(f"/clinics/{clinic}/book/appointments/{labs.late_appointment}", headers=HTMX)]
