"""Pytest fixtures for Praxis plugins, registered through the ``pytest11`` entry point ``praxis``.

Installing Praxis makes these available in every test without imports:

* ``praxis_clock``: a frozen clock that the core and every ``ctx.now()`` read; ``.now``, ``.advance(delta)``,
  ``.set(when)``. The system clock is back after the test.
* ``plugin_app``: ``plugin_app(module_or_entry_point, settings={...}, country="HU")`` builds a real Praxis on a
  temporary database with one clinic and the plugin enabled and configured. See ``plugin_sdk.testing.app``.

Set ``PRAXIS_TEST_DATABASE_URL=postgresql://user@host:5432/db`` to run on PostgreSQL (one fresh database per
app, dropped afterwards); SQLite files under pytest's temporary directory otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plugin_sdk.testing.clock import PraxisClock


@pytest.fixture
def praxis_clock() -> Iterator[PraxisClock]:
    """A frozen clock starting at ``PraxisClock.DEFAULT_START`` (a Monday, 08:00 UTC)."""
    clock = PraxisClock().install()
    try:
        yield clock
    finally:
        clock.uninstall()


def _factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    from plugin_sdk.testing.app import build_plugin_app

    made: list[Any] = []

    def make(target: Any, settings: dict[str, Any] | None = None, country: str = "HU", **options: Any) -> Any:
        workdir = tmp_path_factory.mktemp("praxis-app")
        app = build_plugin_app(target, workdir=workdir, settings=settings, country=country, **options)
        made.append(app)
        return app

    try:
        yield make
    finally:
        for app in reversed(made):
            app.close()


@pytest.fixture
def plugin_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """A factory: ``plugin_app(target, settings=None, country="HU", **options) -> PluginApp``.

    ``target`` is the plugin module, its entry point, an installed plugin's name or ``"name = module"``.
    Options: ``also`` (more plugins to install), ``timezone``, ``locale``, ``clinic_name``, ``enable``
    (default True), ``plugins_toml`` (text of an install policy). Every app is closed and its database
    dropped after the test.
    """
    yield from _factory(tmp_path_factory)


@pytest.fixture(scope="module")
def module_plugin_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """Like ``plugin_app``, but the apps live until the end of the test module: build one in a module- or
    class-scoped fixture to share it between tests (building an app migrates a fresh database)."""
    yield from _factory(tmp_path_factory)
