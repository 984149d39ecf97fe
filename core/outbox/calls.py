"""Call plugin code with a time limit.

Each call runs on its own daemon thread and the caller waits on a ``Future`` for at most ``timeout``
seconds. Python cannot stop a thread, so a call that overruns keeps running in the background; being a
daemon thread it never keeps the process alive, and the worker has already moved on (the item is retried
later, and the idempotency key makes a late duplicate harmless at the vendor).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any


class CallTimeout(Exception):
    """The call did not finish in time; it may still be running."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no answer within {timeout:g} s")
        self.timeout = timeout


def start(fn: Callable[..., Any], args: Sequence[Any], name: str) -> Future[Any]:
    """Run ``fn(*args)`` on a new daemon thread; the future holds its result or exception."""
    future: Future[Any] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: B036 - handed to the waiting thread, which decides
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def call(fn: Callable[..., Any], args: Sequence[Any], timeout: float | None, name: str = "plugin-call") -> Any:
    """Return ``fn(*args)``, re-raising its exception; raise ``CallTimeout`` after ``timeout`` seconds."""
    if timeout is None:
        return fn(*args)
    future = start(fn, args, name)
    try:
        return future.result(timeout=timeout)
    except TimeoutError:
        if future.done():  # the function itself raised TimeoutError (e.g. a socket timeout)
            raise
        raise CallTimeout(timeout) from None
