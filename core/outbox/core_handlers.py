"""Outbox handlers owned by the core itself: topics starting with ``core.``.

The worker hands an item whose topic starts with ``core.`` to the handler registered here for its topic
instead of a plugin's ``praxis_outbox_handlers``. A handler is ``handler(praxis, message, plugin)``:
``message`` is the ``OutboxMessage`` (payload, attempt, idempotency key) and ``plugin`` the item's plugin.

* Items the core queues for itself (the message sender, the daily planner, the delivery-report poller)
  carry ``plugin = "core"``: no plugin stands behind them, so the worker skips the plugin checks
  (installed, enabled, circuit) and the handler applies them to the plugin it picks at run time (e.g. the
  messaging provider enabled in the clinic), counting that plugin's failures itself.
* Items a plugin queues for a core topic (e.g. ``core.messaging.event`` to report a lab result) carry the
  plugin's name and pass the usual checks: disabled plugins' items are skipped, open circuits postpone.

Raise ``plugin_sdk.errors`` exceptions to steer the outbox exactly as plugin handlers do.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.app_context import Praxis
    from plugin_sdk.context import OutboxMessage

CORE_PREFIX = "core."
CORE_PLUGIN = "core"
#: Modules that register core handlers when imported; loaded on first lookup so the worker does not
#: import every core feature at start-up.
HANDLER_MODULES = ("core.messaging.delivery", "core.labs.poll")

Handler = Callable[["Praxis", "OutboxMessage", str], Any]

_lock = threading.Lock()
_handlers: dict[str, Handler] = {}
_loaded = False


def is_core_topic(topic: str) -> bool:
    return topic.startswith(CORE_PREFIX)


def register(topic: str, handler: Handler) -> None:
    """Register the handler of a ``core.*`` topic (once; registering the same function again is a no-op)."""
    if not is_core_topic(topic):
        raise ValueError(f"core topics start with {CORE_PREFIX!r}: {topic!r}")
    with _lock:
        existing = _handlers.get(topic)
        if existing is not None and existing is not handler:
            raise ValueError(f"topic {topic!r} already has a core handler")
        _handlers[topic] = handler


def get(topic: str) -> Handler | None:
    _load()
    with _lock:
        return _handlers.get(topic)


def topics() -> list[str]:
    _load()
    with _lock:
        return sorted(_handlers)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in HANDLER_MODULES:
        importlib.import_module(module)
    _loaded = True
