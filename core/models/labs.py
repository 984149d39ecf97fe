"""External labs: providers and their test catalogues, orders with specimens, results with their history, and
cases sent to dental labs (crowns, bridges, dentures...).

Orders go to a lab through the outbox (``outbox_item_id`` is the idempotency key the connector passes on as HL7
MSH-10 or a FHIR identifier); results come back through the connector plugin and are correlated on the placer and
filler order numbers.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import JSON, Column, Field, SQLModel

from core.models.schedule import utc_column, utc_now_column


class LabKind(StrEnum):
    medical = "medical"  # a clinical laboratory: orders and results
    dental = "dental"  # a dental laboratory (기공소): prosthetic work cases


class OrderStatus(StrEnum):
    placed = "placed"  # stored, queued for the lab
    sent = "sent"  # delivery attempted; no acknowledgement yet
    acknowledged = "acknowledged"  # the lab accepted it
    partial = "partial"  # some results are in
    final = "final"  # every ordered test has a final (or corrected) result
    cancelled = "cancelled"
    rejected = "rejected"  # the lab refused it for good


class ResultStatus(StrEnum):
    preliminary = "preliminary"
    final = "final"
    corrected = "corrected"


class CaseStatus(StrEnum):
    planned = "planned"  # impression taken, not sent yet
    sent = "sent"
    received = "received"  # back from the lab
    checked = "checked"  # checked by the dentist, ready to fit
    fitted = "fitted"  # delivered to the patient
    cancelled = "cancelled"


class LabProvider(SQLModel, table=True):
    """An external lab the clinic works with."""

    __tablename__ = "core_lab_provider"
    __table_args__ = (
        UniqueConstraint("clinic_id", "name", name="ux_core_lab_provider_name"),
        CheckConstraint("kind IN ('medical', 'dental')", name="ck_core_lab_provider_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    name: str = Field(max_length=200)
    kind: str = Field(default=LabKind.medical, max_length=16)
    connector_plugin: str | None = Field(default=None, max_length=64,
                                         description="The lab connector plugin that talks to it (medical labs)")
    code: str | None = Field(default=None, max_length=50, description="The lab's own code, e.g. HL7 facility")
    codes: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False),
                        description="Further codes the lab uses for this clinic (account, site...)")
    printer_host: str | None = Field(default=None, max_length=200, description="ZPL label printer (raw TCP)")
    printer_port: int | None = Field(default=None)
    active: bool = True
    created_at: datetime = utc_now_column()


class LabTest(SQLModel, table=True):
    """One test in a lab's catalogue."""

    __tablename__ = "core_lab_test"
    __table_args__ = (UniqueConstraint("provider_id", "code", name="ux_core_lab_test_code"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id", index=True)
    provider_id: int = Field(foreign_key="core_lab_provider.id")
    code: str = Field(max_length=50, description="The lab's code for the test (often LOINC)")
    name: str = Field(max_length=300)
    coding_system: str = Field(default="LN", max_length=20, description="HL7 coding system: LN (LOINC), L (local)")
    specimen_type: str | None = Field(default=None, max_length=20, description="HL7 table 0487, e.g. SER, BLD")
    active: bool = True


class LabTestService(SQLModel, table=True):
    """Which of the clinic's billable services a lab test corresponds to (many to many)."""

    __tablename__ = "core_lab_test_service"
    __table_args__ = (
        UniqueConstraint("test_id", "service_code", name="ux_core_lab_test_service"),
        Index("ix_core_lab_test_service_code", "clinic_id", "service_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    test_id: int = Field(foreign_key="core_lab_test.id")
    service_code: str = Field(max_length=40)


class LabOrder(SQLModel, table=True):
    __tablename__ = "core_lab_order"
    __table_args__ = (
        UniqueConstraint("clinic_id", "placer_order_number", name="ux_core_lab_order_placer"),
        Index("ix_core_lab_order_patient", "clinic_id", "patient_id", "placed_at"),
        Index("ix_core_lab_order_filler", "clinic_id", "filler_order_number"),
        Index("ix_core_lab_order_status", "clinic_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    provider_id: int = Field(foreign_key="core_lab_provider.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id")
    doctor_id: int | None = Field(default=None, foreign_key="core_user.id")
    appointment_id: int | None = Field(default=None, foreign_key="core_appointment.id", index=True)
    placer_order_number: str = Field(max_length=40)
    filler_order_number: str | None = Field(default=None, max_length=60)
    source: str = Field(default="manual", max_length=16, description="appointment, services or manual")
    status: str = Field(default=OrderStatus.placed, max_length=16)
    status_reason: str | None = Field(default=None, max_length=1000)
    outbox_item_id: uuid.UUID | None = Field(default=None, description="The delivery's idempotency key")
    cancel_item_id: uuid.UUID | None = None
    ack_id: str | None = Field(default=None, max_length=100)
    notes: str = Field(default="", max_length=2000)
    placed_at: datetime = utc_now_column()
    acknowledged_at: datetime | None = utc_column(nullable=True)
    completed_at: datetime | None = utc_column(nullable=True)
    cancelled_at: datetime | None = utc_column(nullable=True)
    created_by: int | None = None
    updated_at: datetime = utc_now_column()


class LabOrderLine(SQLModel, table=True):
    __tablename__ = "core_lab_order_line"
    __table_args__ = (UniqueConstraint("order_id", "test_code", name="ux_core_lab_order_line_test"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="core_lab_order.id", index=True)
    test_id: int | None = Field(default=None, foreign_key="core_lab_test.id")
    test_code: str = Field(max_length=50)
    test_name: str = Field(max_length=300)
    coding_system: str = Field(default="LN", max_length=20)
    service_code: str | None = Field(default=None, max_length=40, description="The billed service it came from")


class Specimen(SQLModel, table=True):
    __tablename__ = "core_lab_specimen"
    __table_args__ = (UniqueConstraint("clinic_id", "accession_number", name="ux_core_lab_specimen_accession"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    order_id: int = Field(foreign_key="core_lab_order.id", index=True)
    accession_number: str = Field(max_length=40)
    barcode_value: str = Field(max_length=60, description="What the Code 128 barcode on the tube encodes")
    specimen_type: str = Field(default="SER", max_length=20)
    collected_at: datetime | None = utc_column(nullable=True)
    label_printed_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_now_column()


class LabResult(SQLModel, table=True):
    """The current value of one test of an order; earlier versions are in ``LabResultRevision``."""

    __tablename__ = "core_lab_result"
    __table_args__ = (
        UniqueConstraint("order_id", "test_code", name="ux_core_lab_result_test"),
        Index("ix_core_lab_result_patient", "clinic_id", "patient_id", "observed_at"),
        CheckConstraint("status IN ('preliminary', 'final', 'corrected')", name="ck_core_lab_result_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    order_id: int = Field(foreign_key="core_lab_order.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id")
    test_code: str = Field(max_length=50)
    test_name: str | None = Field(default=None, max_length=300)
    value: str = Field(default="", max_length=4000)
    value_type: str | None = Field(default=None, max_length=10)
    units: str | None = Field(default=None, max_length=60)
    reference_range: str | None = Field(default=None, max_length=100)
    abnormal_flag: str | None = Field(default=None, max_length=10, description="HL7 table 0078: L H LL HH N A...")
    abnormal: bool = False
    status: str = Field(max_length=16)
    notes: str | None = Field(default=None, max_length=4000)
    observed_at: datetime | None = utc_column(nullable=True)
    received_at: datetime = utc_now_column()
    receipt: str | None = Field(default=None, max_length=200, description="The lab message it came in")
    version: int = 1


class LabResultRevision(SQLModel, table=True):
    """A result as it was before the lab sent a newer version (preliminary before final, final before corrected)."""

    __tablename__ = "core_lab_result_revision"
    __table_args__ = (Index("ix_core_lab_result_revision_result", "result_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    result_id: int = Field(foreign_key="core_lab_result.id")
    version: int
    value: str = Field(default="", max_length=4000)
    units: str | None = Field(default=None, max_length=60)
    reference_range: str | None = Field(default=None, max_length=100)
    abnormal_flag: str | None = Field(default=None, max_length=10)
    status: str = Field(max_length=16)
    observed_at: datetime | None = utc_column(nullable=True)
    received_at: datetime = utc_column()
    replaced_at: datetime = utc_now_column()


class DentalLabCase(SQLModel, table=True):
    """Prosthetic work sent to a dental lab, linked to the appointment that needs it back."""

    __tablename__ = "core_dental_lab_case"
    __table_args__ = (
        Index("ix_core_dental_lab_case_clinic", "clinic_id", "status", "due_date"),
        Index("ix_core_dental_lab_case_patient", "clinic_id", "patient_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="core_clinic.id")
    patient_id: uuid.UUID = Field(foreign_key="core_patient.id")
    provider_id: int = Field(foreign_key="core_lab_provider.id")
    doctor_id: int | None = Field(default=None, foreign_key="core_user.id")
    appointment_id: int | None = Field(default=None, foreign_key="core_appointment.id", index=True)
    work_type: str = Field(max_length=40)
    teeth: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False),
                        description="FDI tooth numbers, e.g. [11, 12, 13]")
    shade: str | None = Field(default=None, max_length=20)
    material: str | None = Field(default=None, max_length=100)
    instructions: str = Field(default="", max_length=4000)
    due_date: date | None = None
    sent_on: date | None = None
    received_on: date | None = None
    checked_on: date | None = None
    status: str = Field(default=CaseStatus.planned, max_length=16)
    version: int = 1
    created_at: datetime = utc_now_column()
    created_by: int | None = None
    updated_at: datetime = utc_now_column()


__all__ = ["CaseStatus", "DentalLabCase", "LabKind", "LabOrder", "LabOrderLine", "LabProvider", "LabResult",
           "LabResultRevision", "LabTest", "LabTestService", "OrderStatus", "ResultStatus", "Specimen"]
