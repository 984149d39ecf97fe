"""Login, logout, the language switcher, and changing one's own password.

Logging in uses the auth layer's ``core.auth.login.authenticate`` (throttling, login history, audit) and
sets the same session cookie as ``POST /api/auth/login``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from core.auth import deps as auth_deps
from core.auth import login as login_service
from core.auth import passwords, sessions
from core.auth.errors import ApiError
from core.auth.users import change_own_password
from core.db import transaction
from core.models.auth import User
from plugin_sdk.errors import ValidationFailed
from ui import i18n
from ui.i18n import _
from ui.web import (
    Page,
    PageError,
    anonymous_page,
    check_pre_session_csrf,
    finish,
    redirect,
    redirect_with_flash,
    render,
    safe_next,
    user_page,
)

router = APIRouter(include_in_schema=False)
PASSWORD_PAGE = "/account/password"
# A session that must change its password may still reach these pages.
auth_deps.PASSWORD_CHANGE_ALLOWED.update({PASSWORD_PAGE, "/logout"})


def _client(request: Request) -> tuple[str, str]:
    return (request.client.host if request.client else ""), request.headers.get("user-agent", "")[:300]


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    page = await anonymous_page(request)
    if page.principal is not None:
        return redirect(request, safe_next(next))
    return render(page, "login.html", {"errors": {}, "login": "", "next": safe_next(next, "")})


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await request.form()
    page = await anonymous_page(request)
    check_pre_session_csrf(request, _str(form.get("csrf_token")))
    login, password, next_url = _str(form.get("login")).strip(), _str(form.get("password")), _str(form.get("next"))
    errors: dict[str, str] = {}
    if not login:
        errors["login"] = _("Enter your login name.")
    if not password:
        errors["password"] = _("Enter your password.")
    if not errors:
        ip, agent = _client(request)
        try:
            result = await run_in_threadpool(login_service.authenticate, page.praxis, login, password,
                                             ip=ip, user_agent=agent)
        except ApiError as exc:
            if exc.code == "locked":
                minutes = max(1, int(exc.extra.get("retry_after", 60)) // 60)  # type: ignore[call-overload]
                errors["__all__"] = i18n.ngettext(
                    "Too many failed attempts. Try again in %(num)d minute.",
                    "Too many failed attempts. Try again in %(num)d minutes.", minutes) % {"num": minutes}
            elif exc.code == "deactivated":
                errors["__all__"] = _("This account is deactivated. Ask your administrator.")
            else:
                errors["password"] = _("Wrong login name or password.")
        else:
            target = PASSWORD_PAGE if result.user.must_change_password else safe_next(next_url)
            response = redirect(request, target)
            response.set_cookie(
                sessions.COOKIE_NAME, result.raw_session, max_age=int(sessions.ABSOLUTE_TIMEOUT.total_seconds()),
                httponly=True, samesite="lax", secure=page.praxis.settings.secure_cookies, path="/",
            )
            return finish(page, response)
    return render(page, "login.html", {"errors": errors, "login": login, "next": safe_next(next_url, "")},
                  status=429 if "__all__" in errors else 422)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End this session. Without a session (already logged out) it simply goes to the login page."""
    if not request.cookies.get(sessions.COOKIE_NAME) and not request.headers.get("authorization"):
        return redirect(request, "/login")
    try:
        principal = await auth_deps.current_principal(request)
    except ApiError as exc:
        if exc.status_code == 401:
            response = redirect(request, "/login")
            response.delete_cookie(sessions.COOKIE_NAME, path="/")
            return response
        raise PageError(exc.status_code, exc.code, exc.message) from None
    page = await anonymous_page(request)
    if principal.session_id is not None:
        await run_in_threadpool(login_service.logout, page.praxis, principal.session_id, principal.actor)
    page.flash(_("You are logged out."), "info")
    response = redirect_with_flash(page, "/login")
    response.delete_cookie(sessions.COOKIE_NAME, path="/", httponly=True, samesite="lax",
                           secure=page.praxis.settings.secure_cookies)
    return response


@router.post("/language")
async def choose_language(request: Request) -> Response:
    """Remember the chosen UI language (cookie), for anyone, logged in or not."""
    form = await request.form()
    submitted = _str(form.get("csrf_token"))
    raw = request.cookies.get(sessions.COOKIE_NAME)
    if raw:
        auth_deps.check_same_origin(request)
        if not sessions.csrf_valid(request.app.state.praxis.keyring, raw, submitted):
            check_pre_session_csrf(request, submitted)
    else:
        check_pre_session_csrf(request, submitted)
    locale = i18n.normalize_locale(_str(form.get("lang")))
    response = redirect(request, safe_next(_str(form.get("next"))))
    if locale:
        response.set_cookie(i18n.LANG_COOKIE, locale, max_age=365 * 24 * 3600, httponly=True, samesite="lax",
                            secure=request.app.state.praxis.settings.secure_cookies, path="/")
    return response


@router.get(PASSWORD_PAGE)
def password_page(page: Page = Depends(user_page(allow_powerless=True))) -> Response:
    return render(page, "account_password.html", {"errors": {}})


@router.post(PASSWORD_PAGE)
async def password_submit(request: Request, page: Page = Depends(user_page(allow_powerless=True))) -> Response:
    form = await request.form()
    current, new, repeat = (_str(form.get("current_password")), _str(form.get("new_password")),
                            _str(form.get("repeat_password")))
    errors: dict[str, str] = {}
    if new != repeat:
        errors["repeat_password"] = _("The two new passwords differ.")
    if not errors:
        assert page.principal is not None
        try:
            await run_in_threadpool(_change, page, current, new)
        except ValidationFailed as exc:
            for item in exc.errors:
                errors.setdefault(item.field, _password_message(item.code, item.message))
        else:
            page.flash(_("Your password is changed. Your other sessions have ended."))
            return redirect_with_flash(page, "/")
    return render(page, "account_password.html", {"errors": errors}, status=422)


def _change(page: Page, current: str, new: str) -> None:
    assert page.principal is not None
    with transaction(page.praxis.engine) as session:
        user = session.get(User, page.principal.user_id)
        assert user is not None
        change_own_password(session, user, current, new, keep_session_id=page.principal.session_id)


def _password_message(code: str, fallback: str) -> str:
    if code == "wrong_password":
        return _("This is not your current password.")
    if code == "too_short":
        return i18n.ngettext("Use at least %(num)d character.", "Use at least %(num)d characters.",
                             passwords.MIN_LENGTH) % {"num": passwords.MIN_LENGTH}
    if code == "too_long":
        return _("This password is too long.")
    if code == "whitespace":
        return _("The password must not start or end with a space.")
    if code == "same_as_login":
        return _("The password must differ from your login name.")
    if code == "reused":
        return i18n.ngettext("Use a password different from your last %(num)d password.",
                             "Use a password different from your last %(num)d passwords.",
                             passwords.HISTORY) % {"num": passwords.HISTORY}
    return fallback


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
