"""Patients of one clinic: search, register, open, change, trash and restore, merge, history.

A patient of another clinic answers 404, like one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth.deps import Principal, clinic_permission
from core.auth.errors import ApiError, forbidden
from core.patients.errors import PatientError
from core.patients.schemas import (
    ChartFormatIn,
    ChartFormatOut,
    DuplicateCandidate,
    HistoryEntry,
    MergeIn,
    MergeOut,
    PatientCreate,
    PatientOut,
    PatientPage,
    PatientUpdate,
    TrashIn,
    UnmergeIn,
)
from core.patients.service import MAX_LIMIT, PatientService

router = APIRouter(prefix="/api/clinics/{clinic_id}/patients", tags=["patients"])
T = TypeVar("T")


class ErrorOut(BaseModel):
    error: str
    message: str


class DuplicateOut(ErrorOut):
    candidates: list[DuplicateCandidate] = Field(description="Existing patients that look like the new one.")


def service(praxis: Praxis = Depends(get_praxis)) -> PatientService:
    return PatientService(praxis)


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the service and answer its refusals as ``{"error", "message", ...}`` JSON."""
    try:
        return fn(*args, **kwargs)
    except PatientError as exc:
        raise ApiError(exc.status, exc.code, str(exc), **exc.details) from exc


CONFLICT = {409: {"model": ErrorOut, "description": "Stale version, or the card is not in the right state."}}
NOT_FOUND = {404: {"model": ErrorOut, "description": "No such patient in this clinic."}}


@router.get("", response_model=PatientPage, summary="Search patients")
def search_patients(
    clinic_id: int,
    q: str | None = Query(None, max_length=200, description="Prefix of a name in any script or spelling: "
                          "'kov', 'anna k', '김민', 'ㄱㅁ' or 'zhangw' where the country plugin adds such keys."),
    phone: str | None = Query(None, max_length=40, description="Any run of at least 3 digits of a phone number, "
                              "international or national."),
    chart: str | None = Query(None, max_length=40, description="Exact chart number."),
    identifier_type: str | None = Query(None, max_length=64, description="Identifier type code, e.g. 'hu.taj'."),
    identifier: str | None = Query(None, max_length=64, description="Exact identifier value (any formatting)."),
    tag: str | None = Query(None, max_length=50, description="Only patients with this tag."),
    vip: bool | None = Query(None, description="Only VIP (true) or only non-VIP (false) patients."),
    status: str = Query("active", pattern="^(active|trashed|merged)$", description="active, trashed or merged."),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    offset: int = Query(0, ge=0),
    svc: PatientService = Depends(service),
    _: Principal = Depends(clinic_permission("patients.view")),
) -> PatientPage:
    return run(svc.search, clinic_id, q=q, phone=phone, chart_number=chart, identifier_type=identifier_type,
               identifier=identifier, tag=tag, vip=vip, status=status, limit=limit, offset=offset)


@router.post("", response_model=PatientOut, status_code=201, summary="Register a patient",
             responses={409: {"model": DuplicateOut, "description": "Looks like an existing patient; send "
                              "confirm_duplicate=true to register anyway."}})
def create_patient(clinic_id: int, body: PatientCreate, svc: PatientService = Depends(service),
                   who: Principal = Depends(clinic_permission("patients.edit"))) -> PatientOut:
    return run(svc.create, clinic_id, body, who.actor)


@router.get("/trash", response_model=PatientPage, summary="Deleted patients that can be restored")
def trash_list(clinic_id: int, limit: int = Query(50, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0),
               q: str | None = Query(None, max_length=200, description="Name prefix, as in search."),
               svc: PatientService = Depends(service),
               _: Principal = Depends(clinic_permission("patients.delete"))) -> PatientPage:
    return run(svc.search, clinic_id, q=q, status="trashed", limit=limit, offset=offset)


@router.get("/chart-format", response_model=ChartFormatOut, summary="The clinic's chart-number format")
def get_chart_format(clinic_id: int, svc: PatientService = Depends(service),
                     _: Principal = Depends(clinic_permission("patients.view"))) -> ChartFormatOut:
    return run(svc.chart_format, clinic_id)


@router.put("/chart-format", response_model=ChartFormatOut, summary="Change the chart-number format")
def put_chart_format(clinic_id: int, body: ChartFormatIn, svc: PatientService = Depends(service),
                     who: Principal = Depends(clinic_permission("clinics.manage"))) -> ChartFormatOut:
    return run(svc.set_chart_format, clinic_id, body.format, who.actor)


@router.post("/merge", response_model=MergeOut, summary="Merge two cards of the same person",
             responses={**CONFLICT, **NOT_FOUND})
def merge_patients(clinic_id: int, body: MergeIn, svc: PatientService = Depends(service),
                   who: Principal = Depends(clinic_permission("patients.merge"))) -> MergeOut:
    return run(svc.merge, clinic_id, body.survivor_id, body.merged_id, who.actor)


@router.post("/unmerge", response_model=PatientOut, summary="Undo a merge; answers the card that comes back",
             responses={**CONFLICT, **NOT_FOUND})
def unmerge_patient(clinic_id: int, body: UnmergeIn, svc: PatientService = Depends(service),
                    who: Principal = Depends(clinic_permission("patients.merge"))) -> PatientOut:
    return run(svc.unmerge, clinic_id, body.merged_id, who.actor)


@router.get("/{patient_id}", response_model=PatientOut, summary="Open a patient card (logged)",
            responses=NOT_FOUND)
def get_patient(clinic_id: int, patient_id: uuid.UUID,
                reveal: bool = Query(False, description="Show identifiers in full; needs "
                                     "patients.view_identifiers and is logged."),
                svc: PatientService = Depends(service),
                who: Principal = Depends(clinic_permission("patients.view"))) -> PatientOut:
    if reveal and not who.has("patients.view_identifiers", clinic_id):
        raise forbidden("showing identifiers in full needs the permission patients.view_identifiers")
    return run(svc.get, clinic_id, patient_id, who.actor, reveal=reveal)


@router.patch("/{patient_id}", response_model=PatientOut, summary="Change a patient card",
              responses={**CONFLICT, **NOT_FOUND})
def update_patient(clinic_id: int, patient_id: uuid.UUID, body: PatientUpdate,
                   svc: PatientService = Depends(service),
                   who: Principal = Depends(clinic_permission("patients.edit"))) -> PatientOut:
    return run(svc.update, clinic_id, patient_id, body, who.actor)


@router.post("/{patient_id}/delete", response_model=PatientOut, summary="Move a card to the trash (reason required)",
             responses={**CONFLICT, **NOT_FOUND})
def trash_patient(clinic_id: int, patient_id: uuid.UUID, body: TrashIn, svc: PatientService = Depends(service),
                  who: Principal = Depends(clinic_permission("patients.delete"))) -> PatientOut:
    return run(svc.trash, clinic_id, patient_id, body.reason, who.actor)


@router.delete("/{patient_id}", response_model=PatientOut, summary="Move a card to the trash (reason required)",
               responses={**CONFLICT, **NOT_FOUND})
def delete_patient(clinic_id: int, patient_id: uuid.UUID,
                   reason: str = Query(min_length=1, max_length=500, description="Why the card is deleted."),
                   svc: PatientService = Depends(service),
                   who: Principal = Depends(clinic_permission("patients.delete"))) -> PatientOut:
    return run(svc.trash, clinic_id, patient_id, reason, who.actor)


@router.post("/{patient_id}/restore", response_model=PatientOut, summary="Bring a card back from the trash",
             responses={**CONFLICT, **NOT_FOUND})
def restore_patient(clinic_id: int, patient_id: uuid.UUID, svc: PatientService = Depends(service),
                    who: Principal = Depends(clinic_permission("patients.delete"))) -> PatientOut:
    return run(svc.restore, clinic_id, patient_id, who.actor)


@router.get("/{patient_id}/history", response_model=list[HistoryEntry],
            summary="The patient's audit entries: changes, views, merges", responses=NOT_FOUND)
def patient_history(clinic_id: int, patient_id: uuid.UUID, limit: int = Query(100, ge=1, le=1000),
                    offset: int = Query(0, ge=0), svc: PatientService = Depends(service),
                    _: Principal = Depends(clinic_permission("patients.view"))) -> list[HistoryEntry]:
    return run(svc.history, clinic_id, patient_id, limit=limit, offset=offset)
