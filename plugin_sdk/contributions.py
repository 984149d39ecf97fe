"""Small value types that plugins return from contribution hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugin_sdk.context import MessageView, PluginContext

PLACEHOLDER_TYPES = ("text", "date", "time", "url", "number")


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


@dataclass(frozen=True)
class Placeholder:
    """A ``{name}`` that message templates may use in clinics where the plugin is enabled.

    ``resolve(ctx, message)`` returns the text for one message (``message`` is a read-only
    ``plugin_sdk.context.MessageView``); it is called when the message is written, i.e. when it goes out, and
    when staff preview a template with a real patient, so it must not change anything. Return ``None`` when
    there is no value for this message: the message then fails with that reason instead of going out with a
    blank. Raise ``RetryableError`` if the value is only unavailable for now. ``description`` is a msgid of
    the plugin's catalog; ``sample`` is shown in previews with sample data; ``needs_appointment`` keeps the
    placeholder out of templates of messages without an appointment (birthdays, manual sendings).
    """

    name: str
    description: str
    resolve: Callable[[PluginContext, MessageView], str | None]
    type: str = "text"
    needs_appointment: bool = False
    sample: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.isascii():
            raise ValueError(f"placeholder {self.name!r}: the name must be an ASCII identifier, e.g. 'portal_code'")
        if self.type not in PLACEHOLDER_TYPES:
            raise ValueError(f"placeholder {self.name!r}: type must be one of {', '.join(PLACEHOLDER_TYPES)}")
