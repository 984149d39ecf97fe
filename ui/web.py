"""The UI's plumbing: the Jinja environment, the page context each route gets, rendering, flash messages,
and the errors a page turns into (login redirect, 403 and 404 pages).

Authentication and permissions are the auth layer's (``core.auth.deps``): a page dependency calls
``current_principal`` and ``clinic_permission`` and turns their ``ApiError`` into what a browser needs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined, select_autoescape
from jinja2_fragments import render_block
from sqlmodel import Session, col, select

from core import clock
from core.app_context import Praxis
from core.auth import sessions
from core.auth.deps import Principal, check_same_origin, clinic_id_of, clinic_permission, current_principal
from core.auth.errors import ApiError, forbidden, not_found
from core.models.clinic import Clinic
from ui import i18n
from ui.i18n import _

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
HTMX_FILE = "vendor/htmx-2.0.11.min.js"
# Subresource integrity of the vendored htmx (npm pack htmx.org@2.0.11); tests/ui checks it matches the file.
HTMX_SRI = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
FLASH_COOKIE = "praxis_flash"
PRE_CSRF_COOKIE = "praxis_pre_csrf"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Web:
    """What the UI builds once per app: the template environment and the merged catalogs."""

    def __init__(self, praxis: Praxis) -> None:
        self.praxis = praxis
        self.catalogs = i18n.Catalogs.for_runtime(praxis.runtime)
        plugin_templates: dict[str, Any] = {}
        for result in praxis.runtime.collect("praxis_templates_dir"):
            if result.value is not None:
                plugin_templates[result.plugin] = FileSystemLoader(str(result.value))
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(TEMPLATES)), PrefixLoader(plugin_templates)]),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        i18n.install(self.env)
        self.env.globals.update(htmx_src=f"/static/{HTMX_FILE}", htmx_sri=HTMX_SRI,
                                languages=[(c, i18n.LANGUAGE_NAMES[c], i18n.HTML_LANG[c]) for c in i18n.LOCALES],
                                languages_by_code=i18n.LANGUAGE_NAMES)

    def locale_state(self, locale: str, tz: str | None) -> i18n.LocaleState:
        return i18n.LocaleState(locale, self.catalogs.get(locale), i18n.timezone(tz), self.catalogs.plugin_domains)


def web_of(request: Request) -> Web:
    return request.app.state.ui


# --- page errors -----------------------------------------------------------------------------------------


class PageError(Exception):
    """Raised by page dependencies; answered with a login redirect or an error page in the user's language."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message


def _page_error(exc: ApiError) -> PageError:
    return PageError(exc.status_code, exc.code, exc.message)


async def handle_page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    if exc.status == 401:
        target = "/login"
        path = request.url.path
        if path not in ("/", "/login") and request.method == "GET":
            target += "?next=" + quote(path + (f"?{request.url.query}" if request.url.query else ""), safe="/")
        return redirect(request, target)
    if exc.code == "password_change_required":
        return redirect(request, "/account/password")
    page = await anonymous_page(request)
    titles = {
        403: _("You do not have permission to see this page."),
        404: _("This page does not exist, or you have no access to it."),
    }
    if exc.code == "csrf_failed":
        message = _("The form had expired. Reload the page and try again.")
    elif exc.code == "cross_site":
        message = _("Requests from other sites are refused.")
    else:
        message = titles.get(exc.status, _("Something went wrong."))
    return render(page, "error.html", {"status": exc.status, "message": message}, status=exc.status)


def redirect(request: Request, url: str, status: int = 303) -> Response:
    """A redirect that also works for htmx requests (which would otherwise swap the target page in)."""
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=status)


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths: no 'https://evil', no '//evil', no backslash tricks."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return default
    return value


# --- page context ----------------------------------------------------------------------------------------


@dataclass
class Page:
    """Everything a template needs about the request: who, which clinic, which language."""

    request: Request
    web: Web
    principal: Principal | None = None
    clinic: Clinic | None = None
    clinics: list[tuple[int, str]] = field(default_factory=list)
    locale: i18n.LocaleState = field(default_factory=i18n.current)
    flashes: list[tuple[str, str]] = field(default_factory=list)
    set_cookies: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def praxis(self) -> Praxis:
        return self.web.praxis

    @property
    def clinic_id(self) -> int | None:
        return self.clinic.id if self.clinic else None

    @property
    def csrf_token(self) -> str:
        if self.principal is not None and self.principal.csrf_token:
            return self.principal.csrf_token
        return pre_session_csrf(self)

    def can(self, code: str) -> bool:
        return bool(self.principal and self.clinic_id and self.principal.has(code, self.clinic_id))

    def flash(self, message: str, level: str = "success") -> None:
        self.flashes.append((level, message))

    @property
    def is_htmx(self) -> bool:
        return bool(self.request.headers.get("hx-request"))


def choose_locale(request: Request, clinic: Clinic | None) -> str:
    """The user's choice (language cookie), else the clinic's language, else the browser's, else English."""
    return (i18n.normalize_locale(request.cookies.get(i18n.LANG_COOKIE))
            or (i18n.normalize_locale(clinic.locale) if clinic else None)
            or i18n.negotiate(request.headers.get("accept-language"))
            or i18n.DEFAULT_LOCALE)


def _build_page(request: Request, principal: Principal | None, clinic_id: int | None) -> Page:
    web = web_of(request)
    clinic = None
    clinics: list[tuple[int, str]] = []
    with Session(web.praxis.engine) as session:
        if principal is not None and principal.clinic_ids():
            rows = session.exec(select(Clinic).where(col(Clinic.id).in_(principal.clinic_ids()))).all()
            by_id = {c.id: c for c in rows}
            clinics = sorted(((c.id, c.name) for c in rows if c.id is not None), key=lambda x: (x[1].casefold(), x[0]))
            clinic = by_id.get(clinic_id) if clinic_id is not None else None
            for row in rows:
                session.expunge(row)
    page = Page(request, web, principal, clinic, clinics)
    tz = clinic.timezone if clinic else None
    page.locale = web.locale_state(choose_locale(request, clinic), tz)
    i18n.activate(page.locale)
    page.flashes = read_flashes(request, web)
    return page


async def anonymous_page(request: Request) -> Page:
    """A page for anyone, logged in or not (the login page, error pages)."""
    principal = getattr(request.state, "principal", None)
    if principal is None and request.cookies.get(sessions.COOKIE_NAME) and request.method == "GET":
        try:
            principal = await current_principal(request)
        except ApiError:
            principal = None
    clinic_id = None
    raw = request.path_params.get("clinic_id")
    if principal is not None and raw is not None and str(raw).isdigit() and principal.is_member(int(raw)):
        clinic_id = int(raw)
    return _build_page(request, principal, clinic_id)


async def _principal(request: Request) -> Principal:
    try:
        return await current_principal(request)
    except ApiError as exc:
        raise _page_error(exc) from None


def user_page(*, allow_powerless: bool = False) -> Callable[..., Any]:
    """Dependency: a logged-in user who holds at least one permission in at least one clinic (or, with
    ``allow_powerless``, any logged-in user: for pages about one's own account)."""

    async def dependency(request: Request) -> Page:
        principal = await _principal(request)
        if not allow_powerless and not any(principal.permissions.values()):
            raise PageError(403, "forbidden")
        return _build_page(request, principal, None)

    return dependency


def clinic_page(code: str | None = None) -> Callable[..., Any]:
    """Dependency for pages under ``/clinics/{clinic_id}``: like ``clinic_permission(code)`` (401 -> login,
    404 not a member, 403 without ``code``); without ``code`` any permission in the clinic will do."""
    check = clinic_permission(code) if code else None

    async def dependency(request: Request) -> Page:
        principal = await _principal(request)
        try:
            if check is not None:
                check(request, principal)
            else:
                clinic_id = clinic_id_of(request)
                if not principal.is_member(clinic_id):
                    raise not_found(f"there is no clinic {clinic_id}")
                if not principal.permissions_in(clinic_id):
                    raise forbidden("you hold no permission in this clinic")
        except ApiError as exc:
            raise _page_error(exc) from None
        return _build_page(request, principal, int(request.path_params["clinic_id"]))

    return dependency


# --- rendering -------------------------------------------------------------------------------------------


def context(page: Page, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    from ui.menu import build_menu

    values: dict[str, Any] = {
        "page": page,
        "request": page.request,
        "principal": page.principal,
        "clinic": page.clinic,
        "clinics": page.clinics,
        "locale": page.locale,
        "csrf_token": page.csrf_token,
        "menu": build_menu(page) if page.clinic is not None else [],
        "flashes": page.flashes,
        "now": clock.now(),
        "current_path": page.request.url.path,
        "current_url": page.request.url.path + (f"?{page.request.url.query}" if page.request.url.query else ""),
    }
    values.update(extra or {})
    return values


def render_text(page: Page, template: str, extra: dict[str, Any] | None = None, *, block: str | None = None) -> str:
    with i18n.using(page.locale):
        values = context(page, extra)
        if block is not None:
            return render_block(page.web.env, template, block, values)
        return page.web.env.get_template(template).render(values)


def finish(page: Page, response: Response) -> Response:
    """Apply cookies the page set and the security headers of every UI response."""
    for name, value, max_age in page.set_cookies:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                            secure=page.praxis.settings.secure_cookies, path="/")
    if page.request.cookies.get(FLASH_COOKIE) and not getattr(page.request.state, "flash_kept", False):
        response.delete_cookie(FLASH_COOKIE, path="/")
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


def render(page: Page, template: str, extra: dict[str, Any] | None = None, *, status: int = 200,
           block: str | None = None) -> Response:
    return finish(page, HTMLResponse(render_text(page, template, extra, block=block), status_code=status))


def redirect_with_flash(page: Page, url: str) -> Response:
    """Redirect after a POST; the page's flash messages show on the next page (signed cookie)."""
    response = redirect(page.request, url)
    if page.flashes:
        response.set_cookie(FLASH_COOKIE, _sign_flashes(page.web, page.flashes), max_age=120, httponly=True,
                            samesite="lax", secure=page.praxis.settings.secure_cookies, path="/")
        page.request.state.flash_kept = True
    return finish(page, response)


# --- flash messages (a signed, short-lived cookie: they are not secret, only must not be forged) -----------


def _flash_key(web: Web) -> bytes:
    return web.praxis.keyring.keys[0].derive("praxis/ui-flash/v1")


def _sign_flashes(web: Web, flashes: list[tuple[str, str]]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(flashes[:5], ensure_ascii=False).encode()).decode()
    mac = hmac.new(_flash_key(web), payload.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{payload}.{mac}"


def read_flashes(request: Request, web: Web) -> list[tuple[str, str]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw or len(raw) > 4000:
        return []
    payload, mac = raw.rsplit(".", 1)
    expected = hmac.new(_flash_key(web), payload.encode(), hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(mac, expected):
        return []
    try:
        items = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return []
    return [(str(level), str(text)) for level, text in items if level in ("success", "error", "info")]


# --- CSRF before a session exists (login form, language switcher) ---------------------------------------------


def _pre_key(web: Web) -> bytes:
    return web.praxis.keyring.keys[0].derive("praxis/ui-pre-session-csrf/v1")


def pre_session_csrf(page: Page) -> str:
    """A token for forms posted before logging in: HMAC of a random cookie (signed double submit).

    The auth layer's CSRF token is bound to the session, which does not exist yet on the login page.
    """
    nonce = page.request.cookies.get(PRE_CSRF_COOKIE)
    if not nonce or len(nonce) > 100:
        existing = [v for n, v, _ in page.set_cookies if n == PRE_CSRF_COOKIE]
        nonce = existing[0] if existing else secrets.token_urlsafe(24)
        if not existing:
            page.set_cookies.append((PRE_CSRF_COOKIE, nonce, 12 * 3600))
    return hmac.new(_pre_key(page.web), nonce.encode(), hashlib.sha256).hexdigest()


def check_pre_session_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a pre-login form post from another site or without the token of this browser's cookie."""
    try:
        check_same_origin(request)
    except ApiError as exc:
        raise _page_error(exc) from None
    nonce = request.cookies.get(PRE_CSRF_COOKIE) or ""
    expected = hmac.new(_pre_key(web_of(request)), nonce.encode(), hashlib.sha256).hexdigest()
    if not nonce or not submitted or not hmac.compare_digest(expected, submitted):
        raise PageError(403, "csrf_failed")
