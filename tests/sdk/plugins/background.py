"""A fixture plugin doing background work: an outbox handler, a periodic job and an event hook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from plugin_sdk import Category, OutboxMessage, PeriodicJob, PluginManifest, RetryableError, hookimpl

manifest = PluginManifest(name="background", version="1.0.0", title="Background",
                          description="Queues work, runs a job, listens to events.",
                          category=Category.other, api=">=1.0,<2")

HANDLED: list[tuple[str, dict[str, Any], int]] = []
JOB_RUNS: list[tuple[int, str]] = []
EVENTS: list[tuple[str, str]] = []
FAIL_TIMES: list[int] = [0]  # how many more deliveries of "note" fail with a retryable error


def handle_note(ctx: Any, message: OutboxMessage) -> dict[str, Any]:
    if FAIL_TIMES[0] > 0:
        FAIL_TIMES[0] -= 1
        raise RetryableError("vendor busy", retry_after=60)
    HANDLED.append((message.idempotency_key, dict(message.payload), message.attempt))
    return {"noted": message.payload.get("text")}


def nightly_summary(ctx: Any) -> None:
    JOB_RUNS.append((ctx.clinic.id, ctx.now().isoformat()))


@hookimpl
def praxis_outbox_handlers() -> dict[str, Any]:
    return {"note": handle_note}


@hookimpl
def praxis_periodic_jobs() -> list[PeriodicJob]:
    return [PeriodicJob(name="summary", run=nightly_summary, every=timedelta(minutes=15))]


@hookimpl
def praxis_on_event(ctx: Any, event: Any) -> None:
    EVENTS.append((event.name, event.subject_id))
