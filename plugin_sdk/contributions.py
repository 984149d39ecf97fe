"""Small value types that plugins return from contribution hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugin_sdk.context import PluginContext


@dataclass(frozen=True)
class MenuItem:
    """An entry in the main menu. ``title`` is a msgid from the plugin's catalog."""

    title: str
    url: str
    permission: str | None = None
    icon: str | None = None
    order: int = 100


@dataclass(frozen=True)
class Panel:
    """A panel a plugin adds to a screen. ``url`` is a route of the plugin's own (relative to its mount point
    ``/api/clinics/{clinic_id}/x/<plugin>``) with ``{patient_id}`` or ``{appointment_id}`` filled in by the UI;
    the UI loads it and shows the JSON or HTML it returns. ``title`` is a msgid from the plugin's catalog."""

    title: str
    url: str
    permission: str | None = None
    order: int = 100


@dataclass(frozen=True)
class IdentifierType:
    """A typed national or professional identifier a plugin contributes (e.g. Hungarian TAJ).

    ``normalize`` returns the canonical form or raises ``ValueError`` with a readable reason;
    ``mask`` returns what staff see in lists (e.g. '*** *** 210').
    """

    code: str
    title: str
    country: str
    applies_to: str  # "patient" or "staff"
    normalize: Callable[[str], str]
    mask: Callable[[str], str]


@dataclass(frozen=True)
class PeriodicJob:
    """A job the worker runs for every clinic the plugin is enabled in.

    Give either ``every`` or a five-field ``cron`` expression (evaluated in the clinic's time zone).
    Each due run happens once even with several workers.
    """

    name: str
    run: Callable[[PluginContext], None]
    every: timedelta | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"periodic job {self.name!r}: give exactly one of 'every' and 'cron'")
        if self.every is not None and self.every < timedelta(seconds=1):
            raise ValueError(f"periodic job {self.name!r}: 'every' must be at least one second")


@dataclass(frozen=True)
class ConnectionCheck:
    """The answer of ``praxis_test_connection``: ``ok`` plus readable details for the admin."""

    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)
