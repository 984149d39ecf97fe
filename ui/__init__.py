"""The web UI: server-rendered Jinja2 pages with htmx (vendored, no CDN), in five languages.

``install(app)`` mounts the pages, the static files at ``/static`` (and each plugin's at
``/static/plugins/<plugin>/``) and the page error handler on the FastAPI app built by ``core.api.app``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def install(app: FastAPI) -> None:
    from ui.routes import (
        admin_audit,
        admin_outbox,
        admin_staff,
        auth,
        book,
        desk,
        home,
        labs,
        messaging,
        messaging_rules,
        messaging_settings,
        messaging_templates,
        plugins,
        records,
    )
    from ui.web import STATIC, PageError, Web, handle_page_error

    praxis = app.state.praxis
    app.state.ui = Web(praxis)
    app.add_exception_handler(PageError, handle_page_error)
    app.include_router(auth.router)
    app.include_router(home.router)
    app.include_router(plugins.router)
    app.include_router(desk.router)
    app.include_router(book.router)
    app.include_router(admin_staff.router)
    app.include_router(admin_audit.router)
    app.include_router(admin_outbox.router)
    app.include_router(records.router)
    app.include_router(labs.router)
    app.include_router(messaging_rules.router)
    app.include_router(messaging_templates.router)
    app.include_router(messaging_settings.router)
    app.include_router(messaging.router)
    for result in praxis.runtime.collect("praxis_static_dir"):
        if result.value is not None and Path(result.value).is_dir():
            app.mount(f"/static/plugins/{result.plugin}", StaticFiles(directory=str(result.value)),
                      name=f"static-{result.plugin}")
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
