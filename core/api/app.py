"""The FastAPI application factory.

Route groups (the core API's route modules, the plugins' routers, the UI) are built on first need, not
here: see ``core.api.lazy_routes`` for when, and ``bench/README.md`` for what the first request to a group
costs. The order of the app's routes, their prefixes, dependencies and tags, the exception handlers and
the OpenAPI document are the same as when everything was built at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from core import __version__
from core.api import errors
from core.api.lazy_routes import LazyState, PraxisApp, add_group, after_build, start_warming
from core.api.routes import health
from core.app_context import Praxis, bootstrap

log = logging.getLogger(__name__)

CLINIC = "/api/clinics/{clinic_id}"


def create_app(praxis: Praxis | None = None, *, start_worker: bool | None = None) -> FastAPI:
    """Build the app. Without ``praxis`` it bootstraps from the environment."""
    praxis = praxis or bootstrap()
    run_worker = praxis.settings.embedded_worker if start_worker is None else start_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if run_worker:
            from core.outbox.worker import Worker

            worker = Worker(praxis, name="embedded")
            worker.start_thread()
        start_warming(app)  # build the route groups now rather than on their first requests
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()

    app = PraxisApp(title="Praxis", version=__version__, lifespan=lifespan,
                    description="Practice platform for clinics. Every route needs a session or an API token.")
    app.lazy_groups = []
    app.state = LazyState()
    app.state.praxis = praxis
    errors.install(app)
    after_build(errors.install_late)
    _install_auth(app)
    app.include_router(health.router)
    _install_plugin_bridge(app, praxis)
    # Each group: its place among the routes, the paths its routes are under, what builds it.
    add_group(app, "plugins", [f"{CLINIC}/plugins"], _routers("plugins", "router"))
    add_group(app, "auth", ["/api/auth"], _routers("auth", "router"))
    add_group(app, "users", ["/api/users", "/api/roles", "/api/permissions"],
              _routers("users", "router", "roles_router", "permissions_router"))
    add_group(app, "clinics", ["/api/clinics$", f"{CLINIC}$", f"{CLINIC}/access-log"], _routers("clinics", "router"))
    add_group(app, "patients", [f"{CLINIC}/patients"], _routers("patients", "router"))
    add_group(app, "outbox", [f"{CLINIC}/outbox"], _routers("outbox", "router"))
    add_group(app, "scheduling", [f"{CLINIC}/{p}" for p in ("appointment-options", "appointment-statuses",
                                                              "days-off", "doctors", "free-slots", "holidays",
                                                              "rooms", "working-hours")],
              _routers("scheduling", "router"))
    add_group(app, "appointments", [f"{CLINIC}/{p}" for p in ("appointments", "pinboard", "series", "waitlist")],
              _routers("appointments", "router"))
    add_group(app, "labs", [f"{CLINIC}/labs"], _routers("labs", "router"))
    add_group(app, "messaging", [f"{CLINIC}/messaging"], _routers("messaging", "router"))
    add_group(app, "records", [f"{CLINIC}/records"], _routers("records", "router"))
    add_group(app, "messaging-callbacks", ["/api/messaging"], _routers("messaging", "callbacks"))
    add_group(app, "plugin-routes", [f"{CLINIC}/x"], lambda target: _plugin_routes(target, praxis))
    # web pages, /static and the page error handler
    add_group(app, "ui", ["/$", "/login", "/logout", "/language", "/account", "/clinics", "/static"],
              _ui, provides=["ui"])
    return app


def _routers(module: str, *names: str) -> Any:
    def build(target: Any) -> None:
        import importlib

        routes = importlib.import_module(f"core.api.routes.{module}")
        for name in names:
            target.include_router(getattr(routes, name))

    return build


def _install_plugin_bridge(app: FastAPI, praxis: Praxis) -> None:
    from core.api.plugin_routes import install

    install(app, praxis)


def _plugin_routes(target: Any, praxis: Praxis) -> None:
    from core.api.plugin_routes import include_routers

    include_routers(target, praxis)


def _ui(target: Any) -> None:
    from ui import install as install_ui

    install_ui(target)


def _install_auth(app: FastAPI) -> None:
    from core.auth.errors import install

    install(app)
