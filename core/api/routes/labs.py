"""External labs: providers, catalogue import and service mapping, orders, specimens and labels, results on the
patient card, and dental lab cases with their appointment-book warnings and turnaround per lab.

Reading needs ``labs.view``; ordering, labels and dental cases ``labs.order``; set-up ``labs.manage``.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import Session

from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth.deps import Principal, clinic_permission
from core.labs import catalogue, dental, labels, orders, results
from core.labs.errors import invalid
from core.models.appointment import Appointment

router = APIRouter(prefix="/api/clinics/{clinic_id}/labs", tags=["labs"])

VIEW = clinic_permission("labs.view")
ORDER = clinic_permission("labs.order")
MANAGE = clinic_permission("labs.manage")


# --- providers ----------------------------------------------------------------------------------------------


class ProviderIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["medical", "dental"] = "medical"
    connector_plugin: str | None = Field(None, max_length=64)
    code: str | None = Field(None, max_length=50)
    codes: dict[str, str] = Field(default_factory=dict)
    printer_host: str | None = Field(None, max_length=200)
    printer_port: int | None = Field(None, ge=1, le=65535)
    active: bool = True


class ProviderPatch(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    connector_plugin: str | None = Field(None, max_length=64)
    code: str | None = Field(None, max_length=50)
    codes: dict[str, str] | None = None
    printer_host: str | None = Field(None, max_length=200)
    printer_port: int | None = Field(None, ge=1, le=65535)
    active: bool | None = None


@router.get("/providers")
def list_providers(clinic_id: int, kind: Literal["medical", "dental"] | None = None,
                   praxis: Praxis = Depends(get_praxis), _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    with Session(praxis.engine) as session:
        return catalogue.list_providers(session, clinic_id, kind)


@router.post("/providers", status_code=201)
def create_provider(clinic_id: int, body: ProviderIn, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return catalogue.create_provider(praxis.engine, praxis.runtime, clinic_id, body.model_dump(), who.actor)


@router.patch("/providers/{provider_id}")
def update_provider(clinic_id: int, provider_id: int, body: ProviderPatch, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return catalogue.update_provider(praxis.engine, praxis.runtime, clinic_id, provider_id,
                                     body.model_dump(exclude_unset=True), who.actor)


# --- catalogue and mapping ------------------------------------------------------------------------------------


class CatalogueImport(BaseModel):
    format: Literal["csv", "json", "rows"] = "rows"
    content: str | None = Field(None, max_length=5_000_000, description="The file's text for csv/json")
    rows: list[dict[str, Any]] | None = Field(None, description="For format=rows: [{code, name, services}]")
    replace_mappings: bool = False


class MappingPair(BaseModel):
    test_code: str = Field(min_length=1, max_length=50)
    service_code: str = Field(min_length=1, max_length=40)


class BulkMapping(BaseModel):
    mappings: list[MappingPair] = Field(min_length=1, max_length=5000)


class ServiceIn(BaseModel):
    service_code: str = Field(min_length=1, max_length=40)


@router.get("/providers/{provider_id}/tests")
def list_tests(clinic_id: int, provider_id: int, praxis: Praxis = Depends(get_praxis),
               _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    with Session(praxis.engine) as session:
        return catalogue.list_tests(session, clinic_id, provider_id)


@router.post("/providers/{provider_id}/tests/import")
def import_tests(clinic_id: int, provider_id: int, body: CatalogueImport, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    """First set-up: the lab's catalogue with the services each test maps to (CSV, JSON or rows)."""
    if body.format == "rows":
        if body.rows is None:
            raise invalid("rows", "give the rows to import", "required")
        rows = body.rows
    else:
        if not body.content:
            raise invalid("content", "give the file's content", "required")
        rows = catalogue.parse_catalogue(body.content, body.format)
    return catalogue.import_catalogue(praxis.engine, clinic_id, provider_id, rows, who.actor,
                                      replace_mappings=body.replace_mappings)


@router.post("/providers/{provider_id}/mappings")
def bulk_map(clinic_id: int, provider_id: int, body: BulkMapping, praxis: Praxis = Depends(get_praxis),
             who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return catalogue.bulk_map(praxis.engine, clinic_id, provider_id, [m.model_dump() for m in body.mappings],
                              who.actor)


@router.post("/tests/{test_id}/services", status_code=201)
def map_service(clinic_id: int, test_id: int, body: ServiceIn, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(MANAGE)) -> dict[str, Any]:
    return catalogue.map_service(praxis.engine, clinic_id, test_id, body.service_code, who.actor)


@router.delete("/tests/{test_id}/services/{service_code}", status_code=204)
def unmap_service(clinic_id: int, test_id: int, service_code: str, praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(MANAGE)) -> Response:
    catalogue.unmap_service(praxis.engine, clinic_id, test_id, service_code, who.actor)
    return Response(status_code=204)


# --- orders -------------------------------------------------------------------------------------------------


class OrderIn(BaseModel):
    provider_id: int
    appointment_id: int | None = Field(None, description="The visit; alone, its services are ordered")
    patient_id: uuid.UUID | None = Field(None, description="Needed without an appointment")
    services: list[str] = Field(default_factory=list, max_length=100, description="Billed service codes")
    tests: list[str] = Field(default_factory=list, max_length=100, description="Test codes of the lab")
    doctor_id: int | None = None
    notes: str = Field("", max_length=2000)
    collected_at: AwareDatetime | None = None


class CancelIn(BaseModel):
    reason: str = Field("", max_length=1000)


@router.post("/orders", status_code=201)
def create_order(clinic_id: int, body: OrderIn, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(ORDER)) -> dict[str, Any]:
    if body.appointment_id is not None and not body.services and not body.tests:
        return orders.create_from_appointment(praxis.engine, praxis.runtime, clinic_id, body.appointment_id,
                                              body.provider_id, who.actor, doctor_id=body.doctor_id,
                                              notes=body.notes, collected_at=body.collected_at)
    if body.patient_id is None:
        if body.appointment_id is None:
            raise invalid("patient_id", "name the patient (or the appointment)", "required")
        with Session(praxis.engine) as session:
            appt = session.get(Appointment, body.appointment_id)
            if appt is None or appt.clinic_id != clinic_id or appt.patient_id is None:
                raise invalid("appointment_id", "no appointment of a registered patient with this id",
                                        "unknown_appointment")
            patient_id = appt.patient_id
    else:
        patient_id = body.patient_id
    return orders.create_order(praxis.engine, praxis.runtime, clinic_id, provider_id=body.provider_id,
                               patient_id=patient_id, actor=who.actor, service_codes=body.services,
                               test_codes=body.tests, doctor_id=body.doctor_id or who.user_id,
                               appointment_id=body.appointment_id, notes=body.notes, collected_at=body.collected_at)


@router.get("/orders")
def list_orders(clinic_id: int, patient_id: uuid.UUID | None = None, appointment_id: int | None = None,
                status: str | None = None, limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0),
                praxis: Praxis = Depends(get_praxis), _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    with Session(praxis.engine) as session:
        return orders.list_orders(session, clinic_id, patient_id=patient_id, appointment_id=appointment_id,
                                  status=status, limit=limit, offset=offset)


@router.get("/orders/{order_id}")
def get_order(clinic_id: int, order_id: int, praxis: Praxis = Depends(get_praxis),
              _: Principal = Depends(VIEW)) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        return orders.order_dict(session, orders.get_order(session, clinic_id, order_id))


@router.post("/orders/{order_id}/cancel")
def cancel_order(clinic_id: int, order_id: int, body: CancelIn, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(ORDER)) -> dict[str, Any]:
    return orders.cancel_order(praxis.engine, clinic_id, order_id, who.actor, reason=body.reason)


# --- specimens and labels -------------------------------------------------------------------------------------


class CollectIn(BaseModel):
    collected_at: AwareDatetime


@router.post("/specimens/{specimen_id}/collect")
def collect(clinic_id: int, specimen_id: int, body: CollectIn, praxis: Praxis = Depends(get_praxis),
            who: Principal = Depends(ORDER)) -> dict[str, Any]:
    return orders.specimen_dict(labels.collect_specimen(praxis.engine, clinic_id, specimen_id, body.collected_at,
                                                        who.actor))


@router.post("/specimens/{specimen_id}/label", response_model=None)
def print_label(clinic_id: int, specimen_id: int, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(ORDER)) -> dict[str, Any] | Response:
    """ZPL to the lab's label printer; without a printer, the label as a PDF to print by hand."""
    outcome = labels.print_label(praxis.engine, praxis.runtime, clinic_id, specimen_id, who.actor)
    if not outcome["printed"]:
        return Response(outcome["pdf"], media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="specimen-{specimen_id}.pdf"'})
    return outcome


# --- results ----------------------------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/results")
def patient_results(clinic_id: int, patient_id: uuid.UUID, abnormal_only: bool = False,
                    praxis: Praxis = Depends(get_praxis), _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    """The patient's results, newest first; ``abnormal`` marks values to highlight, ``history`` earlier versions."""
    with Session(praxis.engine) as session:
        return results.patient_results(session, clinic_id, patient_id, abnormal_only=abnormal_only)


# --- dental lab cases -----------------------------------------------------------------------------------------


class CaseIn(BaseModel):
    patient_id: uuid.UUID
    provider_id: int
    work_type: str = Field(min_length=1, max_length=40)
    teeth: list[int] = Field(default_factory=list, max_length=32)
    shade: str | None = Field(None, max_length=20)
    material: str | None = Field(None, max_length=100)
    instructions: str = Field("", max_length=4000)
    doctor_id: int | None = None
    appointment_id: int | None = None
    due_date: date | None = None
    sent_on: date | None = None
    received_on: date | None = None
    checked_on: date | None = None
    status: Literal["planned", "sent", "received", "checked", "fitted", "cancelled"] | None = None


class CasePatch(BaseModel):
    provider_id: int | None = None
    work_type: str | None = Field(None, min_length=1, max_length=40)
    teeth: list[int] | None = Field(None, max_length=32)
    shade: str | None = Field(None, max_length=20)
    material: str | None = Field(None, max_length=100)
    instructions: str | None = Field(None, max_length=4000)
    doctor_id: int | None = None
    appointment_id: int | None = None
    due_date: date | None = None
    sent_on: date | None = None
    received_on: date | None = None
    checked_on: date | None = None
    status: Literal["planned", "sent", "received", "checked", "fitted", "cancelled"] | None = None
    version: int | None = Field(None, description="The version read; a stale one is refused (409)")


@router.get("/dental-cases")
def list_cases(clinic_id: int, patient_id: uuid.UUID | None = None, provider_id: int | None = None,
               status: str | None = None, appointment_id: int | None = None, praxis: Praxis = Depends(get_praxis),
               _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    with Session(praxis.engine) as session:
        return dental.list_cases(session, clinic_id, patient_id=patient_id, provider_id=provider_id, status=status,
                                 appointment_id=appointment_id)


@router.post("/dental-cases", status_code=201)
def create_case(clinic_id: int, body: CaseIn, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(ORDER)) -> dict[str, Any]:
    return dental.create_case(praxis.engine, clinic_id, body.model_dump(exclude_none=True), who.actor)


@router.get("/dental-cases/warnings")
def case_warnings(clinic_id: int, start: AwareDatetime, end: AwareDatetime, praxis: Praxis = Depends(get_praxis),
                  _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    """Appointments starting in [start, end) whose lab work will not be back in time."""
    if end <= start:
        raise invalid("end", "must be after start")
    with Session(praxis.engine) as session:
        return dental.warnings_between(session, clinic_id, start, end)


@router.get("/dental-turnaround")
def turnaround(clinic_id: int, since: date | None = None, until: date | None = None,
               praxis: Praxis = Depends(get_praxis), _: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    with Session(praxis.engine) as session:
        return dental.turnaround(session, clinic_id, since=since, until=until)


@router.get("/dental-cases/{case_id}")
def get_case(clinic_id: int, case_id: int, praxis: Praxis = Depends(get_praxis),
             _: Principal = Depends(VIEW)) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        return dental.case_dict(dental.get_case(session, clinic_id, case_id))


@router.patch("/dental-cases/{case_id}")
def update_case(clinic_id: int, case_id: int, body: CasePatch, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(ORDER)) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=True)
    version = values.pop("version", None)
    return dental.update_case(praxis.engine, clinic_id, case_id, values, who.actor, version=version)


@router.delete("/dental-cases/{case_id}", status_code=204)
def delete_case(clinic_id: int, case_id: int, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(ORDER)) -> Response:
    dental.delete_case(praxis.engine, clinic_id, case_id, who.actor)
    return Response(status_code=204)


@router.get("/appointments/{appointment_id}/lab-status")
def appointment_lab_status(clinic_id: int, appointment_id: int, praxis: Praxis = Depends(get_praxis),
                           _: Principal = Depends(VIEW)) -> dict[str, Any]:
    """The dental lab cases the appointment needs, with a warning for each that will not be back in time."""
    with Session(praxis.engine) as session:
        return dental.appointment_status(session, clinic_id, appointment_id)
