"""Fixtures for the auth tests: a Praxis with two clinics, a controllable clock, a permission plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint

import pytest

from core.app_context import Praxis
from core.clock import set_clock
from tests.conftest import add_clinic

PERM_PLUGIN = EntryPoint(name="permplug", value="tests.auth.perm_plugin", group="praxis.plugins")


@dataclass
class World:
    praxis: Praxis
    budapest: int
    seoul: int


@pytest.fixture
def world(make_praxis: Callable[..., Praxis]) -> World:
    praxis = make_praxis([PERM_PLUGIN])
    return World(praxis, add_clinic(praxis, "Budapest"),
                 add_clinic(praxis, "Seoul", country="KR", timezone="Asia/Seoul", locale="ko"))


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock()
    set_clock(c)
    yield c
    set_clock(None)
