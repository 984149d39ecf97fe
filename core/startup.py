"""Start-up tuning of CPython's cyclic garbage collector.

Starting Praxis allocates about 250,000 objects that live as long as the process: modules, SQLAlchemy
tables and mappers, pydantic schemas, routes. CPython runs a full collection each time the oldest
generation has grown by a quarter, so a start used to run four to six full collections over that growing
heap (about 0.5 s of CPU on the 2-core reference machine, bench/app_start.py), and every full collection
after start-up walked all of them again (about 0.18 s each).

Young collections cost too (about 0.15 s: each surviving object is walked once in the youngest and once
in the middle generation), and almost nothing start-up allocates is garbage. ``hold()`` runs when the
``core`` package is first imported and raises the youngest generation's threshold to a million
allocations, so start-up (a few hundred thousand) runs no collection at all, while a process that imports
``core`` and never bootstraps still collects, only rarely. ``release()`` runs at the end of the first
``bootstrap()``: everything alive then is moved to the permanent generation (``gc.freeze()``), so later
collections only walk objects made after start-up, and the thresholds are put back. The price is that
the few garbage cycles start-up makes (about 2,000 objects measured) are never freed.
"""

from __future__ import annotations

import gc
import sys
import threading

#: Allocations (net, of container objects) between two young collections while start-up holds them.
HOLD_THRESHOLD = 1_000_000

_lock = threading.Lock()
_saved: tuple[int, int, int] | None = None
_released = False


def hold() -> None:
    """Postpone collections until ``release()`` (once per process; no-op after a release)."""
    global _saved
    with _lock:
        if _released or _saved is not None:
            return
        _saved = gc.get_threshold()
        if _saved[0] > 0:  # 0 means the application switched automatic collection off: leave it
            gc.set_threshold(max(_saved[0], HOLD_THRESHOLD), *_saved[1:])


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


def import_fastapi() -> None:
    """Import FastAPI with the pydantic models it defines built on first use (``defer_build``).

    Most of them (about 70) describe the OpenAPI document (``fastapi.openapi.models``) and are needed only
    when /openapi.json is generated; building them at import cost about 40-60 ms of every start. Only the
    classes defined while FastAPI is imported are affected. No-op if FastAPI is already imported.
    """
    if "fastapi" in sys.modules:
        return
    from pydantic import BaseModel

    config = BaseModel.model_config
    before = config.get("defer_build")
    config["defer_build"] = True
    try:
        import fastapi  # noqa: F401
    finally:
        if before is None:
            config.pop("defer_build", None)
        else:
            config["defer_build"] = before
