"""What a plugin's own routes use: who is calling, whether they may, and errors answered like the core's.

A plugin's router (``praxis_routes``) is mounted under ``/api/clinics/{clinic_id}/x/<plugin>``. The plugin cannot
import the core's auth layer, so it guards each route with ``require``::

    from fastapi import APIRouter, Depends
    from plugin_sdk.web import Caller, RouteError, require

    router = APIRouter()

    @router.get("/documents/{patient_id}")
    def documents(patient_id: str, caller: Caller = Depends(require("eeszt.use"))) -> dict:
        patient = caller.ctx.patient(patient_id)
        if patient is None:
            raise RouteError(404, "not_found", "no such patient in this clinic")
        ...

``require(code)`` answers exactly like the core's routes: 401 without a session or API token (and 403 for a
cookie session without its CSRF token on POST/PUT/PATCH/DELETE), 404 when the caller is not a member of the
clinic, 403 without ``code`` in that clinic; routes of a plugin disabled in the clinic answer 404 before that.
It returns a ``Caller``: the user, their permissions in the clinic, a ``PluginContext`` for the plugin in that
clinic, ``audit`` (journal entries made as the user, not as the plugin) and ``save_settings``.

Raise ``RouteError(status, code, message)`` for ``{"error", "message"}`` answers and
``plugin_sdk.ValidationFailed([FieldError(...)])`` for a 422 naming fields, as the core does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import HTTPException, Request

from plugin_sdk.manifest import PERMISSION_CODE

if TYPE_CHECKING:
    from sqlmodel import Session

    from plugin_sdk.context import PluginContext

#: Where the core puts its ``WebBridge`` on the FastAPI app (``app.state``).
BRIDGE_ATTRIBUTE = "praxis_plugin_web"


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a plugin route, in the clinic of the URL."""

    user_id: int
    name: str
    clinic_id: int
    permissions: frozenset[str]
    ctx: PluginContext
    _audit: Callable[..., None] = field(repr=False, compare=False)
    _save_settings: Callable[[dict[str, Any]], dict[str, Any]] = field(repr=False, compare=False)

    def has(self, code: str) -> bool:
        """Whether the caller holds ``code`` in this clinic."""
        return code in self.permissions

    def audit(self, action: str, *, target: str | None = None, data: dict[str, Any] | None = None,
              session: Session | None = None) -> None:
        """Append ``<plugin>.<action>`` to the audit journal with this user as the actor (in ``session``'s
        transaction when given)."""
        self._audit(action, target=target, data=data, session=session)

    def save_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change some of the plugin's settings in this clinic, as the settings form would: the other fields
        keep their values, secrets are stored encrypted, the change is validated (``praxis_validate_settings``
        too; ``ValidationFailed``/422 naming the fields otherwise) and audited as this user. Returns the public
        view (secrets only as set or not)."""
        return self._save_settings(changes)


class WebBridge(Protocol):
    """Implemented by the core and put on ``app.state.praxis_plugin_web``."""

    async def caller(self, request: Request, code: str) -> Caller:
        """Authenticate the request and check ``code`` in the URL's clinic (401/404/403), or raise."""
        ...


class RouteError(HTTPException):
    """An error answered as ``{"error": code, "message": message, **extra}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(status, message, headers=headers)
        self.code = code
        self.message = message
        self.extra = extra


def require(code: str) -> Callable[[Request], Awaitable[Caller]]:
    """A FastAPI dependency for plugin routes: the ``Caller``, who must hold permission ``code`` in the
    clinic of the URL (a permission the plugin's manifest declares, or a core one such as 'patients.view')."""
    if not PERMISSION_CODE.match(code):
        raise ValueError(f"{code!r} is not a permission code (dotted lower-case words)")

    async def require_permission(request: Request) -> Caller:
        bridge: WebBridge | None = getattr(request.app.state, BRIDGE_ATTRIBUTE, None)
        if bridge is None:
            raise RuntimeError("plugin routes need the Praxis core: it installs app.state.praxis_plugin_web")
        return await bridge.caller(request, code)

    require_permission.__qualname__ = f"require({code!r})"
    return require_permission
