"""Admin: the clinic's staff (accounts, role and per-person permission overrides here) and the roles.

Everything goes through ``core.auth.users`` with ``by=`` the acting person, exactly as ``/api/users`` and
``/api/roles`` do: nobody hands out permissions they do not hold, account-wide changes need ``users.manage``
in every clinic of the person, and a clinic is never left without someone who can manage its staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlmodel import Session, col, func, or_, select

from core.auth import passwords
from core.auth import users as service
from core.auth.errors import ApiError
from core.auth.permissions import BUILTIN_ROLES, catalog, ensure_builtin_roles
from core.db import transaction
from core.models.auth import Membership, Role, User, UserPermissionOverride
from core.models.clinic import Clinic
from plugin_sdk.errors import ValidationFailed
from ui import i18n, menu
from ui.i18n import N_, _
from ui.screens import FORM, Errors, call, field_error_map, flag, form_of, text
from ui.web import Page, PageError, clinic_page, redirect_with_flash, render

router = APIRouter(prefix="/clinics/{clinic_id}/admin", include_in_schema=False)
menu.register(menu.CoreItem("staff", N_("Staff"), "/clinics/{clinic_id}/admin/staff", "users.manage", 800))
menu.register(menu.CoreItem("roles", N_("Roles"), "/clinics/{clinic_id}/admin/roles", "roles.manage", 810))

# The core's permission and built-in role titles (msgids of core.auth.permissions), for the catalog.
CORE_TITLES = (
    N_("See the clinic's details"), N_("Create clinics and change their details"),
    N_("Manage staff accounts, their roles and permissions"), N_("Create and change custom roles"),
    N_("Read the audit journal and the patient access log"), N_("See plugins and their state"),
    N_("Enable, disable and configure plugins"), N_("See outgoing messages and background work"),
    N_("Retry or discard outgoing messages and background work"), N_("Open patient records"),
    N_("Register patients and change their records"), N_("Move patients to the trash and restore them"),
    N_("Merge duplicate patients"), N_("See national identifiers unmasked"), N_("See the appointment book"),
    N_("Book, move and cancel appointments"), N_("Book over an existing appointment (overbooking)"),
    N_("Change working schedules, rooms and days off"),
    N_("Administrator"), N_("Doctor"), N_("Assistant"), N_("Receptionist"),
)
DENIED = {
    "escalation": N_("You cannot give permissions you do not hold yourself."),
    "not_all_clinics": N_("This person also works in clinics where you cannot manage staff; an administrator of "
                          "all of their clinics can change the account."),
    "last_manager": N_("The clinic would be left with nobody who can manage its staff."),
    "self_deactivation": N_("You cannot deactivate your own account."),
    "builtin_role": N_("Built-in roles cannot be changed; create a custom role or use per-person overrides."),
    "role_in_use": N_("People still hold this role; give them another role first."),
    "forbidden": N_("You do not have permission to do this."),
}


def _denied(exc: ApiError) -> str:
    return i18n.gettext(DENIED.get(exc.code, DENIED["forbidden"]))


def role_title(role: Role) -> str:
    return i18n.gettext(role.title) if role.is_builtin else role.title


@dataclass
class PermissionRow:
    code: str
    title: str
    plugin: str | None
    in_role: bool
    override: str  # "", "grant" or "deny"
    effective: bool


def _roles(session: Session) -> list[Role]:
    ensure_builtin_roles(session)
    order = list(BUILTIN_ROLES)
    return sorted(session.exec(select(Role)).all(),
                  key=lambda r: (not r.is_builtin, order.index(r.code) if r.code in order else 0, r.code))


# --- people ----------------------------------------------------------------------------------------------------


@router.get("/staff")
def staff_list(clinic_id: int, q: str = Query("", max_length=100), page: Page = Depends(clinic_page("users.manage"))
               ) -> Response:
    with Session(page.praxis.engine) as session:
        query = (select(User, Role).join(Membership, col(Membership.user_id) == col(User.id))
                 .join(Role, col(Role.id) == col(Membership.role_id)).where(Membership.clinic_id == clinic_id))
        if q.strip():
            pattern = f"%{q.strip().casefold()}%"
            query = query.where(or_(func.lower(User.name).like(pattern), col(User.login).like(pattern)))
        rows = session.exec(query.order_by(col(User.active).desc(), col(User.name))).all()
        overrides = {uid for uid in session.exec(select(UserPermissionOverride.user_id).where(
            UserPermissionOverride.clinic_id == clinic_id)).all()}
        with i18n.using(page.locale):
            people = [{"user": u, "role": role_title(r), "overrides": u.id in overrides} for u, r in rows]
    return render(page, "admin/staff.html", {"people": people, "q": q, "tab": "people"})


def _new_values(page: Page, form: dict[str, Any], errors: Errors) -> dict[str, Any]:
    with Session(page.praxis.engine) as session, i18n.using(page.locale):
        roles = [(r.code, role_title(r)) for r in _roles(session)]
    return {"form": form, "errors": errors, "roles": roles, "min_length": passwords.MIN_LENGTH, "tab": "people"}


@router.get("/staff/new")
def new_person(clinic_id: int, page: Page = Depends(clinic_page("users.manage"))) -> Response:
    form = {"login": "", "name": "", "email": "", "phone": "", "speciality": "", "role": "receptionist",
            "must_change_password": True}
    return render(page, "admin/staff_new.html", _new_values(page, form, {}))


@router.post("/staff/new")
async def create_person(clinic_id: int, page: Page = Depends(clinic_page("users.manage"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    values = {k: text(form, k) for k in ("login", "name", "email", "phone", "speciality", "role")}
    values["must_change_password"] = flag(form, "must_change_password")
    password = form.get("password") if isinstance(form.get("password"), str) else ""

    def create() -> int:
        with transaction(page.praxis.engine) as session:
            user = service.create_user(
                session, catalog(page.praxis.runtime), page.principal.actor, login=values["login"],  # type: ignore[union-attr]
                name=values["name"], password=password or None, email=values["email"], phone=values["phone"],
                speciality=values["speciality"], must_change_password=values["must_change_password"] and bool(password),
                memberships=[service.MembershipSpec(clinic_id, values["role"] or "receptionist")], by=page.principal)
            assert user.id is not None
            return user.id

    try:
        user_id = await call(page, create)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            errors = field_error_map(exc, rename=lambda f: "role" if f.startswith("memberships") else f,
                                     known=("login", "name", "email", "phone", "speciality", "role", "password"))
        return render(page, "admin/staff_new.html", _new_values(page, values, errors), status=422)
    except ApiError as exc:
        with i18n.using(page.locale):
            errors = {FORM: [_denied(exc)]}
        return render(page, "admin/staff_new.html", _new_values(page, values, errors), status=exc.status_code)
    with i18n.using(page.locale):
        page.flash(_("The account of %(name)s is created.") % {"name": values["name"]})
    return redirect_with_flash(page, f"/clinics/{clinic_id}/admin/staff/{user_id}")


def _person(page: Page, user_id: int, *, errors: Errors | None = None, form: dict[str, Any] | None = None,
            status: int = 200) -> Response:
    assert page.principal is not None and page.clinic_id is not None
    cat = catalog(page.praxis.runtime)
    with Session(page.praxis.engine) as session, i18n.using(page.locale):
        try:
            user = service.visible_user(session, page.principal, user_id)
        except ApiError:
            raise PageError(404, "not_found") from None
        membership = session.exec(select(Membership).where(Membership.user_id == user_id,
                                                           Membership.clinic_id == page.clinic_id)).first()
        if membership is None:
            raise PageError(404, "not_found")
        roles = _roles(session)
        role = next(r for r in roles if r.id == membership.role_id)
        grants = service.grants_of_role(session, cat, role)
        overrides = {o.permission: o.granted for o in session.exec(select(UserPermissionOverride).where(
            UserPermissionOverride.user_id == user_id, UserPermissionOverride.clinic_id == page.clinic_id)).all()}
        effective = service.effective_in(session, cat, user_id, page.clinic_id) or frozenset()
        rows = [PermissionRow(p.code, i18n.plugin_text(p.plugin, p.title), p.plugin, p.code in grants,
                              "" if p.code not in overrides else ("grant" if overrides[p.code] else "deny"),
                              p.code in effective) for p in cat.all()]
        others = []
        for m in service.memberships_of(session, user_id):
            if m.clinic_id != page.clinic_id and page.principal.is_member(m.clinic_id):
                clinic = session.get(Clinic, m.clinic_id)
                other_role = session.get(Role, m.role_id)
                others.append((clinic.name if clinic else str(m.clinic_id),
                               role_title(other_role) if other_role else ""))
        role_options = [(r.code, role_title(r)) for r in roles]
        session.expunge(user)
    profile = form or {"login": user.login, "name": user.name, "email": user.email, "phone": user.phone,
                       "speciality": user.speciality}
    return render(page, "admin/staff_person.html", {
        "person": user, "role_code": role.code, "roles": role_options, "rows": rows, "others": others,
        "profile": profile, "errors": errors or {}, "min_length": passwords.MIN_LENGTH, "tab": "people",
        "is_self": user_id == page.principal.user_id}, status=status)


@router.get("/staff/{user_id}")
def person(clinic_id: int, user_id: int, page: Page = Depends(clinic_page("users.manage"))) -> Response:
    return _person(page, user_id)


async def _write(page: Page, user_id: int, action: Any, done: str, *, known: tuple[str, ...] = (),
                 form: dict[str, Any] | None = None) -> Response:
    """Run ``action(session, user)`` in one transaction; show refusals on the person's page."""
    assert page.principal is not None

    def run() -> None:
        with transaction(page.praxis.engine) as session:
            user = service.visible_user(session, page.principal, user_id)
            action(session, user)

    try:
        await call(page, run)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            errors = field_error_map(exc, rename=lambda f: f.split(".")[-1] if f.startswith("memberships") else f,
                                     known=known)
        return _person(page, user_id, errors=errors, form=form, status=422)
    except ApiError as exc:
        if exc.status_code == 404:
            raise PageError(404, "not_found") from None
        with i18n.using(page.locale):
            errors = {FORM: [_denied(exc)]}
        return _person(page, user_id, errors=errors, form=form, status=exc.status_code)
    page.flash(done)
    return redirect_with_flash(page, f"/clinics/{page.clinic_id}/admin/staff/{user_id}")


@router.post("/staff/{user_id}/profile")
async def save_profile(clinic_id: int, user_id: int, page: Page = Depends(clinic_page("users.manage"))) -> Response:
    form = await form_of(page)
    changes = {k: text(form, k) for k in ("login", "name", "email", "phone", "speciality")}
    with i18n.using(page.locale):
        done = _("The account is saved.")
    return await _write(page, user_id, lambda s, u: service.update_user(
        s, catalog(page.praxis.runtime), page.principal.actor, u, dict(changes), by=page.principal),  # type: ignore[union-attr]
        done, known=tuple(changes), form=changes)


@router.post("/staff/{user_id}/access")
async def save_access(clinic_id: int, user_id: int, page: Page = Depends(clinic_page("users.manage"))) -> Response:
    """The person's role here and the per-person overrides (each permission: as the role, grant or withhold)."""
    form = await form_of(page)
    grant = sorted(k[len("perm."):] for k, v in form.items()
                   if k.startswith("perm.") and not k.endswith("[]") and v == "grant")
    deny = sorted(k[len("perm."):] for k, v in form.items()
                  if k.startswith("perm.") and not k.endswith("[]") and v == "deny")
    spec = service.MembershipSpec(clinic_id, text(form, "role"), grant, deny)
    with i18n.using(page.locale):
        done = _("The role and permissions are saved.")
    return await _write(page, user_id, lambda s, u: service.set_membership(
        s, catalog(page.praxis.runtime), page.principal.actor, u, spec, by=page.principal),  # type: ignore[union-attr]
        done, known=("role", FORM))


@router.post("/staff/{user_id}/active")
async def set_active(clinic_id: int, user_id: int, page: Page = Depends(clinic_page("users.manage"))) -> Response:
    form = await form_of(page)
    active = flag(form, "active")
    with i18n.using(page.locale):
        done = _("The account is active again.") if active else _("The account is deactivated; its sessions ended.")
    return await _write(page, user_id, lambda s, u: service.update_user(
        s, catalog(page.praxis.runtime), page.principal.actor, u, {"active": active}, by=page.principal),  # type: ignore[union-attr]
        done)


@router.post("/staff/{user_id}/password")
async def reset_password(clinic_id: int, user_id: int, page: Page = Depends(clinic_page("users.manage"))) -> Response:
    form = await form_of(page)
    password = form.get("password") if isinstance(form.get("password"), str) else ""
    must_change = flag(form, "must_change_password")
    with i18n.using(page.locale):
        done = _("The new password is set; the person's sessions ended.")
    return await _write(page, user_id, lambda s, u: service.reset_password(
        s, page.principal.actor, u, password, must_change=must_change, by=page.principal),  # type: ignore[union-attr]
        done, known=("password",))


@router.post("/staff/{user_id}/unlock")
async def unlock(clinic_id: int, user_id: int, page: Page = Depends(clinic_page("users.manage"))) -> Response:
    from core import audit

    def run(session: Session, user: User) -> None:
        cleared = passwords.unlock(session, user.login)
        audit.record(session, page.principal.actor, "user.unlocked", target=f"user:{user.id}",  # type: ignore[union-attr]
                     data={"cleared": cleared})

    with i18n.using(page.locale):
        done = _("Failed logins are cleared; the person can log in again.")
    return await _write(page, user_id, run, done)


# --- roles -----------------------------------------------------------------------------------------------------


def _roles_page(page: Page, *, errors: Errors | None = None, form: dict[str, Any] | None = None,
                editing: str | None = None, status: int = 200) -> Response:
    assert page.principal is not None and page.clinic_id is not None
    cat = catalog(page.praxis.runtime)
    with transaction(page.praxis.engine) as session, i18n.using(page.locale):
        roles = []
        for role in _roles(session):
            assert role.id is not None
            roles.append({"code": role.code, "title": role_title(role), "builtin": role.is_builtin,
                          "grants": service.grants_of_role(session, cat, role),
                          "in_use": len([c for c in service.roles_in_use(session, role.id)
                                         if page.principal.is_member(c)])})
        perms = [(p.code, i18n.plugin_text(p.plugin, p.title), p.plugin) for p in cat.all()]
    current = next((r for r in roles if r["code"] == editing and not r["builtin"]), None)
    return render(page, "admin/roles.html", {"roles": roles, "perms": perms, "errors": errors or {}, "current": current,
                                             "form": form or {"code": "", "title": "", "permissions": []},
                                             "editing": editing, "tab": "roles"}, status=status)


@router.get("/roles")
def roles_page(clinic_id: int, edit: str = Query("", max_length=64),
               page: Page = Depends(clinic_page("roles.manage"))) -> Response:
    return _roles_page(page, editing=edit or None)


async def _role_write(page: Page, action: Any, done: str, form: dict[str, Any], editing: str | None) -> Response:
    try:
        await call(page, action)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            errors = field_error_map(exc, known=("code", "title", "permissions"))
        return _roles_page(page, errors=errors, form=form, editing=editing, status=422)
    except ApiError as exc:
        if exc.status_code == 404:
            raise PageError(404, "not_found") from None
        with i18n.using(page.locale):
            errors = {FORM: [_denied(exc)]}
        return _roles_page(page, errors=errors, form=form, editing=editing, status=exc.status_code)
    page.flash(done)
    return redirect_with_flash(page, f"/clinics/{page.clinic_id}/admin/roles")


def _role_by_code(session: Session, code: str) -> Role:
    ensure_builtin_roles(session)
    role = session.exec(select(Role).where(Role.code == code)).first()
    if role is None:
        raise PageError(404, "not_found")
    return role


@router.post("/roles/new")
async def create_role(clinic_id: int, page: Page = Depends(clinic_page("roles.manage"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    values = {"code": text(form, "code"), "title": text(form, "title"),
              "permissions": [p for p in form.get("permissions[]", []) if p]}

    def run() -> None:
        with transaction(page.praxis.engine) as session:
            service.create_role(session, catalog(page.praxis.runtime), page.principal.actor,  # type: ignore[union-attr]
                                code=values["code"], title=values["title"], permissions=values["permissions"])

    with i18n.using(page.locale):
        done = _("The role %(title)s is created.") % {"title": values["title"]}
    return await _role_write(page, run, done, values, None)


@router.post("/roles/{code}")
async def update_role(clinic_id: int, code: str, page: Page = Depends(clinic_page("roles.manage"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    values = {"code": code, "title": text(form, "title"),
              "permissions": [p for p in form.get("permissions[]", []) if p]}

    def run() -> None:
        with transaction(page.praxis.engine) as session:
            service.update_role(session, catalog(page.praxis.runtime), page.principal.actor,  # type: ignore[union-attr]
                                _role_by_code(session, code), title=values["title"],
                                permissions=values["permissions"], by=page.principal)

    with i18n.using(page.locale):
        done = _("The role %(title)s is saved.") % {"title": values["title"]}
    return await _role_write(page, run, done, values, code)


@router.post("/roles/{code}/delete")
async def delete_role(clinic_id: int, code: str, page: Page = Depends(clinic_page("roles.manage"))) -> Response:
    assert page.principal is not None

    def run() -> None:
        with transaction(page.praxis.engine) as session:
            service.delete_role(session, page.principal.actor, _role_by_code(session, code))  # type: ignore[union-attr]

    with i18n.using(page.locale):
        done = _("The role is deleted.")
    return await _role_write(page, run, done, {"code": "", "title": "", "permissions": []}, None)
