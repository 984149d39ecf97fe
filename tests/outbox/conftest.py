"""Fixtures for the outbox tests: fixture plugins under tests/outbox/plugins and a controllable clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint

import pytest

from core import clock


def outbox_plugin(name: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"tests.outbox.plugins.{name}", group="praxis.plugins")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at


@pytest.fixture
def frozen() -> Iterator[Clock]:
    source = Clock(datetime(2026, 3, 10, 10, 0, 30, tzinfo=UTC))
    clock.set_clock(source)
    yield source
    clock.set_clock(None)


@pytest.fixture(autouse=True)
def _reset_plugin_records() -> Iterator[None]:
    from tests.outbox.plugins import courier, listener, ticker

    for records in (courier.CALLS, courier.EVENTS, listener.EVENTS, ticker.RUNS):
        records.clear()
    yield
