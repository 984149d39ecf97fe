"""Test plugin with outbox handlers whose behaviour each item's payload chooses.

Every handled call is recorded in ``CALLS`` and, when the payload names a ``log`` file, appended to it
(one line per call: item id and attempt), so tests in other processes can count deliveries.
"""

from __future__ import annotations

import os
import threading
import time

from plugin_sdk import (
    Category,
    PermanentError,
    PluginManifest,
    RetryableError,
    UnknownOutcomeError,
    hookimpl,
)

manifest = PluginManifest(name="courier", version="1.0.0", title="Courier", description="Delivers test messages.",
                          category=Category.messaging, api=">=1.0,<2")

CALLS: list[tuple[str, int, str]] = []  # (idempotency key, attempt, mode)
EVENTS: list[tuple[int, str]] = []
_lock = threading.Lock()


def _record(path: str | None, line: str) -> None:
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


def send(ctx, message):
    mode = message.payload.get("mode", "ok")
    with _lock:
        CALLS.append((message.idempotency_key, message.attempt, mode))
    _record(message.payload.get("log"), f"{message.idempotency_key} {message.attempt} {os.getpid()}")
    if mode == "ok":
        return None
    if mode == "result":
        return {"vendor_id": f"v-{message.idempotency_key[:8]}"}
    if mode == "retry":
        raise RetryableError("vendor busy", code="503")
    if mode == "retry_after":
        raise RetryableError("rate limited", retry_after=120, code="429")
    if mode == "fail_twice":
        if message.attempt <= 2:
            raise RuntimeError("connection reset")
        return {"sent": True}
    if mode == "permanent":
        raise PermanentError("invalid phone number", code="E164")
    if mode == "unknown":
        raise UnknownOutcomeError("timed out after sending")
    if mode == "boom":
        raise ValueError("bug in plugin")
    if mode == "slow":
        time.sleep(float(message.payload.get("seconds", 1)))
        return None
    if mode == "crash_once":
        if message.attempt == 1:
            os._exit(3)  # the worker process dies after the side effect, before recording the outcome
        return None
    raise AssertionError(f"unknown mode {mode}")


@hookimpl
def praxis_outbox_handlers():
    return {"send": send}


@hookimpl
def praxis_on_event(ctx, event):
    with _lock:
        EVENTS.append((ctx.clinic.id, event.name))
