"""Staff accounts, their roles and per-person permission overrides in each clinic, custom roles, and the
permission catalog.

A caller sees the people who work in the clinics where they hold ``users.manage``, and only those
clinics' memberships of them. See ``core.auth.users`` for who may change what.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, or_, select

from core.api.deps import get_praxis
from core.api.routes.auth import UserOut, user_out
from core.app_context import Praxis
from core.auth import identifiers as staff_identifiers
from core.auth import passwords
from core.auth import users as service
from core.auth.deps import Principal, any_permission, clinic_permission, permission
from core.auth.errors import not_found
from core.auth.permissions import BUILTIN_ROLES, catalog, ensure_builtin_roles
from core.db import transaction
from core.models.auth import Membership, Role, User, UserPermissionOverride
from core.models.clinic import Clinic

router = APIRouter(prefix="/api/users", tags=["users"])
roles_router = APIRouter(prefix="/api/roles", tags=["roles"])
permissions_router = APIRouter(prefix="/api/permissions", tags=["roles"])


class MembershipIn(BaseModel):
    role: str = Field(description="Role code: admin, doctor, assistant, receptionist or a custom role.")
    grant: list[str] = Field(default_factory=list, description="Permissions given beyond the role.")
    deny: list[str] = Field(default_factory=list, description="Permissions of the role withheld from this person.")


class NewMembershipIn(MembershipIn):
    clinic_id: int


class MembershipOut(BaseModel):
    clinic_id: int
    clinic_name: str
    role: str
    grant: list[str]
    deny: list[str]
    permissions: list[str] = Field(description="Effective permissions in this clinic.")


class IdentifierOut(BaseModel):
    type: str = Field(description="Identifier type code, e.g. hu.stamp")
    title: str
    country: str | None
    value: str = Field(description="As normalised by the type")


class UserDetail(UserOut):
    memberships: list[MembershipOut]
    identifiers: list[IdentifierOut] = Field(default_factory=list, description="Professional identifiers "
                                             "(types contributed by the plugins enabled in the person's clinics).")


IDENTIFIERS_DOC = ("Professional identifiers by type code, e.g. {\"hu.stamp\": \"12345\"}; types come from the "
                   "plugins enabled in the person's clinics. null or an empty string removes one; types left out "
                   "are kept.")


class UserPage(BaseModel):
    items: list[UserDetail]
    total: int
    limit: int
    offset: int


class UserIn(BaseModel):
    login: str = Field(max_length=200)
    name: str = Field(max_length=400)
    email: str = Field("", max_length=400)
    phone: str = Field("", max_length=100)
    speciality: str = Field("", max_length=400)
    password: str | None = Field(None, max_length=2000, description="Leave out to create an account without "
                                 "password login (e.g. for API tokens only).")
    must_change_password: bool = Field(True, description="Ask for a new password at first login.")
    memberships: list[NewMembershipIn] = Field(min_length=1)
    identifiers: dict[str, str | None] = Field(default_factory=dict, max_length=50, description=IDENTIFIERS_DOC)


class UserPatch(BaseModel):
    login: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=400)
    email: str | None = Field(None, max_length=400)
    phone: str | None = Field(None, max_length=100)
    speciality: str | None = Field(None, max_length=400)
    active: bool | None = None
    must_change_password: bool | None = None
    identifiers: dict[str, str | None] | None = Field(None, max_length=50, description=IDENTIFIERS_DOC)


class PasswordResetIn(BaseModel):
    password: str = Field(max_length=2000)
    must_change_password: bool = True


class RoleIn(BaseModel):
    code: str = Field(max_length=100)
    title: str = Field(max_length=400)
    permissions: list[str] = Field(default_factory=list)


class RolePatch(BaseModel):
    title: str | None = Field(None, max_length=400)
    permissions: list[str] | None = None


class RoleOut(BaseModel):
    id: int
    code: str
    title: str
    is_builtin: bool
    permissions: list[str]
    clinics_in_use: list[int] = Field(description="Clinics (of yours) where someone holds this role.")


class PermissionOut(BaseModel):
    code: str
    title: str
    plugin: str | None


# --- helpers -------------------------------------------------------------------------------------------


def _detail(session: Session, praxis: Praxis, user: User, who: Principal) -> dict[str, Any]:
    assert user.id is not None
    cat = catalog(praxis.runtime)
    rows = session.exec(
        select(Membership, Role.code, Clinic.name).join(Role, col(Role.id) == Membership.role_id)
        .join(Clinic, col(Clinic.id) == Membership.clinic_id)
        .where(Membership.user_id == user.id).order_by(col(Membership.clinic_id))
    ).all()
    overrides = session.exec(select(UserPermissionOverride).where(UserPermissionOverride.user_id == user.id)).all()
    memberships = []
    for membership, role_code, clinic_name in rows:
        if not who.is_member(membership.clinic_id):
            continue
        mine = [o for o in overrides if o.clinic_id == membership.clinic_id]
        memberships.append({
            "clinic_id": membership.clinic_id, "clinic_name": clinic_name, "role": role_code,
            "grant": sorted(o.permission for o in mine if o.granted),
            "deny": sorted(o.permission for o in mine if not o.granted),
            "permissions": sorted(service.effective_in(session, cat, user.id, membership.clinic_id) or ()),
        })
    return {**user_out(user), "memberships": memberships,
            "identifiers": staff_identifiers.identifiers_of(session, praxis.runtime, user.id)}


def _visible(session: Session, who: Principal, user_id: int) -> User:
    return service.visible_user(session, who, user_id)


# --- users ---------------------------------------------------------------------------------------------


@router.get("", response_model=UserPage)
def list_users(
    praxis: Praxis = Depends(get_praxis),
    who: Principal = Depends(permission("users.manage")),
    clinic_id: int | None = Query(None, description="Only people working in this clinic."),
    q: str | None = Query(None, max_length=100, description="Part of the name or login."),
    active: bool | None = Query(None),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """People working in the clinics where you manage staff."""
    clinics = who.clinics_with("users.manage")
    if clinic_id is not None:
        clinics = [c for c in clinics if c == clinic_id]
    with Session(praxis.engine) as session:
        query = select(User).where(col(User.id).in_(
            select(Membership.user_id).where(col(Membership.clinic_id).in_(clinics))))
        if q:
            pattern = f"%{q.strip().casefold()}%"
            query = query.where(or_(func.lower(User.name).like(pattern), col(User.login).like(pattern)))
        if active is not None:
            query = query.where(User.active == active)
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(query.order_by(col(User.name), col(User.id)).limit(limit).offset(offset)).all()
        items = [_detail(session, praxis, u, who) for u in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("", response_model=UserDetail, status_code=201, responses={403: {}, 404: {}, 422: {}})
def create_user(body: UserIn, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(permission("users.manage"))) -> dict[str, Any]:
    """Create an account working in the given clinics (you must manage staff in each)."""
    with transaction(praxis.engine) as session:
        user = service.create_user(
            session, catalog(praxis.runtime), who.actor, login=body.login, name=body.name, password=body.password,
            email=body.email, phone=body.phone, speciality=body.speciality,
            must_change_password=body.must_change_password and body.password is not None,
            memberships=[service.MembershipSpec(m.clinic_id, m.role, m.grant, m.deny) for m in body.memberships],
            by=who,
        )
        if body.identifiers:
            assert user.id is not None
            staff_identifiers.set_identifiers(session, praxis.runtime, who.actor, user.id, body.identifiers)
        return _detail(session, praxis, user, who)


@router.get("/{user_id}", response_model=UserDetail, responses={404: {}})
def get_user(user_id: int, praxis: Praxis = Depends(get_praxis),
             who: Principal = Depends(permission("users.manage"))) -> dict[str, Any]:
    with Session(praxis.engine) as session:
        return _detail(session, praxis, _visible(session, who, user_id), who)


@router.patch("/{user_id}", response_model=UserDetail, responses={403: {}, 404: {}, 409: {}, 422: {}})
def update_user(user_id: int, body: UserPatch, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(permission("users.manage"))) -> dict[str, Any]:
    """Change the account. Needs ``users.manage`` in every clinic the person works in. Deactivating ends
    their sessions and revokes their API tokens."""
    with transaction(praxis.engine) as session:
        user = _visible(session, who, user_id)
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        identifiers = changes.pop("identifiers", None)
        if "identifiers" in body.model_fields_set and body.identifiers is not None:
            identifiers = body.identifiers  # keeps null values: they remove an identifier
        service.update_user(session, catalog(praxis.runtime), who.actor, user, changes, by=who)
        if identifiers:
            staff_identifiers.set_identifiers(session, praxis.runtime, who.actor, user_id, identifiers)
        return _detail(session, praxis, user, who)


@router.delete("/{user_id}", status_code=204, responses={403: {}, 404: {}, 409: {}})
def deactivate_user(user_id: int, praxis: Praxis = Depends(get_praxis),
                    who: Principal = Depends(permission("users.manage"))) -> None:
    """Deactivate the account (accounts are never erased: the audit journal refers to them)."""
    with transaction(praxis.engine) as session:
        user = _visible(session, who, user_id)
        if user.active:
            service.deactivate(session, catalog(praxis.runtime), who.actor, user, by=who)


@router.post("/{user_id}/password", status_code=204, responses={403: {}, 404: {}, 422: {}})
def reset_password(user_id: int, body: PasswordResetIn, praxis: Praxis = Depends(get_praxis),
                   who: Principal = Depends(permission("users.manage"))) -> None:
    """Set a new password for someone; by default they must change it when they next log in."""
    with transaction(praxis.engine) as session:
        user = _visible(session, who, user_id)
        service.reset_password(session, who.actor, user, body.password, must_change=body.must_change_password, by=who)


@router.post("/{user_id}/unlock", status_code=204, responses={404: {}})
def unlock_user(user_id: int, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(permission("users.manage"))) -> None:
    """Lift a lockout after failed logins."""
    from core import audit

    with transaction(praxis.engine) as session:
        user = _visible(session, who, user_id)
        cleared = passwords.unlock(session, user.login)
        audit.record(session, who.actor, "user.unlocked", target=f"user:{user.id}", data={"cleared": cleared})


@router.put("/{user_id}/memberships/{clinic_id}", response_model=UserDetail,
            responses={403: {}, 404: {}, 409: {}, 422: {}})
def set_membership(user_id: int, clinic_id: int, body: MembershipIn, praxis: Praxis = Depends(get_praxis),
                   who: Principal = Depends(clinic_permission("users.manage"))) -> dict[str, Any]:
    """Give the person a role in this clinic, with exactly these per-person grants and denials.
    You cannot give permissions you do not hold here."""
    with transaction(praxis.engine) as session:
        user = _visible(session, who, user_id)
        service.set_membership(session, catalog(praxis.runtime), who.actor, user,
                               service.MembershipSpec(clinic_id, body.role, body.grant, body.deny), by=who)
        return _detail(session, praxis, user, who)


@router.delete("/{user_id}/memberships/{clinic_id}", status_code=204, responses={404: {}, 409: {}})
def remove_membership(user_id: int, clinic_id: int, praxis: Praxis = Depends(get_praxis),
                      who: Principal = Depends(clinic_permission("users.manage"))) -> None:
    """The person no longer works in this clinic."""
    with transaction(praxis.engine) as session:
        user = _visible(session, who, user_id)
        service.remove_membership(session, catalog(praxis.runtime), who.actor, user, clinic_id, by=who)


# --- roles ---------------------------------------------------------------------------------------------


def _role_out(session: Session, praxis: Praxis, role: Role, who: Principal) -> dict[str, Any]:
    assert role.id is not None
    return {"id": role.id, "code": role.code, "title": role.title, "is_builtin": role.is_builtin,
            "permissions": sorted(service.grants_of_role(session, catalog(praxis.runtime), role)),
            "clinics_in_use": [c for c in service.roles_in_use(session, role.id) if who.is_member(c)]}


def _role(session: Session, code: str) -> Role:
    ensure_builtin_roles(session)
    role = session.exec(select(Role).where(Role.code == code)).first()
    if role is None:
        raise not_found(f"there is no role {code!r}")
    return role


@roles_router.get("", response_model=list[RoleOut])
def list_roles(praxis: Praxis = Depends(get_praxis),
               who: Principal = Depends(permission("roles.manage"))) -> list[dict[str, Any]]:
    """Built-in roles first, then custom roles."""
    with transaction(praxis.engine) as session:
        ensure_builtin_roles(session)
        roles = session.exec(select(Role)).all()
        order = list(BUILTIN_ROLES)
        roles = sorted(roles, key=lambda r: (not r.is_builtin, order.index(r.code) if r.code in order else 0, r.code))
        return [_role_out(session, praxis, r, who) for r in roles]


@roles_router.post("", response_model=RoleOut, status_code=201, responses={422: {}})
def create_role(body: RoleIn, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(permission("roles.manage"))) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        role = service.create_role(session, catalog(praxis.runtime), who.actor, code=body.code, title=body.title,
                                   permissions=body.permissions)
        return _role_out(session, praxis, role, who)


@roles_router.get("/{code}", response_model=RoleOut, responses={404: {}})
def get_role(code: str, praxis: Praxis = Depends(get_praxis),
             who: Principal = Depends(permission("roles.manage"))) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        return _role_out(session, praxis, _role(session, code), who)


@roles_router.patch("/{code}", response_model=RoleOut, responses={403: {}, 404: {}, 409: {}, 422: {}})
def update_role(code: str, body: RolePatch, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(permission("roles.manage"))) -> dict[str, Any]:
    """Change a custom role. Needs ``roles.manage`` and every permission it gives in each clinic using it."""
    with transaction(praxis.engine) as session:
        role = service.update_role(session, catalog(praxis.runtime), who.actor, _role(session, code),
                                   title=body.title, permissions=body.permissions, by=who)
        return _role_out(session, praxis, role, who)


@roles_router.delete("/{code}", status_code=204, responses={404: {}, 409: {}})
def delete_role(code: str, praxis: Praxis = Depends(get_praxis),
                who: Principal = Depends(permission("roles.manage"))) -> None:
    """Delete a custom role nobody holds."""
    with transaction(praxis.engine) as session:
        service.delete_role(session, who.actor, _role(session, code))


@permissions_router.get("", response_model=list[PermissionOut])
def list_permissions(praxis: Praxis = Depends(get_praxis),
                     _: Principal = Depends(any_permission("users.manage", "roles.manage"))) -> list[dict[str, Any]]:
    """Every permission: the core's and those the installed plugins add."""
    return [{"code": p.code, "title": p.title, "plugin": p.plugin} for p in catalog(praxis.runtime).all()]
