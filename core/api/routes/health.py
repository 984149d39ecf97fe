"""Liveness and per-plugin health. Open to monitoring without login; reveals no patient data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text

from core.api.deps import get_praxis
from core.app_context import Praxis

router = APIRouter(tags=["health"])


@router.get("/health")
def health(praxis: Praxis = Depends(get_praxis)) -> JSONResponse:
    try:
        with praxis.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # the point of /health is to report this, not raise it
        database = f"error: {type(exc).__name__}"
    snap = praxis.runtime.snapshot()
    plugins: dict[str, Any] = {}
    for name, loaded in sorted(praxis.runtime.plugins.items()):
        if loaded.quarantined:
            plugins[name] = {"state": "quarantined", "reason": loaded.quarantine_reason}
            continue
        open_in = sorted(c for (c, p), h in snap.health.items() if p == name and h.circuit_open)
        plugins[name] = {"state": "unhealthy" if open_in else "ok", "unhealthy_in_clinics": open_in}
    status = "ok" if database == "ok" else "degraded"
    return JSONResponse({"status": status, "database": database, "plugins": plugins},
                        status_code=200 if status == "ok" else 503)
