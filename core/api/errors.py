"""Every error the API returns is JSON: a stable ``error`` code, a readable ``message`` and, for
validation problems, ``fields``: a list of ``{field, message, code}``."""

from __future__ import annotations

import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.plugins.service import PluginOperationError
from core.plugins.settings import SettingsInvalid
from core.scheduling.errors import SchedulingError
from plugin_sdk.errors import FieldError, ValidationFailed


def field_list(errors: list[FieldError]) -> list[dict[str, str]]:
    return [{"field": e.field, "message": e.message, "code": e.code} for e in errors]


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": code, "message": message, **extra}


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for error in exc.errors():
            loc = [str(p) for p in error["loc"] if p not in ("body", "query", "path")]
            fields.append({"field": ".".join(loc) or "__all__", "message": error["msg"], "code": error["type"]})
        return JSONResponse(error_body("validation_error", "the request is not valid", fields=fields), 422)

    @app.exception_handler(ValidationFailed)
    async def _vetoed(_: Request, exc: ValidationFailed) -> JSONResponse:
        return JSONResponse(
            error_body("validation_error", str(exc), fields=field_list(exc.errors), plugin=exc.plugin), 422
        )

    @app.exception_handler(SettingsInvalid)
    async def _settings(_: Request, exc: SettingsInvalid) -> JSONResponse:
        return JSONResponse(error_body("validation_error", "the settings are not valid",
                                       fields=field_list(exc.errors)), 422)

    @app.exception_handler(PluginOperationError)
    async def _plugin_op(_: Request, exc: PluginOperationError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc), names=exc.details), exc.status)

    # 404 / 403 / 409 bodies for the scheduling service's errors (conflicts list the appointments)
    app.add_exception_handler(SchedulingError, service_error)
    install_late(app)


async def service_error(_: Request, exc: Any) -> JSONResponse:
    """A core service's error (``status``, ``code``, ``details``): scheduling and labs."""
    return JSONResponse({"error": exc.code, "message": str(exc), **exc.details}, exc.status)


#: Errors of core features whose modules load with their routes (importing ``core.labs`` costs start-up
#: time): their handler is registered once the module is imported, which ``core.api.lazy_routes`` checks
#: after building each route group (only route groups' code imports them while serving).
LATE_HANDLERS = (("core.labs.errors", "LabError", service_error),)


def install_late(app: FastAPI) -> None:
    """Register the handlers of ``LATE_HANDLERS`` whose module is imported by now (once each)."""
    from core.api.lazy_routes import add_late_exception_handler

    for module, name, handler in LATE_HANDLERS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and app.exception_handlers.get(cls) is not handler:
            add_late_exception_handler(app, cls, handler)
