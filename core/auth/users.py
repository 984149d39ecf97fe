"""Staff accounts, their clinic memberships, per-person overrides and custom roles.

Used by the API, the CLI and tests. Functions take the caller's session (one transaction) and write
their audit entries in it. ``by`` is the acting Principal for API calls; ``None`` means the command
line (the machine's operator), which is not limited by anyone's permissions.

Nobody can hand out more than they hold: assigning a role or an override in a clinic needs
``users.manage`` there and every permission being given; changing a custom role needs ``roles.manage``
and every permission it will give in each clinic where the role is in use. Account-wide changes
(profile, password reset, deactivation) need ``users.manage`` in every clinic the person works in.
Changes that would leave a clinic with nobody able to manage its staff are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import phonenumbers
from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from core import audit
from core.auth import passwords, sessions
from core.auth.errors import conflict, forbidden, not_found
from core.auth.permissions import BUILTIN_ROLES, Catalog, effective, ensure_builtin_roles, role_grants
from core.models.auth import Membership, Role, RolePermission, User, UserPermissionOverride
from core.models.clinic import Clinic
from plugin_sdk.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from core.auth.deps import Principal

LOGIN_RE = re.compile(r"^[\w.@+-]{2,100}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLE_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
PROFILE_FIELDS = ("name", "email", "phone", "speciality")


@dataclass
class MembershipSpec:
    clinic_id: int
    role: str
    grant: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)


# --- validation --------------------------------------------------------------------------------------


def _profile_errors(values: dict[str, Any], region: str | None) -> tuple[dict[str, Any], list[FieldError]]:
    """Normalised profile values and the problems found."""
    out: dict[str, Any] = {}
    errors: list[FieldError] = []
    if "name" in values:
        name = (values["name"] or "").strip()
        if not name:
            errors.append(FieldError("name", "is required", "required"))
        elif len(name) > 200:
            errors.append(FieldError("name", "must be at most 200 characters", "too_long"))
        out["name"] = name
    if "email" in values:
        email = (values["email"] or "").strip()
        if email and (len(email) > 254 or not EMAIL_RE.match(email)):
            errors.append(FieldError("email", "is not an e-mail address", "invalid_email"))
        out["email"] = email
    if "phone" in values:
        phone = (values["phone"] or "").strip()
        if phone:
            try:
                parsed = phonenumbers.parse(phone, region)
                if not phonenumbers.is_possible_number(parsed):
                    raise phonenumbers.NumberParseException(0, "impossible")
                phone = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            except phonenumbers.NumberParseException:
                hint = "" if region else " (start it with + and the country code)"
                errors.append(FieldError("phone", f"is not a phone number{hint}", "invalid_phone"))
        out["phone"] = phone
    if "speciality" in values:
        speciality = (values["speciality"] or "").strip()
        if len(speciality) > 200:
            errors.append(FieldError("speciality", "must be at most 200 characters", "too_long"))
        out["speciality"] = speciality
    return out, errors


def _login_errors(session: Session, login: str, user_id: int | None = None) -> tuple[str, list[FieldError]]:
    normal = passwords.normalize_login(login or "")
    if not LOGIN_RE.match(normal):
        return normal, [FieldError("login", "must be 2-100 letters, digits or . _ @ + -, without spaces",
                                   "invalid_login")]
    taken = session.exec(select(User.id).where(User.login == normal)).first()
    if taken is not None and taken != user_id:
        return normal, [FieldError("login", f"{normal!r} is already taken", "taken")]
    return normal, []


def _region_of(session: Session, clinic_ids: Iterable[int]) -> str | None:
    ids = list(clinic_ids)
    if not ids:
        return None
    clinic = session.get(Clinic, ids[0])
    return clinic.country if clinic else None


# --- permission helpers ------------------------------------------------------------------------------


def grants_of_role(session: Session, cat: Catalog, role: Role) -> frozenset[str]:
    assert role.id is not None
    return role_grants(session, cat, [role.id]).get(role.id, frozenset())


def effective_in(session: Session, cat: Catalog, user_id: int, clinic_id: int) -> frozenset[str] | None:
    """A user's effective permissions in a clinic (None if not a member)."""
    membership = session.exec(select(Membership).where(Membership.user_id == user_id,
                                                       Membership.clinic_id == clinic_id)).first()
    if membership is None:
        return None
    grants = role_grants(session, cat, [membership.role_id]).get(membership.role_id, frozenset())
    overrides = {o.permission: o.granted for o in session.exec(select(UserPermissionOverride).where(
        UserPermissionOverride.user_id == user_id, UserPermissionOverride.clinic_id == clinic_id)).all()}
    return effective(grants, overrides, known=cat.codes)


def managers(session: Session, cat: Catalog, clinic_id: int) -> list[int]:
    """Active users who can manage staff in a clinic."""
    rows = session.exec(select(Membership).join(User, col(User.id) == Membership.user_id)
                        .where(Membership.clinic_id == clinic_id, col(User.active).is_(True))).all()
    return [m.user_id for m in rows if "users.manage" in (effective_in(session, cat, m.user_id, clinic_id) or ())]


def _guard_managers(session: Session, cat: Catalog, before: dict[int, bool]) -> None:
    for clinic_id, had in before.items():
        if had and not managers(session, cat, clinic_id):
            raise conflict("last_manager", f"clinic {clinic_id} would be left with nobody who can manage its "
                           "staff; give someone else 'users.manage' there first", clinic_id=clinic_id)


def _has_managers(session: Session, cat: Catalog, clinic_ids: Iterable[int]) -> dict[int, bool]:
    return {c: bool(managers(session, cat, c)) for c in set(clinic_ids)}


def _require_can_give(by: Principal | None, clinic_id: int, codes: Iterable[str]) -> None:
    if by is None:
        return
    if not by.has("users.manage", clinic_id):
        raise forbidden(f"you cannot manage staff in clinic {clinic_id}")
    missing = sorted(set(codes) - by.permissions_in(clinic_id))
    if missing:
        raise forbidden(f"you cannot give permissions you do not hold in clinic {clinic_id}: {', '.join(missing)}",
                        "escalation")


def memberships_of(session: Session, user_id: int) -> list[Membership]:
    return list(session.exec(select(Membership).where(Membership.user_id == user_id)
                             .order_by(col(Membership.clinic_id))).all())


def require_full_control(session: Session, by: Principal | None, user: User) -> None:
    """Account-wide changes need users.manage in every clinic the person works in."""
    if by is None:
        return
    assert user.id is not None
    clinics = [m.clinic_id for m in memberships_of(session, user.id)]
    outside = [c for c in clinics if not by.has("users.manage", c)]
    if outside or not clinics:
        raise forbidden("this person also works in clinics where you cannot manage staff; an administrator of "
                        "every one of their clinics can change the account", "not_all_clinics")


def visible_user(session: Session, by: Principal | None, user_id: int) -> User:
    """The user, if the caller manages staff in a clinic where the user works; else 404."""
    user = session.get(User, user_id)
    if user is None:
        raise not_found(f"there is no user {user_id}")
    if by is not None and user_id != by.user_id:
        clinics = {m.clinic_id for m in memberships_of(session, user_id)}
        if not clinics & set(by.clinics_with("users.manage")):
            raise not_found(f"there is no user {user_id}")
    return user


# --- users -------------------------------------------------------------------------------------------


def create_user(session: Session, cat: Catalog, actor: audit.Actor, *, login: str, name: str, password: str | None,
                memberships: list[MembershipSpec], email: str = "", phone: str = "", speciality: str = "",
                must_change_password: bool = False, by: Principal | None = None) -> User:
    """Create an account working in the given clinics. ``password=None`` leaves it without password login."""
    normal, errors = _login_errors(session, login)
    profile, more = _profile_errors({"name": name, "email": email, "phone": phone, "speciality": speciality},
                                    _region_of(session, [m.clinic_id for m in memberships]))
    errors += more
    if password is not None:
        errors += passwords.policy_errors(password, login=normal)
    if not memberships:
        errors.append(FieldError("memberships", "give at least one clinic and role", "required"))
    if errors:
        raise ValidationFailed(errors)
    user = User(login=normal, must_change_password=must_change_password, **profile)
    session.add(user)
    session.flush()
    assert user.id is not None
    if password is not None:
        problems = passwords.set_password(session, user, password, must_change=must_change_password)
        if problems:
            raise ValidationFailed(problems)
    for index, spec in enumerate(memberships):
        set_membership(session, cat, actor, user, spec, by=by, field_prefix=f"memberships.{index}.", audit_it=False)
    given = [{"clinic_id": m.clinic_id, "role": m.role, "grant": m.grant, "deny": m.deny} for m in memberships]
    audit.record(session, actor, "user.created", target=f"user:{user.id}",
                 data={"login": normal, **profile, "memberships": given})
    return user


def update_user(session: Session, cat: Catalog, actor: audit.Actor, user: User, changes: dict[str, Any], *,
                by: Principal | None = None) -> User:
    """Change profile fields, the login, ``active`` or ``must_change_password``."""
    assert user.id is not None
    require_full_control(session, by, user)
    errors: list[FieldError] = []
    before = {k: getattr(user, k) for k in changes if hasattr(user, k)}
    if "login" in changes:
        normal, more = _login_errors(session, changes["login"], user.id)
        errors += more
        changes = {**changes, "login": normal}
    profile, more = _profile_errors({k: v for k, v in changes.items() if k in PROFILE_FIELDS},
                                    _region_of(session, [m.clinic_id for m in memberships_of(session, user.id)]))
    errors += more
    if errors:
        raise ValidationFailed(errors)
    changes = {**changes, **profile}
    if changes.get("active") is False and user.active:
        if by is not None and by.user_id == user.id:
            raise conflict("self_deactivation", "you cannot deactivate your own account")
        deactivate(session, cat, actor, user, by=None, audit_it=False)
    for key, value in changes.items():
        setattr(user, key, value)
    session.add(user)
    session.flush()
    diff = {k: {"from": before.get(k), "to": v} for k, v in changes.items() if before.get(k) != v}
    if diff:
        audit.record(session, actor, "user.updated", target=f"user:{user.id}", data=diff)
    return user


def deactivate(session: Session, cat: Catalog, actor: audit.Actor, user: User, *, by: Principal | None = None,
               audit_it: bool = True) -> None:
    """Turn the account off: every session and API token ends now. The account and its history stay."""
    assert user.id is not None
    require_full_control(session, by, user)
    cat_clinics = [m.clinic_id for m in memberships_of(session, user.id)]
    if by is not None and by.user_id == user.id:
        raise conflict("self_deactivation", "you cannot deactivate your own account")
    before = _has_managers(session, cat, cat_clinics)
    user.active = False
    session.add(user)
    session.flush()
    _guard_managers(session, cat, before)
    ended = sessions.revoke_sessions(session, user.id)
    tokens = sessions.revoke_tokens(session, user.id)
    if audit_it:
        audit.record(session, actor, "user.deactivated", target=f"user:{user.id}",
                     data={"sessions_ended": ended, "tokens_revoked": tokens, "clinics": cat_clinics})


def reset_password(session: Session, actor: audit.Actor, user: User, password: str, *, must_change: bool = True,
                   by: Principal | None = None) -> None:
    """An administrator sets a new password; by default the person must change it at next login."""
    assert user.id is not None
    require_full_control(session, by, user)
    problems = passwords.set_password(session, user, password, must_change=must_change)
    if problems:
        raise ValidationFailed(problems)
    ended = sessions.revoke_sessions(session, user.id)
    audit.record(session, actor, "user.password_reset", target=f"user:{user.id}",
                 data={"must_change_password": must_change, "sessions_ended": ended})


def change_own_password(session: Session, user: User, current: str, new: str, *,
                        keep_session_id: int | None = None) -> None:
    """The person changes their own password; their other sessions end."""
    assert user.id is not None
    ok, _ = passwords.verify_password(current, user.password_hash)
    if not ok:
        raise ValidationFailed([FieldError("current_password", "is not your current password", "wrong_password")])
    problems = passwords.set_password(session, user, new, must_change=False, field="new_password")
    if problems:
        raise ValidationFailed(problems)
    ended = sessions.revoke_sessions(session, user.id, except_id=keep_session_id)
    audit.record(session, audit.Actor(user.id, user.name), "user.password_changed", target=f"user:{user.id}",
                 data={"other_sessions_ended": ended})


# --- memberships and overrides -----------------------------------------------------------------------


def _role_by_code(session: Session, code: str) -> Role | None:
    ensure_builtin_roles(session)
    return session.exec(select(Role).where(Role.code == code)).first()


def set_membership(session: Session, cat: Catalog, actor: audit.Actor, user: User, spec: MembershipSpec, *,
                   by: Principal | None = None, field_prefix: str = "", audit_it: bool = True) -> Membership:
    """Give the user ``spec.role`` in ``spec.clinic_id`` with exactly ``spec.grant``/``spec.deny`` overrides."""
    assert user.id is not None
    errors: list[FieldError] = []
    clinic = session.get(Clinic, spec.clinic_id)
    if clinic is None:
        if by is not None:
            raise not_found(f"there is no clinic {spec.clinic_id}")
        errors.append(FieldError(f"{field_prefix}clinic_id", f"there is no clinic {spec.clinic_id}", "unknown"))
    role = _role_by_code(session, spec.role)
    if role is None:
        errors.append(FieldError(f"{field_prefix}role", f"there is no role {spec.role!r}", "unknown_role"))
    for name, codes in (("grant", spec.grant), ("deny", spec.deny)):
        unknown = cat.unknown(codes)
        if unknown:
            errors.append(FieldError(f"{field_prefix}{name}", f"unknown permission(s): {', '.join(unknown)}",
                                     "unknown_permission"))
    both = sorted(set(spec.grant) & set(spec.deny))
    if both:
        errors.append(FieldError(f"{field_prefix}deny", f"both granted and denied: {', '.join(both)}", "conflict"))
    if errors:
        raise ValidationFailed(errors)
    assert role is not None and role.id is not None
    if by is not None and not by.is_member(spec.clinic_id):
        raise not_found(f"there is no clinic {spec.clinic_id}")
    new_effective = effective(grants_of_role(session, cat, role), {
        **{c: False for c in spec.deny}, **{c: True for c in spec.grant}}, known=cat.codes)
    _require_can_give(by, spec.clinic_id, new_effective)
    before = _has_managers(session, cat, [spec.clinic_id])
    membership = session.exec(select(Membership).where(Membership.user_id == user.id,
                                                       Membership.clinic_id == spec.clinic_id)).first()
    if membership is None:
        membership = Membership(user_id=user.id, clinic_id=spec.clinic_id, role_id=role.id)
    else:
        membership.role_id = role.id
    session.add(membership)
    session.exec(delete(UserPermissionOverride).where(col(UserPermissionOverride.user_id) == user.id,
                                                      col(UserPermissionOverride.clinic_id) == spec.clinic_id))
    for code in sorted(set(spec.grant)):
        session.add(UserPermissionOverride(user_id=user.id, clinic_id=spec.clinic_id, permission=code, granted=True))
    for code in sorted(set(spec.deny)):
        session.add(UserPermissionOverride(user_id=user.id, clinic_id=spec.clinic_id, permission=code, granted=False))
    session.flush()
    _guard_managers(session, cat, before)
    if audit_it:
        audit.record(session, actor, "user.membership_set", clinic_id=spec.clinic_id, target=f"user:{user.id}",
                     data={"role": spec.role, "grant": sorted(spec.grant), "deny": sorted(spec.deny)})
    return membership


def remove_membership(session: Session, cat: Catalog, actor: audit.Actor, user: User, clinic_id: int, *,
                      by: Principal | None = None) -> None:
    assert user.id is not None
    if by is not None and not by.has("users.manage", clinic_id):
        raise forbidden(f"you cannot manage staff in clinic {clinic_id}")
    membership = session.exec(select(Membership).where(Membership.user_id == user.id,
                                                       Membership.clinic_id == clinic_id)).first()
    if membership is None:
        raise not_found(f"user {user.id} does not work in clinic {clinic_id}")
    before = _has_managers(session, cat, [clinic_id])
    session.exec(delete(UserPermissionOverride).where(col(UserPermissionOverride.user_id) == user.id,
                                                      col(UserPermissionOverride.clinic_id) == clinic_id))
    session.delete(membership)
    session.flush()
    _guard_managers(session, cat, before)
    audit.record(session, actor, "user.membership_removed", clinic_id=clinic_id, target=f"user:{user.id}")


# --- roles -------------------------------------------------------------------------------------------


def roles_in_use(session: Session, role_id: int) -> list[int]:
    """Clinics where someone holds the role."""
    return sorted(set(session.exec(select(Membership.clinic_id).where(Membership.role_id == role_id)).all()))


def _check_role_permissions(cat: Catalog, codes: list[str]) -> None:
    unknown = cat.unknown(codes)
    if unknown:
        raise ValidationFailed([FieldError("permissions", f"unknown permission(s): {', '.join(unknown)}",
                                           "unknown_permission")])


def _require_roles_manage_where_used(session: Session, by: Principal | None, role: Role,
                                     new_grants: Iterable[str]) -> None:
    if by is None:
        return
    assert role.id is not None
    for clinic_id in roles_in_use(session, role.id):
        if not by.has("roles.manage", clinic_id):
            raise forbidden(f"the role {role.code!r} is in use in clinic {clinic_id}, where you cannot manage roles",
                            "not_all_clinics")
        missing = sorted(set(new_grants) - by.permissions_in(clinic_id))
        if missing:
            raise forbidden(f"the role is in use in clinic {clinic_id}, where you do not hold: {', '.join(missing)}",
                            "escalation")


def create_role(session: Session, cat: Catalog, actor: audit.Actor, *, code: str, title: str,
                permissions: list[str]) -> Role:
    errors = []
    code = (code or "").strip()
    if not ROLE_CODE_RE.match(code):
        errors.append(FieldError("code", "must be 2-64 lower-case letters, digits or _, starting with a letter",
                                 "invalid_code"))
    elif code in BUILTIN_ROLES or _role_by_code(session, code) is not None:
        errors.append(FieldError("code", f"a role {code!r} already exists", "taken"))
    title = (title or "").strip()
    if not title or len(title) > 200:
        errors.append(FieldError("title", "is required (at most 200 characters)", "required"))
    if errors:
        raise ValidationFailed(errors)
    _check_role_permissions(cat, permissions)
    role = Role(code=code, title=title, is_builtin=False)
    session.add(role)
    session.flush()
    assert role.id is not None
    for perm in sorted(set(permissions)):
        session.add(RolePermission(role_id=role.id, permission=perm))
    session.flush()
    audit.record(session, actor, "role.created", target=f"role:{code}",
                 data={"title": title, "permissions": sorted(set(permissions))})
    return role


def update_role(session: Session, cat: Catalog, actor: audit.Actor, role: Role, *, title: str | None = None,
                permissions: list[str] | None = None, by: Principal | None = None) -> Role:
    if role.is_builtin:
        raise conflict("builtin_role", f"the built-in role {role.code!r} cannot be changed; create a custom role "
                       "or give people per-person overrides")
    assert role.id is not None
    data: dict[str, Any] = {}
    if title is not None:
        title = title.strip()
        if not title or len(title) > 200:
            raise ValidationFailed([FieldError("title", "is required (at most 200 characters)", "required")])
        data["title"] = {"from": role.title, "to": title}
        role.title = title
    if permissions is not None:
        _check_role_permissions(cat, permissions)
        _require_roles_manage_where_used(session, by, role, permissions)
        clinics = roles_in_use(session, role.id)
        before_managers = _has_managers(session, cat, clinics)
        old = grants_of_role(session, cat, role)
        session.exec(delete(RolePermission).where(col(RolePermission.role_id) == role.id))
        for perm in sorted(set(permissions)):
            session.add(RolePermission(role_id=role.id, permission=perm))
        session.flush()
        _guard_managers(session, cat, before_managers)
        data["permissions"] = {"added": sorted(set(permissions) - old), "removed": sorted(old - set(permissions))}
    elif by is not None:
        _require_roles_manage_where_used(session, by, role, grants_of_role(session, cat, role))
    session.add(role)
    session.flush()
    audit.record(session, actor, "role.updated", target=f"role:{role.code}", data=data)
    return role


def delete_role(session: Session, actor: audit.Actor, role: Role) -> None:
    if role.is_builtin:
        raise conflict("builtin_role", f"the built-in role {role.code!r} cannot be deleted")
    assert role.id is not None
    used = session.exec(select(func.count()).select_from(Membership).where(Membership.role_id == role.id)).one()
    if used:
        raise conflict("role_in_use", f"{used} membership(s) still use the role {role.code!r}; give those people "
                       "another role first", memberships=int(used))
    session.exec(delete(RolePermission).where(col(RolePermission.role_id) == role.id))
    session.delete(role)
    session.flush()
    audit.record(session, actor, "role.deleted", target=f"role:{role.code}")
