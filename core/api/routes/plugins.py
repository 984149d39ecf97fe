"""Per-clinic plugin administration: list, enable, disable, settings, connection test, health."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from core.api.deps import get_praxis
from core.app_context import Praxis
from core.auth.deps import Principal, clinic_permission

router = APIRouter(prefix="/api/clinics/{clinic_id}/plugins", tags=["plugins"])


class PluginOut(BaseModel):
    name: str
    title: str
    description: str
    version: str | None
    category: str | None
    countries: list[str]
    requires: dict[str, str]
    state: str = Field(description="enabled, disabled, quarantined, unhealthy or not_allowed")
    reason: str | None = None
    last_error: str | None = None
    failures: int = 0
    has_settings: bool = False
    settings: dict[str, Any] = Field(default_factory=dict, description="Secrets appear only as {'set': bool}.")


class EnableIn(BaseModel):
    with_dependencies: bool = Field(False, description="Also enable the plugins this one needs.")


class EnableOut(BaseModel):
    enabled: list[str]


class CheckOut(BaseModel):
    ok: bool
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


@router.get("", response_model=list[PluginOut])
def list_plugins(clinic_id: int, praxis: Praxis = Depends(get_praxis),
                 _: Principal = Depends(clinic_permission("plugins.view"))) -> list[dict[str, Any]]:
    return [asdict(s) for s in praxis.plugins.statuses(clinic_id)]


@router.get("/{name}", response_model=PluginOut)
def get_plugin(clinic_id: int, name: str, praxis: Praxis = Depends(get_praxis),
               _: Principal = Depends(clinic_permission("plugins.view"))) -> dict[str, Any]:
    praxis.plugins.plugin(name)
    return next(asdict(s) for s in praxis.plugins.statuses(clinic_id) if s.name == name)


@router.post("/{name}/enable", response_model=EnableOut)
def enable_plugin(clinic_id: int, name: str, body: EnableIn | None = None, praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(clinic_permission("plugins.manage"))) -> dict[str, Any]:
    with_deps = body.with_dependencies if body else False
    return {"enabled": praxis.plugins.enable(clinic_id, name, who.actor, with_dependencies=with_deps)}


@router.post("/{name}/disable", status_code=204)
def disable_plugin(clinic_id: int, name: str, praxis: Praxis = Depends(get_praxis),
                   who: Principal = Depends(clinic_permission("plugins.manage"))) -> None:
    praxis.plugins.disable(clinic_id, name, who.actor)


@router.put("/{name}/settings", response_model=dict[str, Any])
def save_settings(clinic_id: int, name: str, body: dict[str, Any], praxis: Praxis = Depends(get_praxis),
                  who: Principal = Depends(clinic_permission("plugins.manage"))) -> dict[str, Any]:
    return praxis.plugins.configure(clinic_id, name, body, who.actor)


@router.post("/{name}/test-connection", response_model=CheckOut)
def test_connection(clinic_id: int, name: str, body: dict[str, Any], praxis: Praxis = Depends(get_praxis),
                    _: Principal = Depends(clinic_permission("plugins.manage"))) -> dict[str, Any]:
    return asdict(praxis.plugins.test_connection(clinic_id, name, body))


@router.post("/{name}/health/reset", status_code=204)
def reset_health(clinic_id: int, name: str, praxis: Praxis = Depends(get_praxis),
                 who: Principal = Depends(clinic_permission("plugins.manage"))) -> None:
    praxis.plugins.reset_health(clinic_id, name, who.actor)
