"""Mount the routers plugins contribute; they answer only in clinics where the plugin is enabled.

Plugins cannot import the core's auth layer, so the core puts a ``WebBridge`` on ``app.state`` that
``plugin_sdk.web.require(code)`` calls: the same 401/404/403 checks as ``clinic_permission(code)``, then a
``Caller`` with the plugin's context in the clinic of the URL.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from core import audit
from core.app_context import Praxis
from core.db import transaction
from plugin_sdk.web import BRIDGE_ATTRIBUTE, Caller, RouteError

#: ``request.state`` attribute naming the plugin whose route is being served (set by the enabled guard).
PLUGIN_STATE = "praxis_plugin"


def _enabled_guard(plugin: str):  # type: ignore[no-untyped-def]
    def guard(request: Request, clinic_id: int) -> None:
        praxis: Praxis = request.app.state.praxis
        if not praxis.runtime.is_enabled(clinic_id, plugin):
            raise HTTPException(404, f"{plugin} is not enabled in clinic {clinic_id}")
        setattr(request.state, PLUGIN_STATE, plugin)

    return guard


class CoreWebBridge:
    """The core's side of ``plugin_sdk.web``."""

    def __init__(self, praxis: Praxis) -> None:
        self.praxis = praxis

    async def caller(self, request: Request, code: str) -> Caller:
        from core.auth.deps import clinic_id_of, clinic_permission, current_principal

        plugin = getattr(request.state, PLUGIN_STATE, None)
        if plugin is None:
            raise RuntimeError("plugin_sdk.web.require() is meant for routes a plugin contributes")
        principal = await current_principal(request)
        clinic_permission(code)(request, principal)  # 404 not a member, 403 without the permission
        clinic_id = clinic_id_of(request)
        actor = principal.actor
        praxis = self.praxis

        def audit_as_user(action: str, *, target: str | None = None, data: dict[str, Any] | None = None,
                          session: Any = None) -> None:
            name = f"{plugin}.{action}"
            if session is not None:
                audit.record(session, actor, name, clinic_id=clinic_id, target=target, data=data)
                return
            with transaction(praxis.engine) as own:
                audit.record(own, actor, name, clinic_id=clinic_id, target=target, data=data)

        def save_settings(changes: dict[str, Any]) -> dict[str, Any]:
            return praxis.plugins.configure(clinic_id, plugin, dict(changes), actor)

        return Caller(
            user_id=principal.user_id, name=principal.name, clinic_id=clinic_id,
            permissions=principal.permissions_in(clinic_id), ctx=praxis.runtime.context(plugin, clinic_id),
            _audit=audit_as_user, _save_settings=save_settings,
        )


async def _route_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RouteError)
    return JSONResponse({"error": exc.code, "message": exc.message, **exc.extra}, exc.status_code,
                        headers=exc.headers)


def install(app: FastAPI, praxis: Praxis) -> None:
    """The bridge ``plugin_sdk.web`` calls and the handler of plugins' ``RouteError``."""
    setattr(app.state, BRIDGE_ATTRIBUTE, CoreWebBridge(praxis))
    app.add_exception_handler(RouteError, _route_error)


def include_routers(app: Any, praxis: Praxis) -> None:
    """Include each available plugin's ``praxis_routes`` router under ``/api/clinics/{clinic_id}/x/<plugin>``
    (``app`` is the app or the lazily built group standing for them in it)."""
    for result in praxis.runtime.collect("praxis_routes"):
        if result.error is not None or result.value is None:
            continue
        app.include_router(
            result.value,
            prefix=f"/api/clinics/{{clinic_id}}/x/{result.plugin}",
            dependencies=[Depends(_enabled_guard(result.plugin))],
            tags=[f"plugin: {result.plugin}"],
        )
