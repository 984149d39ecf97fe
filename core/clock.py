"""The one source of "now" in the core, so tests and plugins' test fixtures can move time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _now()


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Replace the time source (``None`` restores the system clock)."""
    global _now
    _now = source if source is not None else (lambda: datetime.now(UTC))
