"""Errors of the auth layer, answered as ``{"error", "message"}`` JSON like every other API error."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from plugin_sdk.errors import FieldError, ValidationFailed


class ApiError(HTTPException):
    """An HTTP error with a stable ``error`` code. Subclasses HTTPException so it still answers sensibly
    (as ``{"detail": ...}``) in an app that did not install :func:`install`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 **extra: object) -> None:
        super().__init__(status, message, headers=headers)
        self.code = code
        self.message = message
        self.extra = extra


def unauthenticated(message: str = "log in or send an API token") -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str, code: str = "forbidden") -> ApiError:
    return ApiError(403, code, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(code: str, message: str, **extra: object) -> ApiError:
    return ApiError(409, code, message, **extra)


def invalid(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    """A 422 naming one field (``ValidationFailed`` is answered by core.api.errors)."""
    return ValidationFailed([FieldError(field, message, code)])


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        body = {"error": exc.code, "message": exc.message, **exc.extra}
        return JSONResponse(body, exc.status_code, headers=exc.headers)
