"""Start-up tuning of CPython's cyclic garbage collector.

Starting Praxis allocates about 250,000 objects that live as long as the process: modules, SQLAlchemy
tables and mappers, pydantic schemas, routes. CPython runs a full collection each time the oldest
generation has grown by a quarter, so a start used to run four to six full collections over that growing
heap (about 0.5 s of CPU on the 2-core reference machine, bench/app_start.py), and every full collection
after start-up walked all of them again (about 0.18 s each).

``hold()`` runs when the ``core`` package is first imported: the young generations keep being collected
as usual (short-lived cycles still die young) but full collections wait. ``release()`` runs at the end of
the first ``bootstrap()``: everything alive then is moved to the permanent generation (``gc.freeze()``),
so later full collections only walk objects made after start-up, and the thresholds are put back. The
price is that garbage cycles which reached the oldest generation during start-up (a few hundred objects)
are never freed.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_saved: tuple[int, int, int] | None = None
_released = False


def hold() -> None:
    """Postpone full collections until ``release()`` (once per process; no-op after a release)."""
    global _saved
    with _lock:
        if _released or _saved is not None:
            return
        _saved = gc.get_threshold()
        if _saved[0] > 0:  # 0 means the application switched automatic collection off: leave it
            gc.set_threshold(_saved[0], _saved[1], 1 << 30)


def release() -> None:
    """Freeze what start-up built and restore the collector's thresholds (first call only)."""
    global _saved, _released
    with _lock:
        if _released:
            return
        _released = True
        if _saved is None:
            return
        gc.freeze()
        gc.set_threshold(*_saved)
        _saved = None
