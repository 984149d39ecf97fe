"""Log in and out, who am I, own password, own API tokens, and the login history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select

from core import audit
from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth import login as login_service
from core.auth import sessions
from core.auth.deps import Principal, check_same_origin, current_principal, permission
from core.auth.errors import forbidden, not_found
from core.auth.permissions import catalog
from core.auth.users import change_own_password
from core.clock import now
from core.db import transaction
from core.models.auth import ApiToken, LoginAttempt, Membership, User
from core.models.clinic import Clinic
from plugin_sdk.errors import FieldError, ValidationFailed

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginIn(BaseModel):
    login: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=2000)


class ClinicAccess(BaseModel):
    clinic_id: int
    name: str
    role: str
    permissions: list[str]


class UserOut(BaseModel):
    id: int
    login: str
    name: str
    email: str
    phone: str
    speciality: str
    active: bool
    must_change_password: bool


class MeOut(BaseModel):
    user: UserOut
    method: str = Field(description="session or token")
    csrf_token: str | None = Field(None, description="Send as X-CSRF-Token with unsafe requests (sessions only).")
    clinics: list[ClinicAccess]


class PasswordIn(BaseModel):
    current_password: str = Field(max_length=2000)
    new_password: str = Field(max_length=2000)


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] | None = Field(None, description="Permission codes to limit the token to; default: all of yours.")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="Default: never expires.")


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="prx_<id>: identifies the token in logs without revealing it")
    scopes: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret token. Shown only this once.")


class LoginAttemptOut(BaseModel):
    id: int
    login: str
    user_id: int | None
    ip: str
    user_agent: str
    at: datetime
    success: bool
    reason: str


class LoginPage(BaseModel):
    items: list[LoginAttemptOut]
    total: int
    limit: int
    offset: int


def user_out(user: User) -> dict[str, Any]:
    return {k: getattr(user, k) for k in UserOut.model_fields}


def _client(request: Request) -> tuple[str, str]:
    return (request.client.host if request.client else ""), request.headers.get("user-agent", "")[:300]


def _me(praxis: Praxis, principal: Principal) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        user = session.get(User, principal.user_id)
        assert user is not None
        names = dict(session.exec(select(Clinic.id, Clinic.name).where(
            col(Clinic.id).in_(principal.clinic_ids()))).all()) if principal.clinic_ids() else {}
    clinics = [ClinicAccess(clinic_id=c, name=names.get(c, ""), role=principal.roles[c],
                            permissions=sorted(principal.permissions_in(c))) for c in principal.clinic_ids()]
    return {"user": user_out(user), "method": principal.method, "csrf_token": principal.csrf_token,
            "clinics": clinics}


@router.post("/login", response_model=MeOut, responses={401: {}, 403: {}, 429: {}})
def login(body: LoginIn, request: Request, response: Response, praxis: Praxis = Depends(get_praxis)) -> dict[str, Any]:
    """Log in with login and password. Sets the ``praxis_session`` cookie and returns the CSRF token."""
    check_same_origin(request)  # no logging a victim's browser into the attacker's account
    ip, agent = _client(request)
    result = login_service.authenticate(praxis, body.login, body.password, ip=ip, user_agent=agent)
    response.set_cookie(
        sessions.COOKIE_NAME, result.raw_session, max_age=int(sessions.ABSOLUTE_TIMEOUT.total_seconds()),
        httponly=True, samesite="lax", secure=praxis.settings.secure_cookies, path="/",
    )
    with Session(praxis.engine) as session:
        from core.auth.deps import load_principal

        principal = load_principal(session, praxis.runtime, result.user, method="session")
    principal.csrf_token = result.csrf_token
    return _me(praxis, principal)


@router.post("/logout", status_code=204)
def logout(response: Response, praxis: Praxis = Depends(get_praxis),
           who: Principal = Depends(current_principal)) -> None:
    """End this session (API tokens are revoked with DELETE /api/auth/tokens/{id})."""
    if who.session_id is not None:
        login_service.logout(praxis, who.session_id, who.actor)
    response.delete_cookie(sessions.COOKIE_NAME, path="/", httponly=True, samesite="lax",
                           secure=praxis.settings.secure_cookies)


@router.get("/me", response_model=MeOut)
def me(praxis: Praxis = Depends(get_praxis), who: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The caller, their clinics, role and permissions in each, and (for sessions) the CSRF token."""
    return _me(praxis, who)


@router.post("/password", status_code=204, responses={422: {}})
def change_password(body: PasswordIn, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(current_principal)) -> None:
    """Change your own password (policy: 10+ characters, not the login, not one of the last 5).
    Your other sessions end."""
    with transaction(praxis.engine) as session:
        user = session.get(User, who.user_id)
        assert user is not None
        change_own_password(session, user, body.current_password, body.new_password, keep_session_id=who.session_id)


def _token_out(row: ApiToken) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "prefix": f"{sessions.TOKEN_PREFIX}_{row.public_id}",
            "scopes": row.scopes, "created_at": row.created_at, "expires_at": row.expires_at,
            "last_used_at": row.last_used_at, "revoked": row.revoked_at is not None}


@router.post("/tokens", response_model=NewTokenOut, status_code=201, responses={403: {}, 422: {}})
def create_token(body: TokenIn, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Create an API token for yourself. The token is in the answer once and never again."""
    if who.scopes is not None:
        raise forbidden("a token limited to scopes cannot create tokens", "scoped_token")
    if body.scopes is not None:
        unknown = catalog(praxis.runtime).unknown(body.scopes)
        if unknown:
            raise ValidationFailed([FieldError("scopes", f"unknown permission(s): {', '.join(unknown)}",
                                               "unknown_permission")])
    expires = now() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    with transaction(praxis.engine) as session:
        new = sessions.create_token(session, who.user_id, body.name.strip(), scopes=body.scopes, expires_at=expires)
        audit.record(session, who.actor, "auth.token_created", target=f"user:{who.user_id}",
                     data={"token": new.row.id, "name": new.row.name, "scopes": new.row.scopes,
                           "expires_at": expires})
    return {**_token_out(new.row), "token": new.secret}


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(praxis: Praxis = Depends(get_praxis), who: Principal = Depends(current_principal)) -> list[Any]:
    """Your API tokens (never their secrets)."""
    with Session(praxis.engine) as session:
        rows = session.exec(select(ApiToken).where(ApiToken.user_id == who.user_id).order_by(col(ApiToken.id))).all()
    return [_token_out(r) for r in rows]


@router.delete("/tokens/{token_id}", status_code=204, responses={404: {}})
def revoke_token(token_id: int, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(current_principal)) -> None:
    """Revoke one of your API tokens; it stops working at once."""
    with transaction(praxis.engine) as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.user_id != who.user_id:
            raise not_found(f"you have no token {token_id}")
        if row.revoked_at is None:
            row.revoked_at = now()
            session.add(row)
            audit.record(session, who.actor, "auth.token_revoked", target=f"user:{who.user_id}",
                         data={"token": row.id, "name": row.name})


@router.get("/logins", response_model=LoginPage)
def login_history(
    praxis: Praxis = Depends(get_praxis),
    who: Principal = Depends(permission("users.manage")),
    user_id: int | None = Query(None, description="Only this user's attempts."),
    success: bool | None = Query(None),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """Login attempts of the people working in the clinics where you manage staff, newest first."""
    with Session(praxis.engine) as session:
        visible = select(Membership.user_id).where(col(Membership.clinic_id).in_(who.clinics_with("users.manage")))
        query = select(LoginAttempt).where(col(LoginAttempt.user_id).in_(visible))
        if user_id is not None:
            query = query.where(LoginAttempt.user_id == user_id)
        if success is not None:
            query = query.where(LoginAttempt.success == success)
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(query.order_by(col(LoginAttempt.at).desc(), col(LoginAttempt.id).desc())
                            .limit(limit).offset(offset)).all()
    return {"items": [r.model_dump() for r in rows], "total": total, "limit": limit, "offset": offset}


