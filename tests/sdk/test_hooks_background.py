"""Background hooks through plugin_app's outbox: praxis_outbox_handlers, praxis_periodic_jobs, praxis_on_event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.sdk.plugins import background

BACKGROUND = "background = tests.sdk.plugins.background"


@pytest.fixture(autouse=True)
def _clean() -> None:
    background.HANDLED.clear()
    background.JOB_RUNS.clear()
    background.EVENTS.clear()
    background.FAIL_TIMES[0] = 0


def test_praxis_outbox_handlers_get_queued_work_with_a_stable_idempotency_key(plugin_app: Any,
                                                                             praxis_clock: Any) -> None:
    app = plugin_app(BACKGROUND)
    (handlers,) = app.collect("praxis_outbox_handlers")
    assert set(handlers) == {"note"}
    background.FAIL_TIMES[0] = 1
    item_id = app.ctx.enqueue("note", {"text": "hello"}, dedupe_key="n-1")
    assert app.ctx.enqueue("note", {"text": "hello again"}, dedupe_key="n-1") == item_id
    app.outbox.run()
    (item,) = app.outbox.items(topic="note")
    assert item.status == "pending" and "vendor busy" in item.last_error
    praxis_clock.advance(timedelta(seconds=59))
    assert app.outbox.run() == 0  # retry_after=60 is honoured
    praxis_clock.advance(timedelta(seconds=2))
    assert app.outbox.run() == 1
    assert background.HANDLED == [(str(item_id), {"text": "hello"}, 2)]
    (item,) = app.outbox.items(status="done")
    assert item.result == {"noted": "hello"}


def test_praxis_periodic_jobs_run_once_per_slot_in_clinics_where_enabled(plugin_app: Any, praxis_clock: Any) -> None:
    app = plugin_app(BACKGROUND)
    app.add_clinic("Disabled here", "HU")
    app.outbox.run()
    app.outbox.run()
    assert background.JOB_RUNS == [(app.clinic_id, praxis_clock.now.isoformat())]
    praxis_clock.advance(timedelta(minutes=15))
    app.outbox.run()
    assert len(background.JOB_RUNS) == 2


def test_praxis_on_event_receives_emitted_events_at_least_once(plugin_app: Any) -> None:
    app = plugin_app(BACKGROUND)
    event = app.events.emit("patient.created", subject_type="patient", subject_id=7, data={"family_name": "Kiss"})
    assert [e.id for e in app.events.queued()] == [event.id]
    app.outbox.run()
    assert background.EVENTS == [("patient.created", "7")]
    assert [e.id for e in app.events.queued(status="done")] == [event.id]
