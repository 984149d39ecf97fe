"""Who is calling, and may they? The FastAPI dependencies every route uses.

Credentials, in this order:

1. ``Authorization: Bearer prx_<id>_<secret>``: an API token. No CSRF check (browsers never add this
   header on their own).
2. The ``praxis_session`` cookie. Unsafe methods (POST, PUT, PATCH, DELETE) must also carry the
   session's CSRF token in the ``X-CSRF-Token`` header or a ``csrf_token`` form field, and must not come
   from another site (``Origin`` / ``Sec-Fetch-Site``).

``clinic_permission(code)`` guards routes with a ``{clinic_id}`` path parameter: 401 without
credentials, 404 when the clinic does not exist or the caller is not a member (the two look alike, so
nobody learns which clinics exist), 403 without the permission in that clinic. ``permission(code)``
guards routes not scoped to a clinic: the caller needs the permission in at least one clinic, and the
route limits what it shows to ``principal.clinics_with(code)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from core.audit import Actor
from core.auth import sessions
from core.auth.errors import forbidden, not_found, unauthenticated
from core.auth.permissions import catalog, effective, role_grants
from core.models.auth import ApiToken, LoginSession, Membership, Role, User, UserPermissionOverride
from plugin_sdk.manifest import PERMISSION_CODE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Paths a session whose password must be changed may still use. The UI adds its own pages here.
PASSWORD_CHANGE_ALLOWED: set[str] = {"/api/auth/me", "/api/auth/password", "/api/auth/logout"}


@dataclass
class Principal:
    """The authenticated caller, with memberships and permissions loaded once per request."""

    user_id: int
    name: str
    login: str
    actor: Actor
    method: str  # "session" or "token"
    roles: dict[int, str] = field(default_factory=dict)  # clinic id -> role code
    permissions: dict[int, frozenset[str]] = field(default_factory=dict)  # clinic id -> effective permissions
    session_id: int | None = None
    token_id: int | None = None
    scopes: frozenset[str] | None = None
    must_change_password: bool = False
    csrf_token: str | None = None

    def clinic_ids(self) -> list[int]:
        return sorted(self.roles)

    def is_member(self, clinic_id: int) -> bool:
        return clinic_id in self.roles

    def permissions_in(self, clinic_id: int) -> frozenset[str]:
        return self.permissions.get(clinic_id, frozenset())

    def has(self, code: str, clinic_id: int) -> bool:
        return code in self.permissions_in(clinic_id)

    def clinics_with(self, code: str) -> list[int]:
        """The clinics where the caller holds ``code``, in id order."""
        return sorted(c for c, perms in self.permissions.items() if code in perms)

    def has_anywhere(self, code: str) -> bool:
        return any(code in perms for perms in self.permissions.values())


def load_principal(session: Session, runtime: object, user: User, *, method: str,
                   scopes: list[str] | None = None) -> Principal:
    """Build a Principal for ``user``: memberships, role grants and per-person overrides, three queries."""
    assert user.id is not None
    cat = catalog(runtime)  # type: ignore[arg-type]
    memberships = session.exec(select(Membership, Role.code).join(Role, Role.id == Membership.role_id)
                               .where(Membership.user_id == user.id)).all()
    grants = role_grants(session, cat, [m.role_id for m, _ in memberships])
    overrides: dict[int, dict[str, bool]] = {}
    for o in session.exec(select(UserPermissionOverride).where(UserPermissionOverride.user_id == user.id)).all():
        overrides.setdefault(o.clinic_id, {})[o.permission] = o.granted
    principal = Principal(
        user_id=user.id, name=user.name, login=user.login, actor=Actor(user.id, user.name), method=method,
        scopes=frozenset(scopes) if scopes is not None else None, must_change_password=user.must_change_password,
    )
    for membership, role_code in memberships:
        principal.roles[membership.clinic_id] = role_code
        principal.permissions[membership.clinic_id] = effective(
            grants.get(membership.role_id, frozenset()), overrides.get(membership.clinic_id, {}),
            scopes, cat.codes,
        )
    return principal


def _from_token(praxis: object, token: str) -> Principal:
    from core.db import transaction

    with transaction(praxis.engine) as session:  # type: ignore[attr-defined]
        row: ApiToken | None = sessions.find_token(session, token)
        if row is None:
            raise unauthenticated("the API token is unknown, expired or revoked")
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            raise unauthenticated("the API token's user is deactivated")
        sessions.touch_token(session, row)
        principal = load_principal(session, praxis.runtime, user, method="token",  # type: ignore[attr-defined]
                                   scopes=row.scopes)
        principal.token_id = row.id
        principal.must_change_password = False  # integrations are not asked to change passwords
        return principal


def _from_session(praxis: object, raw: str) -> Principal:
    from core.db import transaction

    with transaction(praxis.engine) as session:  # type: ignore[attr-defined]
        row: LoginSession | None = sessions.find_session(session, raw)
        if row is None:
            raise unauthenticated("the session has ended; log in again")
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            raise unauthenticated("the account is deactivated")
        sessions.touch_session(session, row)
        principal = load_principal(session, praxis.runtime, user, method="session")  # type: ignore[attr-defined]
        principal.session_id = row.id
        principal.csrf_token = sessions.csrf_token(praxis.keyring, raw)  # type: ignore[attr-defined]
        return principal


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request a browser sent from another site."""
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "").lower()
        if origin == "null" or urlsplit(origin).netloc.lower() != host:
            raise forbidden("requests from another site are refused", "cross_site")
    elif request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
        raise forbidden("requests from another site are refused", "cross_site")


async def _submitted_csrf(request: Request) -> str | None:
    token = request.headers.get(sessions.CSRF_HEADER)
    if token:
        return token
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches the parsed form for the route
        value = form.get(sessions.CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def current_principal(request: Request) -> Principal:
    """The authenticated caller, or 401. Enforces CSRF and same-origin for cookie sessions."""
    praxis = request.app.state.praxis
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthenticated("the Authorization header must be 'Bearer <API token>'")
        principal = await run_in_threadpool(_from_token, praxis, value.strip())
    else:
        raw = request.cookies.get(sessions.COOKIE_NAME)
        if not raw:
            raise unauthenticated()
        principal = await run_in_threadpool(_from_session, praxis, raw)
        if request.method not in SAFE_METHODS:
            check_same_origin(request)
            if not sessions.csrf_valid(praxis.keyring, raw, await _submitted_csrf(request)):
                raise forbidden(f"missing or wrong CSRF token: send it in the {sessions.CSRF_HEADER} header "
                                f"or the {sessions.CSRF_FIELD} form field", "csrf_failed")
        if principal.must_change_password and request.url.path not in PASSWORD_CHANGE_ALLOWED:
            raise forbidden("change your password first (POST /api/auth/password)", "password_change_required")
    request.state.principal = principal
    return principal


def _check_code(code: str) -> None:
    if not PERMISSION_CODE.match(code):
        raise ValueError(f"{code!r} is not a permission code (dotted lower-case words)")


@cache
def permission(code: str) -> Callable[..., Principal]:
    """Dependency for routes not scoped to a clinic: 401, or 403 unless the caller holds ``code`` somewhere."""
    _check_code(code)

    def require_permission(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.has_anywhere(code):
            raise forbidden(f"this needs the permission {code!r}")
        return principal

    require_permission.__qualname__ = f"permission({code!r})"
    return require_permission


@cache
def any_permission(*codes: str) -> Callable[..., Principal]:
    """Like ``permission``, satisfied by any one of ``codes``."""
    for code in codes:
        _check_code(code)

    def require_any(principal: Principal = Depends(current_principal)) -> Principal:
        if not any(principal.has_anywhere(c) for c in codes):
            raise forbidden(f"this needs one of the permissions {', '.join(repr(c) for c in codes)}")
        return principal

    require_any.__qualname__ = f"any_permission{codes!r}"
    return require_any


def clinic_id_of(request: Request) -> int:
    """The ``{clinic_id}`` path parameter; a malformed one is simply a clinic that does not exist."""
    raw = request.path_params.get("clinic_id")
    try:
        value = int(str(raw))
    except ValueError:
        raise not_found(f"there is no clinic {raw!r}") from None
    if not 0 < value < 2**63:
        raise not_found(f"there is no clinic {raw!r}")
    return value


@cache
def clinic_permission(code: str) -> Callable[..., Principal]:
    """Dependency for routes with ``{clinic_id}``: 401 anonymous, 404 not a member, 403 without ``code``."""
    _check_code(code)

    def require_clinic_permission(request: Request, principal: Principal = Depends(current_principal)) -> Principal:
        clinic_id = clinic_id_of(request)
        if not principal.is_member(clinic_id):
            raise not_found(f"there is no clinic {clinic_id}")
        if not principal.has(code, clinic_id):
            raise forbidden(f"this needs the permission {code!r} in this clinic")
        return principal

    require_clinic_permission.__qualname__ = f"clinic_permission({code!r})"
    return require_clinic_permission
