"""Route groups that are imported and built when first needed, so the app starts without them.

Importing a route module builds its routes (FastAPI analyses every endpoint's parameters and builds
pydantic adapters for them): for the core API, the UI and the plugins' routers that was over half a
second of a start. ``create_app`` therefore puts each group in the app as an empty ``LazyRouter`` at the
place its routers had, and the group fills itself (imports its modules, includes their routers) the
first time:

* a request's path falls under one of the group's ``paths`` (routing reaches the group only when no
  earlier route matched, so the order of the app's routes is the same as when everything was built at
  start-up); a request arriving while its group is being built waits for it;
* the app's routes are read (``app.routes``: the OpenAPI document at /openapi.json and /docs, tests);
* ``app.state.<name>`` is read for a name the group provides (``app.state.ui``);
* the warm-up thread the app's lifespan starts builds every group right after the server starts.

Builds are serialised by one lock. FastAPI includes routers by reference and recomputes an included
router's routes when its version changes, so a group filling its router is FastAPI's own nested-include
mechanism; the prefixes, dependencies, tags and the app's dependency overrides apply exactly as before.

``paths`` must cover every route of the group: after building, each route's path is checked against them,
and a route they miss is logged as an error and the group then answers for every path (slower, still
correct). ``check_coverage`` raises instead, for the tests.

Exception handlers a group's code registers after the app has started serving are put into the running
``ExceptionMiddleware`` too (``add_late_exception_handler``), so they apply from then on to every request,
as if they had been registered at start-up.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts
from starlette._utils import get_route_path
from starlette.datastructures import State
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

log = logging.getLogger(__name__)

#: One build at a time: builds import modules and several groups share some of them.
_BUILD_LOCK = threading.RLock()
_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")

Build = Callable[[Any], None]


def _pattern(paths: Iterable[str]) -> re.Pattern[str]:
    """One regex for path templates: ``/a/{x}`` covers ``/a/1`` and everything below it; a template
    ending in ``$`` covers only itself (with or without a trailing slash)."""
    parts = []
    for template in paths:
        exact = template.endswith("$")
        template = template.removesuffix("$").rstrip("/")
        out, pos = [], 0
        for m in _PARAM.finditer(template):
            out.append(re.escape(template[pos:m.start()]))
            out.append(".*" if m.group(2) == "path" else "[^/]+")
            pos = m.end()
        out.append(re.escape(template[pos:]))
        parts.append("".join(out) + ("/?" if exact else "(?:/.*)?"))
    return re.compile("^(?:" + "|".join(parts) + ")$")


def _sample(template: str) -> str:
    """A concrete path for a route's path template (``{x}`` -> ``1``)."""
    return _PARAM.sub(lambda m: "a/b" if m.group(2) == "path" else "1", template)


class LazyRouter(APIRouter):
    """An ``APIRouter`` that ``build`` fills (through ``include_router``/``mount``) on first need."""

    def __init__(self, app: FastAPI, name: str, paths: Iterable[str], build: Build) -> None:
        super().__init__()
        self.app_ref = app
        self.group = name
        self.paths = tuple(paths)
        self._serves: re.Pattern[str] | None = _pattern(self.paths)
        self._build = build
        self.built = False
        #: CPU seconds the build took (None until built), for bench/README.md and the log.
        self.build_cpu: float | None = None
        self.uncovered: list[str] = []

    def may_serve(self, path: str) -> bool:
        return self._serves is None or self._serves.match(path) is not None

    def ensure_built(self) -> None:
        if self.built:
            return
        with _BUILD_LOCK:
            if self.built:
                return
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                self._build(_Target(self.app_ref, self))
            except BaseException:
                del self.routes[:]  # the next attempt starts afresh
                self._mark_routes_changed()
                raise
            self.build_cpu = time.thread_time() - cpu
            self._check()
            self.built = True
            for hook in _after_build:
                hook(self.app_ref)
            log.debug("route group %s built in %.3f s", self.group, time.perf_counter() - started)

    def _check(self) -> None:
        self.uncovered = [
            ctx.path for ctx in iter_route_contexts(self.routes)
            if ctx.path is not None and not self.may_serve(_sample(ctx.path))
        ]
        if self.uncovered:
            log.error("route group %s: %s not under its paths %s; the group now answers for every path "
                      "(add them in core/api/app.py)", self.group, ", ".join(self.uncovered), self.paths)
            self._serves = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not self.built:
            if not self.may_serve(get_route_path(scope)):
                return Match.NONE, {}
            self.ensure_built()
        return super().matches(scope)


class _Target:
    """What a group's build function gets: routers and mounts go into the group, state and exception
    handlers to the app. Anything else is the app's."""

    def __init__(self, app: FastAPI, group: LazyRouter) -> None:
        self._app = app
        self._group = group

    @property
    def state(self) -> State:
        return self._app.state

    def include_router(self, router: APIRouter, **kwargs: Any) -> None:
        self._group.include_router(router, **kwargs)

    def mount(self, path: str, app: Any = None, name: str | None = None) -> None:
        self._group.mount(path, app=app, name=name)

    def add_exception_handler(self, key: Any, handler: Callable[..., Any]) -> None:
        add_late_exception_handler(self._app, key, handler)

    def exception_handler(self, key: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.add_exception_handler(key, handler)
            return handler

        return decorator

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)


def add_late_exception_handler(app: FastAPI, key: Any, handler: Callable[..., Any]) -> None:
    """Register an exception handler, also in the running middleware stack if the app already serves."""
    app.add_exception_handler(key, handler)
    node: Any = app.middleware_stack
    while node is not None:
        if isinstance(node, ExceptionMiddleware):
            node.add_exception_handler(key, handler)
            return
        node = getattr(node, "app", None)


#: Called with the app after every group build (``core.api.errors`` registers handlers of errors whose
#: modules the build imported).
_after_build: list[Callable[[FastAPI], None]] = []


def after_build(hook: Callable[[FastAPI], None]) -> None:
    if hook not in _after_build:
        _after_build.append(hook)


class LazyState(State):
    """``app.state`` that builds the group providing a missing attribute (e.g. ``ui``) before failing."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        super().__init__(state)
        object.__setattr__(self, "_providers", {})

    def provide(self, name: str, group: LazyRouter) -> None:
        object.__getattribute__(self, "_providers")[name] = group

    def __getattr__(self, key: Any) -> Any:
        try:
            return super().__getattr__(key)
        except AttributeError:
            group = object.__getattribute__(self, "_providers").get(key)
            if group is None or group.built:
                raise
        group.ensure_built()
        return super().__getattr__(key)


class PraxisApp(FastAPI):
    """FastAPI with lazily built route groups: reading ``routes`` (as the OpenAPI document does) builds them."""

    lazy_groups: list[LazyRouter]

    @property
    def routes(self) -> list[BaseRoute]:
        build_all(self)
        return self.router.routes

    def openapi(self) -> dict[str, Any]:
        build_all(self)  # first: FastAPI keys its cached document on the routes' version
        return super().openapi()


def add_group(app: PraxisApp, name: str, paths: Iterable[str], build: Build,
              provides: Iterable[str] = ()) -> LazyRouter:
    """Put a lazily built group at this place of the app's routes."""
    group = LazyRouter(app, name, paths, build)
    app.include_router(group)
    app.lazy_groups.append(group)
    for attribute in provides:
        state = app.state
        assert isinstance(state, LazyState)
        state.provide(attribute, group)
    return group


def build_all(app: FastAPI) -> None:
    for group in getattr(app, "lazy_groups", ()):
        group.ensure_built()


def check_coverage(app: FastAPI) -> None:
    """Build every group; raise if a group has routes outside the paths it declares."""
    build_all(app)
    problems = [f"{g.group}: {', '.join(g.uncovered)}" for g in getattr(app, "lazy_groups", ()) if g.uncovered]
    if problems:
        raise AssertionError("routes outside their group's paths: " + "; ".join(problems))


def start_warming(app: FastAPI) -> threading.Thread:
    """Build every group in a background thread (right after the server started)."""

    def warm() -> None:
        try:
            build_all(app)
        except Exception:
            log.exception("building the app's route groups failed; they are built again on first use")

    thread = threading.Thread(target=warm, name="praxis-route-warm-up", daemon=True)
    thread.start()
    return thread
