"""Mount the routers plugins contribute; they answer only in clinics where the plugin is enabled."""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Request

from core.app_context import Praxis


def _enabled_guard(plugin: str):  # type: ignore[no-untyped-def]
    def guard(request: Request, clinic_id: int) -> None:
        praxis: Praxis = request.app.state.praxis
        if not praxis.runtime.is_enabled(clinic_id, plugin):
            raise HTTPException(404, f"{plugin} is not enabled in clinic {clinic_id}")

    return guard


def mount(app: FastAPI, praxis: Praxis) -> None:
    for result in praxis.runtime.collect("praxis_routes"):
        app.include_router(
            result.value,
            prefix=f"/api/clinics/{{clinic_id}}/x/{result.plugin}",
            dependencies=[Depends(_enabled_guard(result.plugin))],
            tags=[f"plugin: {result.plugin}"],
        )
