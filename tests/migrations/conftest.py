"""Fixtures of the migration tests: the ``notes_plugin`` fixture plugin, which owns a table."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from core.app_context import Praxis, bootstrap

NOTES = "notes_plugin"


def notes_entry_point() -> EntryPoint:
    return EntryPoint(NOTES, "tests.migrations.plugins.notes_plugin", "praxis.plugins")


@pytest.fixture
def notes_praxis(make_praxis: Callable[..., Praxis]) -> Praxis:
    """A Praxis with the notes plugin installed (not yet enabled anywhere)."""
    return make_praxis([notes_entry_point()])


@pytest.fixture
def reopen(make_settings: Callable[..., Any]) -> Any:
    """Open the same database again with other plugins installed, without migrating at start."""
    made: list[Praxis] = []

    def open_again(entry_points: list[EntryPoint] | None = None) -> Praxis:
        praxis = bootstrap(make_settings(), entry_points=entry_points or [], migrate=False)
        made.append(praxis)
        return praxis

    yield open_again
    for praxis in made:
        praxis.close()


@pytest.fixture
def installed_plugins(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[EntryPoint]], None]:
    """Make the CLI (which loads installed entry points) see exactly these plugins."""

    def install(entry_points: list[EntryPoint]) -> None:
        monkeypatch.setattr("core.plugins.discovery.installed_entry_points", lambda: list(entry_points))

    return install
