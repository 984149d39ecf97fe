"""Dependencies shared by every route."""

from __future__ import annotations

from fastapi import Request

from core.app_context import Praxis


def get_praxis(request: Request) -> Praxis:
    return request.app.state.praxis
