"""Clinical records of one clinic: drafts, finalising, signing sessions (one intent check for a batch),
countersigning, amendments, verification reports and PDF export.

A record of another clinic answers 404, like one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth.deps import Principal, clinic_permission
from core.auth.errors import ApiError
from core.models.records import RecordStatus, SignatureKind
from core.records.errors import RecordError
from core.records.schemas import (
    AmendIn,
    ChallengeOut,
    CompleteIn,
    EnrollIn,
    EnrollmentOut,
    ProviderOut,
    RecordCreate,
    RecordOut,
    RecordPage,
    RecordUpdate,
    SigningBegin,
    SigningOut,
    VerificationOut,
)
from core.records.service import MAX_LIMIT, ListFilters, RecordService
from core.records.signing import Signer, SigningService, export_pdf

router = APIRouter(prefix="/api/clinics/{clinic_id}/records", tags=["records"])
T = TypeVar("T")

VIEW = "records.view"
EDIT = "records.edit"
COUNTERSIGN = "records.countersign"
VERIFY = "records.verify"


class ErrorOut(BaseModel):
    error: str
    message: str


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such record (or session) in this clinic."},
    409: {"model": ErrorOut, "description": "Not possible in the record's state, e.g. editing a signed record."},
}
SIGNING_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    410: {"model": ErrorOut, "description": "The signing session expired; begin a new one."},
    422: {"model": ErrorOut, "description": "Invalid input, or a wrong intent-check answer (field 'response')."},
    423: {"model": ErrorOut, "description": "Too many wrong answers: the session is locked."},
    424: {"model": ErrorOut, "description": "The provider refused or its signature did not verify; nothing stored."},
    503: {"model": ErrorOut, "description": "The vendor or time-stamp authority is down; nothing stored, retry."},
}


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return fn(*args, **kwargs)
    except RecordError as exc:
        headers = None
        retry_after = exc.details.get("retry_after")
        if exc.status == 503 and retry_after:
            headers = {"Retry-After": str(int(retry_after))}
        raise ApiError(exc.status, exc.code, str(exc), headers=headers,
                       **{k: v for k, v in exc.details.items() if k != "retry_after"}) from exc


def records(praxis: Praxis = Depends(get_praxis)) -> RecordService:
    return RecordService(praxis)


def signing(praxis: Praxis = Depends(get_praxis)) -> SigningService:
    return SigningService(praxis)


def signer(principal: Principal, clinic_id: int) -> Signer:
    return Signer(principal.actor, principal.permissions_in(clinic_id))


# --- list and write ------------------------------------------------------------------------------------


@router.get("", response_model=RecordPage, summary="List records (e.g. those waiting for a signature)")
def list_records(
    clinic_id: int,
    waiting: bool = Query(False, description="Only records waiting for a signature or countersignature."),
    status: RecordStatus | None = Query(None, description="draft, final, signed or locked."),
    author_id: int | None = Query(None, ge=1, description="The doctor who wrote them."),
    patient_id: uuid.UUID | None = Query(None),
    date_from: date | None = Query(None, description="Written on or after this day (clinic time)."),
    date_to: date | None = Query(None, description="Written on or before this day (clinic time)."),
    latest_only: bool = Query(False, description="Leave out versions that were amended."),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    offset: int = Query(0, ge=0),
    svc: RecordService = Depends(records),
    _: Principal = Depends(clinic_permission(VIEW)),
) -> RecordPage:
    filters = ListFilters(status=status, waiting=waiting, author_id=author_id, patient_id=patient_id,
                          date_from=date_from, date_to=date_to, include_superseded=not latest_only)
    return svc.search(clinic_id, filters, limit=limit, offset=offset)


@router.post("", response_model=RecordOut, status_code=201, summary="Write a draft", responses=ERRORS)
def create_record(clinic_id: int, body: RecordCreate, svc: RecordService = Depends(records),
                  who: Principal = Depends(clinic_permission(EDIT))) -> RecordOut:
    return run(svc.create, clinic_id, body, who.actor)


# --- signing (before /{record_id} routes so the paths read naturally) ----------------------------------------


@router.get("/signing/providers", response_model=list[ProviderOut],
            summary="Signing plugins enabled here, and what you still have to do once to sign with each")
def list_providers(clinic_id: int, svc: SigningService = Depends(signing),
                   who: Principal = Depends(clinic_permission(EDIT))) -> list[ProviderOut]:
    return run(svc.list_providers, clinic_id, signer(who, clinic_id))


@router.post("/signing/providers/{plugin}/enrollment/{step}", response_model=EnrollmentOut,
             summary="One enrollment step for yourself: upload a certificate, real-name check, seal image",
             responses=SIGNING_ERRORS)
def enroll(clinic_id: int, plugin: str, step: str, body: EnrollIn, svc: SigningService = Depends(signing),
           who: Principal = Depends(clinic_permission(EDIT))) -> EnrollmentOut:
    return run(svc.enroll, clinic_id, signer(who, clinic_id), plugin, step, body.data)


@router.post("/signing", response_model=ChallengeOut, status_code=201, responses=SIGNING_ERRORS,
             summary="Begin signing your final records (one or many): returns the intent check to answer")
def begin_signing(clinic_id: int, body: SigningBegin, svc: SigningService = Depends(signing),
                  who: Principal = Depends(clinic_permission(EDIT))) -> ChallengeOut:
    return run(svc.begin, clinic_id, signer(who, clinic_id), body.record_ids, SignatureKind.sign, body.provider,
               body.method)


@router.post("/countersigning", response_model=ChallengeOut, status_code=201, responses=SIGNING_ERRORS,
             summary="Begin countersigning trainees' signed records: returns the intent check to answer")
def begin_countersigning(clinic_id: int, body: SigningBegin, svc: SigningService = Depends(signing),
                         who: Principal = Depends(clinic_permission(COUNTERSIGN))) -> ChallengeOut:
    return run(svc.begin, clinic_id, signer(who, clinic_id), body.record_ids, SignatureKind.countersign,
               body.provider, body.method)


@router.post("/signing/{session_id}/complete", response_model=SigningOut, responses=SIGNING_ERRORS,
             summary="Answer the intent check (SMS code; nothing for none or a scanned QR code) and sign")
def complete_signing(clinic_id: int, session_id: uuid.UUID, body: CompleteIn, svc: SigningService = Depends(signing),
                     who: Principal = Depends(clinic_permission(VIEW))) -> SigningOut:
    return run(svc.complete, clinic_id, signer(who, clinic_id), session_id, body.response)


# --- one record ----------------------------------------------------------------------------------------


@router.get("/{record_id}", response_model=RecordOut, summary="Open a record", responses=ERRORS)
def get_record(clinic_id: int, record_id: uuid.UUID, svc: RecordService = Depends(records),
               who: Principal = Depends(clinic_permission(VIEW))) -> RecordOut:
    return run(svc.get, clinic_id, record_id, who.actor)


@router.patch("/{record_id}", response_model=RecordOut, summary="Edit your draft", responses=ERRORS)
def update_record(clinic_id: int, record_id: uuid.UUID, body: RecordUpdate, svc: RecordService = Depends(records),
                  who: Principal = Depends(clinic_permission(EDIT))) -> RecordOut:
    return run(svc.update, clinic_id, record_id, body, who.actor)


@router.delete("/{record_id}", status_code=204, summary="Delete your draft", responses=ERRORS)
def delete_record(clinic_id: int, record_id: uuid.UUID, svc: RecordService = Depends(records),
                  who: Principal = Depends(clinic_permission(EDIT))) -> Response:
    run(svc.delete_draft, clinic_id, record_id, who.actor)
    return Response(status_code=204)


@router.post("/{record_id}/finalise", response_model=RecordOut, summary="Finish a draft for signing",
             responses=ERRORS)
def finalise_record(clinic_id: int, record_id: uuid.UUID, svc: RecordService = Depends(records),
                    who: Principal = Depends(clinic_permission(EDIT))) -> RecordOut:
    return run(svc.finalise, clinic_id, record_id, who.actor)


@router.post("/{record_id}/reopen", response_model=RecordOut, summary="Turn an unsigned final record into a draft",
             responses=ERRORS)
def reopen_record(clinic_id: int, record_id: uuid.UUID, svc: RecordService = Depends(records),
                  who: Principal = Depends(clinic_permission(EDIT))) -> RecordOut:
    return run(svc.reopen, clinic_id, record_id, who.actor)


@router.post("/{record_id}/amend", response_model=RecordOut, status_code=201, responses=ERRORS,
             summary="Correct a signed record: a new draft version, signed on its own")
def amend_record(clinic_id: int, record_id: uuid.UUID, body: AmendIn, svc: RecordService = Depends(records),
                 who: Principal = Depends(clinic_permission(EDIT))) -> RecordOut:
    return run(svc.amend, clinic_id, record_id, body, who.actor)


@router.get("/{record_id}/versions", response_model=list[RecordOut], summary="Every version of the record",
            responses=ERRORS)
def record_versions(clinic_id: int, record_id: uuid.UUID, svc: RecordService = Depends(records),
                    _: Principal = Depends(clinic_permission(VIEW))) -> list[RecordOut]:
    return run(svc.versions, clinic_id, record_id)


@router.post("/{record_id}/verify", response_model=VerificationOut, responses=ERRORS,
             summary="Check the record's signatures: a readable report of every check")
def verify_record(clinic_id: int, record_id: uuid.UUID, svc: SigningService = Depends(signing),
                  who: Principal = Depends(clinic_permission(VERIFY))) -> VerificationOut:
    return run(svc.verify, clinic_id, record_id, who.actor)


@router.get("/{record_id}/pdf", summary="The record as PDF, with its signatures", responses=ERRORS,
            response_class=Response)
def record_pdf(clinic_id: int, record_id: uuid.UUID, praxis: Praxis = Depends(get_praxis),
               who: Principal = Depends(clinic_permission(VIEW))) -> Response:
    data, filename = run(export_pdf, praxis, clinic_id, record_id, who.actor)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
