"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core import __version__
from core.api import errors
from core.api.routes import health, plugins
from core.app_context import Praxis, bootstrap

log = logging.getLogger(__name__)


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
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()

    app = FastAPI(title="Praxis", version=__version__, lifespan=lifespan,
                  description="Practice platform for clinics. Every route needs a session or an API token.")
    app.state.praxis = praxis
    errors.install(app)
    _install_auth(app)
    app.include_router(health.router)
    app.include_router(plugins.router)
    from core.api.routes import auth as auth_routes
    from core.api.routes import clinics as clinic_routes
    from core.api.routes import users as user_routes

    app.include_router(auth_routes.router)
    app.include_router(user_routes.router)
    app.include_router(user_routes.roles_router)
    app.include_router(user_routes.permissions_router)
    app.include_router(clinic_routes.router)
    from core.api.routes import patients as patient_routes

    app.include_router(patient_routes.router)
    from core.api.routes import outbox as outbox_routes

    app.include_router(outbox_routes.router)
    from core.api.routes import appointments as appointment_routes
    from core.api.routes import scheduling as scheduling_routes

    scheduling_routes.install_errors(app)
    app.include_router(scheduling_routes.router)
    app.include_router(appointment_routes.router)
    from core.api.routes import labs as lab_routes

    lab_routes.install_errors(app)
    app.include_router(lab_routes.router)
    from core.api.routes import messaging as messaging_routes

    app.include_router(messaging_routes.router)
    from core.api.routes import records as record_routes

    app.include_router(record_routes.router)
    app.include_router(messaging_routes.callbacks)
    _mount_plugin_routes(app, praxis)
    from ui import install as install_ui

    install_ui(app)  # web pages, /static and the page error handler
    return app


def _mount_plugin_routes(app: FastAPI, praxis: Praxis) -> None:
    from core.api.plugin_routes import mount

    mount(app, praxis)


def _install_auth(app: FastAPI) -> None:
    from core.auth.errors import install

    install(app)
