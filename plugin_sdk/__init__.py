"""The Praxis plugin SDK: the one package a plugin imports.

Read ``plugin_sdk/README.md`` for a one-page guide and ``plugin_sdk/hookspecs.py`` for every hook.
``API_VERSION`` is what a manifest's ``api`` range is checked against.
"""

from __future__ import annotations

import pluggy

from plugin_sdk.context import ClinicInfo, OutboxMessage, PluginContext
from plugin_sdk.contributions import ConnectionCheck, IdentifierType, MenuItem, Panel, PeriodicJob
from plugin_sdk.errors import (
    FieldError,
    PermanentError,
    PluginError,
    RetryableError,
    UnknownOutcomeError,
    ValidationFailed,
)
from plugin_sdk.events import DomainEvent, EventName
from plugin_sdk.manifest import Category, PermissionSpec, PluginManifest

API_VERSION = "1.0"

hookimpl = pluggy.HookimplMarker("praxis")


def N_(message: str) -> str:
    """Mark a string for translation without translating it here (manifest titles, menu items)."""
    return message


__all__ = [
    "API_VERSION",
    "Category",
    "ClinicInfo",
    "ConnectionCheck",
    "DomainEvent",
    "EventName",
    "FieldError",
    "IdentifierType",
    "MenuItem",
    "N_",
    "OutboxMessage",
    "Panel",
    "PeriodicJob",
    "PermanentError",
    "PermissionSpec",
    "PluginContext",
    "PluginError",
    "PluginManifest",
    "RetryableError",
    "UnknownOutcomeError",
    "ValidationFailed",
    "hookimpl",
]
