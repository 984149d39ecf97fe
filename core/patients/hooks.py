"""Keep plugin state from being re-read inside a patient write transaction.

On SQLite every transaction takes the database write lock at BEGIN (``core.db``), and the plugin
state cache refreshes through a transaction of its own. ``runtime.veto`` and ``core.events.emit``
consult that cache, so called late in a write transaction they could wait for the very lock the
caller holds. The state is therefore read once before the transaction and pinned while it runs;
plugin enablement changes are seen by the next write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_pins: dict[int, tuple[int, float]] = {}  # id(state cache) -> (pin count, refresh interval to restore)


@contextmanager
def pinned_plugin_state(runtime: Any) -> Iterator[None]:
    state = runtime.state
    state.get()
    with _lock:
        count, saved = _pins.get(id(state), (0, state.refresh_seconds))
        _pins[id(state)] = (count + 1, saved)
        state.refresh_seconds = float("inf")
    try:
        yield
    finally:
        with _lock:
            count, saved = _pins.pop(id(state))
            if count > 1:
                _pins[id(state)] = (count - 1, saved)
            else:
                state.refresh_seconds = saved
