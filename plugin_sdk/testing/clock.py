"""A clock tests can stop and move: it replaces ``core.clock`` for the core and every plugin context."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class PraxisClock:
    """A frozen, thread-safe clock installed with ``core.clock.set_clock``.

    Time stands still until the test moves it with ``advance`` or ``set``; ``ctx.now()`` and the
    core (outbox backoff, periodic-job slots, audit timestamps) all read it. ``uninstall`` restores
    the system clock (the ``praxis_clock`` fixture does it for you).
    """

    #: A Monday morning in UTC, so schedules computed from the default start are easy to reason about.
    DEFAULT_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = self._checked(start or self.DEFAULT_START)
        self._installed = False

    @staticmethod
    def _checked(value: datetime) -> datetime:
        if not isinstance(value, datetime):
            raise TypeError(f"the clock needs a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"the clock needs a timezone-aware datetime, got naive {value.isoformat()}")
        return value.astimezone(UTC)

    @property
    def now(self) -> datetime:
        """The current test time, timezone-aware UTC."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by ``delta`` (never backward) and return the new time."""
        if not isinstance(delta, timedelta):
            raise TypeError(f"advance() needs a timedelta, got {type(delta).__name__}")
        if delta < timedelta(0):
            raise ValueError("advance() cannot move time backward; use set() for that")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, value: datetime) -> datetime:
        """Jump to ``value`` (aware; converted to UTC) and return it."""
        checked = self._checked(value)
        with self._lock:
            self._now = checked
            return checked

    def _read(self) -> datetime:
        with self._lock:
            return self._now

    def install(self) -> PraxisClock:
        from core import clock

        clock.set_clock(self._read)
        self._installed = True
        return self

    def uninstall(self) -> None:
        from core import clock

        if self._installed:
            clock.set_clock(None)
            self._installed = False

    def __enter__(self) -> PraxisClock:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
