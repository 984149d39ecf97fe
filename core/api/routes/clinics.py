"""Clinics (the tenants): the caller's clinics, creating and changing them, and who opened which patient."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select

from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth import clinics as service
from core.auth.deps import Principal, clinic_permission, permission
from core.auth.errors import not_found
from core.db import transaction
from core.models.auth import AccessLog, User
from core.models.clinic import Clinic

router = APIRouter(prefix="/api/clinics", tags=["clinics"])


class ClinicIn(BaseModel):
    name: str = Field(max_length=400)
    country: str = Field(max_length=10, description="ISO 3166 alpha-2, e.g. HU")
    timezone: str = Field(max_length=100, description="IANA zone, e.g. Europe/Budapest")
    locale: str = Field(max_length=16, description="One of en, hu, ko, ru, zh")
    address: str = Field("", max_length=1000)
    phone: str = Field("", max_length=100)
    email: str = Field("", max_length=400)


class ClinicPatch(BaseModel):
    name: str | None = Field(None, max_length=400)
    country: str | None = Field(None, max_length=10)
    timezone: str | None = Field(None, max_length=100)
    locale: str | None = Field(None, max_length=16)
    address: str | None = Field(None, max_length=1000)
    phone: str | None = Field(None, max_length=100)
    email: str | None = Field(None, max_length=400)


class ClinicOut(BaseModel):
    id: int
    name: str
    country: str
    timezone: str
    locale: str
    address: str
    phone: str
    email: str
    created_at: datetime
    role: str | None = Field(None, description="Your role in this clinic.")


class AccessOut(BaseModel):
    id: int
    user_id: int | None
    user_name: str
    patient_id: str
    action: str
    at: datetime


class AccessPage(BaseModel):
    items: list[AccessOut]
    total: int
    limit: int
    offset: int


def _out(clinic: Clinic, who: Principal) -> dict[str, Any]:
    assert clinic.id is not None
    data = {k: getattr(clinic, k) for k in ClinicOut.model_fields if k != "role"}
    return {**data, "role": who.roles.get(clinic.id)}


@router.get("", response_model=list[ClinicOut])
def list_clinics(praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(permission("clinics.view"))) -> list[dict[str, Any]]:
    """The clinics where you may see the clinic's details."""
    ids = who.clinics_with("clinics.view")
    with Session(praxis.engine) as session:
        rows = session.exec(select(Clinic).where(col(Clinic.id).in_(ids)).order_by(col(Clinic.name))).all()
    return [_out(c, who) for c in rows]


@router.post("", response_model=ClinicOut, status_code=201, responses={403: {}, 422: {}})
def create_clinic(body: ClinicIn, praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(permission("clinics.manage"))) -> dict[str, Any]:
    """Create a clinic; you become its administrator. Plugins are enabled in it as plugins.toml says.
    (The very first clinic is created with ``praxis clinics create``.)"""
    with transaction(praxis.engine) as session:
        creator = session.get(User, who.user_id)
        assert creator is not None
        clinic = service.create_clinic(praxis, session, who.actor, body.model_dump(), admin=creator)
    praxis.runtime.state.invalidate()
    assert clinic.id is not None
    who.roles[clinic.id] = "admin"
    return _out(clinic, who)


@router.get("/{clinic_id}", response_model=ClinicOut, responses={404: {}})
def get_clinic(clinic_id: int, praxis: Praxis = Depends(get_praxis),
               who: Principal = Depends(clinic_permission("clinics.view"))) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise not_found(f"there is no clinic {clinic_id}")
    return _out(clinic, who)


@router.patch("/{clinic_id}", response_model=ClinicOut, responses={404: {}, 422: {}})
def update_clinic(clinic_id: int, body: ClinicPatch, praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(clinic_permission("clinics.manage"))) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        clinic = session.get(Clinic, clinic_id)
        if clinic is None:
            raise not_found(f"there is no clinic {clinic_id}")
        service.update_clinic(session, who.actor, clinic, body.model_dump(exclude_unset=True, exclude_none=True))
    praxis.runtime.state.invalidate()
    return _out(clinic, who)


@router.get("/{clinic_id}/access-log", response_model=AccessPage)
def access_log(
    clinic_id: int,
    praxis: Praxis = Depends(get_praxis),
    _: Principal = Depends(clinic_permission("audit.view")),
    patient_id: str | None = Query(None, max_length=64, description="Only this patient."),
    user_id: int | None = Query(None, description="Only this member of staff."),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """Who opened which patient in this clinic, newest first."""
    with Session(praxis.engine) as session:
        query = select(AccessLog).where(AccessLog.clinic_id == clinic_id)
        if patient_id is not None:
            query = query.where(AccessLog.patient_id == patient_id)
        if user_id is not None:
            query = query.where(AccessLog.user_id == user_id)
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(query.order_by(col(AccessLog.at).desc(), col(AccessLog.id).desc())
                            .limit(limit).offset(offset)).all()
    return {"items": [r.model_dump() for r in rows], "total": total, "limit": limit, "offset": offset}
