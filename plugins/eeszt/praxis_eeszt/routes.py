"""The plugin's JSON API, mounted at ``/api/clinics/{clinic_id}/x/eeszt`` (see README.md for the list).

Interactive work (documents, eProfile, e-referrals, logins) asks EESZT while the user waits, with the doctor's
EESZT session; EESZT being down answers 503 ``eeszt_unavailable`` and never blocks anything else. Reporting
visits goes through the outbox (service.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from plugin_sdk import FieldError, ValidationFailed
from plugin_sdk.web import Caller, RouteError, require
from praxis_eeszt import service
from praxis_eeszt.certificate import CertificateError, ClientCertificate
from praxis_eeszt.client import BREAK_GLASS_REASONS, EesztClient, EesztLoginRequired, EesztRefused, EesztUnavailable
from praxis_eeszt.models import Certificate, Doctor, DoctorSession, SyncItem, Visit
from praxis_eeszt.panels import fragment, wants_html

USE, BREAK_GLASS, MANAGE = "eeszt.use", "eeszt.break_glass", "eeszt.manage"
T = TypeVar("T")

router = APIRouter()


# --- helpers -------------------------------------------------------------------------------------


def _answer(request: Request, caller: Caller, answer: dict[str, Any]) -> Any:
    """JSON, or the panel's HTML fragment in the clinic's language when the UI asks (HX-Request)."""
    return fragment(caller.ctx.clinic.locale, answer) if wants_html(request) else answer


def _eeszt(call: Callable[[], T]) -> T:
    """Run a call to EESZT and turn its failures into answers."""
    try:
        return call()
    except service.NotConfigured as exc:
        raise RouteError(409, "eeszt_not_configured", str(exc), missing=exc.missing) from None
    except EesztUnavailable as exc:
        raise RouteError(503, "eeszt_unavailable", f"EESZT cannot be used right now: {exc.message}",
                         eeszt_code=exc.code) from None
    except EesztLoginRequired as exc:
        raise RouteError(409, "eeszt_login_required", f"Log in to EESZT again: {exc.message}") from None
    except EesztRefused as exc:
        status = exc.status if exc.status in (404, 409, 422) else 422
        raise RouteError(status, "eeszt_refused", exc.message, eeszt_code=exc.code) from None


def _with_session(caller: Caller, call: Callable[[EesztClient, str], T]) -> T:
    """Call EESZT with the doctor's live login; ask for a new login if there is none or EESZT ended it."""
    live = service.current_session(caller.ctx, caller.user_id)
    if live is None:
        raise RouteError(409, "eeszt_login_required",
                         "Log in to EESZT first (eID card or token); a login is kept for "
                         f"{service.settings_of(caller.ctx).session_hours:g} hours")
    row, token = live
    try:
        return _eeszt(lambda: call(service.client_for(caller.ctx), token))
    except RouteError as exc:
        if exc.code == "eeszt_login_required":
            service.end_session(caller.ctx, row, "refused_by_eeszt")
        raise


def _taj(caller: Caller, patient_id: str) -> str:
    patient = caller.ctx.patient(patient_id)
    if patient is None:
        raise RouteError(404, "not_found", f"there is no patient {patient_id} in this clinic")
    taj = patient.identifiers.get(service.TAJ)
    if not taj:
        raise ValidationFailed([FieldError(f"identifiers.{service.TAJ}", "the patient has no TAJ number; EESZT "
                                           "needs it", "required")])
    return taj


def _doctor(caller: Caller) -> Doctor:
    with caller.ctx.session() as session:
        row = service.doctor(session, caller.clinic_id, caller.user_id)
    if row is None:
        raise RouteError(409, "stamp_number_missing", "your stamp number is not set: an administrator sets it on "
                                                      "the EESZT page (PUT .../x/eeszt/doctors/{user_id})")
    return row


# --- set-up --------------------------------------------------------------------------------------


@router.get("/status", summary="Set-up, certificate, my EESZT login and the sync backlog")
def status(caller: Caller = Depends(require(USE))) -> dict[str, Any]:
    ctx = caller.ctx
    settings = service.settings_of(ctx)
    certificate: dict[str, Any] | None = None
    if settings.client_certificate is not None:
        try:
            cert = service.certificate_of(settings)
            certificate = cert.summary(ctx.now())
            with ctx.session() as session:
                certificate["activated"] = session.exec(select(Certificate).where(
                    Certificate.clinic_id == caller.clinic_id, Certificate.fingerprint == cert.fingerprint)
                ).first() is not None
        except CertificateError as exc:
            certificate = {"problem": str(exc)}
    with ctx.session() as session:
        backlog = len(session.exec(select(SyncItem.id).where(
            SyncItem.clinic_id == caller.clinic_id, col(SyncItem.status) != "done")).all())
        me = service.doctor(session, caller.clinic_id, caller.user_id)
    return {"configured": settings.configured, "missing": settings.missing(),
            "institution_id": settings.institution_id, "unit_code": settings.unit_code,
            "certificate": certificate, "doctor": service.doctor_out(me, caller.user_id),
            "session": service.session_status(ctx, caller.user_id), "backlog": backlog}


@router.post("/certificate", summary="Upload the institution's certificate (PEM or PKCS#12) and activate it")
def upload_certificate(file: UploadFile | None = File(None, description="PEM or PKCS#12 (.p12/.pfx) file"),
                       password: str = Form("", description="The PKCS#12 / private key password, if any"),
                       sms_code: str = Form("", description="The activation code EESZT sent by SMS"),
                       caller: Caller = Depends(require(MANAGE))) -> dict[str, Any]:
    ctx = caller.ctx
    settings = service.settings_of(ctx)
    code = sms_code.strip()
    if not code.isdigit() or not 4 <= len(code) <= 10:
        raise ValidationFailed([FieldError("sms_code", "give the activation code EESZT sent by SMS (digits)",
                                           "required")])
    try:
        if file is not None:
            certificate = ClientCertificate.load(file.file.read(), password or None)
        else:
            certificate = service.certificate_of(settings)
    except service.NotConfigured:
        raise ValidationFailed([FieldError("file", "upload the certificate file", "required")]) from None
    except CertificateError as exc:
        raise ValidationFailed([FieldError("file", str(exc), exc.code)]) from None
    problem = certificate.problem_at(ctx.now())
    if problem:
        raise ValidationFailed([FieldError("file", problem, "certificate_not_valid")])
    answer = _eeszt(lambda: service.client_for(ctx, settings, certificate).activate(code))
    caller.save_settings({"client_certificate": certificate.pem_bundle()})
    now = ctx.now()
    with ctx.session() as session:
        session.add(Certificate(clinic_id=caller.clinic_id, fingerprint=certificate.fingerprint,
                                subject=certificate.subject[:500], not_before=certificate.not_before,
                                not_after=certificate.not_after, activated_at=now, activated_by=caller.user_id))
        caller.audit("certificate_activated", target=f"certificate:{certificate.fingerprint}",
                     data={"subject": certificate.subject, "not_after": certificate.not_after.isoformat()},
                     session=session)
    return {**certificate.summary(now), "activated": True, "eeszt": answer}


class StampIn(BaseModel):
    stamp_number: str = Field(description="The doctor's 5-digit stamp number (pecsétszám), e.g. 58012")


@router.get("/doctors", summary="Doctors' stamp numbers and EESZT login state")
def doctors(caller: Caller = Depends(require(MANAGE))) -> list[dict[str, Any]]:
    with caller.ctx.session() as session:
        rows = session.exec(select(Doctor).where(Doctor.clinic_id == caller.clinic_id)
                            .order_by(col(Doctor.user_id))).all()
    return [{**service.doctor_out(r, r.user_id), "session": service.session_status(caller.ctx, r.user_id)}
            for r in rows]


@router.put("/doctors/{user_id}", summary="Set a doctor's stamp number")
def set_doctor(user_id: int, body: StampIn, caller: Caller = Depends(require(MANAGE))) -> dict[str, Any]:
    digits = "".join(ch for ch in body.stamp_number if not ch.isspace() and ch != "-")
    if len(digits) != 5 or not digits.isascii() or not digits.isdigit() or digits == "00000":
        raise ValidationFailed([FieldError("stamp_number", "a stamp number has 5 digits, e.g. 58012", "invalid")])
    now = caller.ctx.now()
    with caller.ctx.session() as session:
        row = service.doctor(session, caller.clinic_id, user_id) or Doctor(clinic_id=caller.clinic_id,
                                                                           user_id=user_id, stamp_number=digits)
        row.stamp_number, row.updated_at, row.updated_by = digits, now, caller.user_id
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise RouteError(404, "not_found", f"there is no user {user_id}") from None
        caller.audit("stamp_number_set", target=f"user:{user_id}", data={"stamp_number": digits}, session=session)
        return service.doctor_out(row, user_id)


# --- doctors' EESZT login ------------------------------------------------------------------------


@router.get("/session", summary="My EESZT login: kept 7 hours, then asked again")
def my_session(caller: Caller = Depends(require(USE))) -> dict[str, Any]:
    return service.session_status(caller.ctx, caller.user_id)


@router.post("/session/eid", summary="Log in to EESZT with the eID card in the card reader")
def login_eid(caller: Caller = Depends(require(USE))) -> dict[str, Any]:
    row = _doctor(caller)
    answer = _eeszt(lambda: service.client_for(caller.ctx).login_eid(row.eeszt_user))
    service.start_session(caller.ctx, caller.user_id, "eid", str(answer["session"]))
    caller.audit("login", target=f"user:{caller.user_id}", data={"method": "eid"})
    return service.session_status(caller.ctx, caller.user_id)


class TokenLoginIn(BaseModel):
    password: str = Field(min_length=1, max_length=200, description="The EESZT (portal) password")
    otp: str = Field(pattern=r"^\d{6,8}$", description="The one-time code of the EESZT mobilToken")


@router.post("/session/token", summary="Log in to EESZT with password and one-time code")
def login_token(body: TokenLoginIn, caller: Caller = Depends(require(USE))) -> dict[str, Any]:
    row = _doctor(caller)
    if service.otp_replayed(caller.ctx, caller.user_id, body.otp):
        raise ValidationFailed([FieldError("otp", "this one-time code was just used; wait for the next one",
                                           "otp_replayed")])
    answer = _eeszt(lambda: service.client_for(caller.ctx).login_token(row.eeszt_user, body.password, body.otp))
    service.start_session(caller.ctx, caller.user_id, "token", str(answer["session"]))
    caller.audit("login", target=f"user:{caller.user_id}", data={"method": "token"})
    return service.session_status(caller.ctx, caller.user_id)


@router.delete("/session", summary="Log out of EESZT")
def logout(caller: Caller = Depends(require(USE))) -> dict[str, Any]:
    live = service.current_session(caller.ctx, caller.user_id)
    if live is not None:
        row, token = live
        service.end_session(caller.ctx, row, "logout")
        try:
            service.client_for(caller.ctx).logout(token)
        except (EesztUnavailable, EesztRefused, EesztLoginRequired):
            pass  # the local session is ended either way; EESZT's own expires on its side
    return service.session_status(caller.ctx, caller.user_id)


@router.get("/sessions", summary="Every doctor's EESZT login state in this clinic")
def sessions(caller: Caller = Depends(require(MANAGE))) -> list[dict[str, Any]]:
    with caller.ctx.session() as session:
        users = sorted(set(session.exec(select(DoctorSession.user_id).where(
            DoctorSession.clinic_id == caller.clinic_id)).all()))
    return [service.session_status(caller.ctx, u) for u in users]


# --- EHR documents -------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/documents", summary="The patient's EHR documents (restricted ones hidden)")
def documents(patient_id: str, request: Request, caller: Caller = Depends(require(USE))) -> Any:
    taj = _taj(caller, patient_id)
    return _answer(request, caller, _with_session(caller, lambda client, token: client.documents(token, taj)))


class BreakGlassIn(BaseModel):
    reason_code: str = Field(description="One of: " + ", ".join(f"{k} ({v})" for k, v in BREAK_GLASS_REASONS.items()))
    reason: str = Field(min_length=10, max_length=1000, description="Why the restricted documents are needed")


@router.post("/patients/{patient_id}/documents/break-glass",
             summary="Open the patient's restricted documents too (reason required, audited)")
def break_glass(patient_id: str, body: BreakGlassIn, caller: Caller = Depends(require(BREAK_GLASS))) -> dict[str, Any]:
    taj = _taj(caller, patient_id)
    answer = _with_session(caller, lambda client, token: client.break_glass(token, taj, body.reason_code,
                                                                            body.reason))
    caller.audit("break_glass", target=f"patient:{patient_id}", data={
        "reason_code": body.reason_code, "reason": body.reason,
        "documents": [d["id"] for d in answer.get("documents", [])]})
    return answer


# --- eProfile ------------------------------------------------------------------------------------


class EProfileIn(BaseModel):
    category: str = Field(pattern=r"^(allergy|intolerance|implant|chronic_disease|diagnosis|medication)$",
                          description="allergy, intolerance, implant, chronic_disease, diagnosis or medication")
    description: str = Field(min_length=1, max_length=1000)
    code: str | None = Field(None, max_length=20, description="BNO / ATC code, if any")


class EProfileChange(BaseModel):
    description: str = Field(min_length=1, max_length=1000)
    code: str | None = Field(None, max_length=20)


@router.get("/patients/{patient_id}/eprofile", summary="The patient's eProfile")
def eprofile(patient_id: str, request: Request, caller: Caller = Depends(require(USE))) -> Any:
    taj = _taj(caller, patient_id)
    return _answer(request, caller, _with_session(caller, lambda client, token: client.eprofile(token, taj)))


@router.post("/patients/{patient_id}/eprofile", status_code=201, summary="Add an eProfile entry")
def eprofile_add(patient_id: str, body: EProfileIn, caller: Caller = Depends(require(USE))) -> dict[str, Any]:
    taj = _taj(caller, patient_id)
    entry = _with_session(caller, lambda client, token: client.eprofile_create(token, taj, body.model_dump()))
    caller.audit("eprofile_created", target=f"patient:{patient_id}", data={"entry": entry.get("id")})
    return entry


@router.put("/patients/{patient_id}/eprofile/{entry_id}", summary="Change an eProfile entry (a new version)")
def eprofile_change(patient_id: str, entry_id: str, body: EProfileChange,
                    caller: Caller = Depends(require(USE))) -> dict[str, Any]:
    _taj(caller, patient_id)
    entry = _with_session(caller, lambda client, token: client.eprofile_update(token, entry_id, body.model_dump()))
    caller.audit("eprofile_updated", target=f"patient:{patient_id}",
                 data={"entry": entry_id, "version": entry.get("version")})
    return entry


@router.delete("/patients/{patient_id}/eprofile/{entry_id}", summary="Delete an eProfile entry this institution made")
def eprofile_delete(patient_id: str, entry_id: str, caller: Caller = Depends(require(USE))) -> dict[str, Any]:
    _taj(caller, patient_id)
    entry = _with_session(caller, lambda client, token: client.eprofile_delete(token, entry_id))
    caller.audit("eprofile_deleted", target=f"patient:{patient_id}", data={"entry": entry_id})
    return entry


# --- e-referrals ---------------------------------------------------------------------------------


@router.get("/referrals", summary="Find e-referrals by the patient's TAJ or by referral id")
def referrals(request: Request,
              patient_id: str | None = Query(None, description="Find the referrals of this patient (by TAJ)"),
              referral_id: str | None = Query(None, max_length=40, description="Find one referral by its id"),
              caller: Caller = Depends(require(USE))) -> Any:
    if not patient_id and not referral_id:
        raise ValidationFailed([FieldError("patient_id", "give patient_id or referral_id", "required")])
    taj = _taj(caller, patient_id) if patient_id and not referral_id else None
    return _answer(request, caller, _with_session(
        caller, lambda client, token: client.referrals(token, taj=taj, referral_id=referral_id)))


def _referral_route(action: str) -> Callable[..., dict[str, Any]]:
    def act(referral_id: str, caller: Caller = Depends(require(USE))) -> dict[str, Any]:
        answer = _with_session(caller, lambda client, token: client.referral_action(token, referral_id, action))
        caller.audit(f"referral_{action}", target=f"referral:{referral_id}", data={"status": answer.get("status")})
        return answer

    act.__name__ = f"referral_{action}"
    return act


for _action, _summary in (("reserve", "Reserve an e-referral for this institution"),
                          ("use", "Use (accept) an e-referral"), ("release", "Release a reserved e-referral")):
    router.add_api_route(f"/referrals/{{referral_id}}/{_action}", _referral_route(_action), methods=["POST"],
                         summary=_summary)


# --- visits and the sync backlog -----------------------------------------------------------------


@router.get("/visits/{appointment_id}", summary="A visit's EESZT event, report and sync items")
def visit(appointment_id: int, request: Request, caller: Caller = Depends(require(USE))) -> Any:
    with caller.ctx.session() as session:
        row = session.exec(select(Visit).where(Visit.clinic_id == caller.clinic_id,
                                               Visit.appointment_id == appointment_id)).first()
        items = session.exec(select(SyncItem).where(
            SyncItem.clinic_id == caller.clinic_id, SyncItem.appointment_id == appointment_id)
            ).all()
    order = list(service.STEPS.values())
    items = sorted(items, key=lambda i: (i.created_at, order.index(i.step) if i.step in order else len(order)))
    return _answer(request, caller, {"appointment_id": appointment_id, **service.visit_out(row, items)})


@router.get("/sync", summary="The clinic's EESZT sync items not yet done (the backlog)")
def backlog(status: str | None = Query(None, pattern=r"^(queued|retrying|failed|done)$"),
            caller: Caller = Depends(require(MANAGE))) -> list[dict[str, Any]]:
    query = select(SyncItem).where(SyncItem.clinic_id == caller.clinic_id)
    query = query.where(SyncItem.status == status) if status else query.where(col(SyncItem.status) != "done")
    with caller.ctx.session() as session:
        items = session.exec(query.order_by(col(SyncItem.created_at))).all()
    return [service.sync_out(i) for i in items]
