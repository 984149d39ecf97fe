"""Delivery, retries, dead letters, unknown outcomes, leases and circuits of the outbox worker."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from core.db import transaction
from core.events import emit
from core.models.outbox import OutboxItem
from core.models.plugin import PluginHealth
from core.outbox.queue import enqueue
from core.outbox.worker import Outcome, Worker, backoff
from tests.conftest import add_clinic
from tests.outbox.conftest import outbox_plugin
from tests.outbox.helpers import ADMIN, count, item, queue
from tests.outbox.plugins import courier, listener


def courier_praxis(make_praxis, **overrides):
    praxis = make_praxis([outbox_plugin("courier"), outbox_plugin("listener")], **overrides)
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, "courier", ADMIN)
    return praxis, clinic


def test_success_is_done_with_result_and_the_item_id_as_idempotency_key(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    plain, with_result = queue(praxis, clinic, "ok"), queue(praxis, clinic, "result")
    worker = Worker(praxis, name="w")
    assert worker.run_once() == 2
    assert worker.run_once() == 0
    assert sorted(courier.CALLS) == sorted([(str(plain), 1, "ok"), (str(with_result), 1, "result")])
    done = item(praxis, with_result)
    assert (done.status, done.attempts, done.locked_by, done.locked_until) == ("done", 1, None, None)
    assert done.result == {"vendor_id": f"v-{str(with_result)[:8]}"} and done.finished_at == frozen.at
    assert item(praxis, plain).status == "done" and item(praxis, plain).result is None


def test_backoff_is_exponential_with_jitter_capped_at_an_hour():
    for attempt, window in [(1, 10), (2, 20), (3, 40), (8, 1280), (9, 2560), (10, 3600), (30, 3600)]:
        delays = [backoff(attempt) for _ in range(200)]
        assert all(window / 2 <= d <= window for d in delays), (attempt, min(delays), max(delays))
        assert max(delays) - min(delays) > window / 10  # jittered, not a fixed delay
    assert backoff(3, retry_after=7) == 7


def test_retryable_failures_back_off_then_succeed(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis, circuit_threshold=100)
    item_id = queue(praxis, clinic, "fail_twice")
    worker = Worker(praxis, name="w")
    assert worker.run_once() == 1
    first = item(praxis, item_id)
    assert first.status == "pending" and first.attempts == 1 and first.locked_by is None
    assert first.last_error == "RuntimeError: connection reset"
    wait = (first.available_at - frozen.at).total_seconds()
    assert 5 <= wait <= 10
    assert worker.run_once() == 0  # not due yet
    frozen.advance(seconds=wait)
    assert worker.run_once() == 1
    second = item(praxis, item_id)
    assert second.attempts == 2 and 10 <= (second.available_at - frozen.at).total_seconds() <= 20
    frozen.set(second.available_at)
    assert worker.run_once() == 1
    final = item(praxis, item_id)
    assert (final.status, final.attempts, final.result) == ("done", 3, {"sent": True})
    assert [c[1] for c in courier.CALLS] == [1, 2, 3]


def test_retry_after_from_the_vendor_is_honoured(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    item_id = queue(praxis, clinic, "retry_after")
    Worker(praxis, name="w").run_once()
    retried = item(praxis, item_id)
    assert retried.available_at == frozen.at + timedelta(seconds=120)
    assert retried.last_error == "RetryableError [429]: rate limited"


def test_attempts_exhausted_go_dead_and_stay_there(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis, circuit_threshold=100)
    item_id = queue(praxis, clinic, "retry", max_attempts=3)
    worker = Worker(praxis, name="w")
    for _ in range(3):
        assert worker.run_once() == 1
        frozen.advance(hours=1)
    dead = item(praxis, item_id)
    assert dead.status == "dead" and dead.attempts == 3 and dead.finished_at is not None
    assert dead.last_error == "gave up after 3 attempts: RetryableError [503]: vendor busy"
    frozen.advance(days=1)
    assert worker.run_once() == 0 and len(courier.CALLS) == 3


def test_permanent_error_is_dead_at_once_with_the_vendor_code(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    item_id = queue(praxis, clinic, "permanent")
    Worker(praxis, name="w").run_once()
    dead = item(praxis, item_id)
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert dead.last_error == "PermanentError [E164]: invalid phone number"


def test_unknown_outcome_is_parked_for_a_person(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    item_id = queue(praxis, clinic, "unknown")
    worker = Worker(praxis, name="w")
    worker.run_once()
    parked = item(praxis, item_id)
    assert parked.status == "unknown" and parked.last_error == "UnknownOutcomeError: timed out after sending"
    frozen.advance(days=1)
    assert worker.run_once() == 0 and len(courier.CALLS) == 1


def test_a_slow_handler_times_out_and_is_retried(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    item_id = queue(praxis, clinic, "slow", seconds=2)
    Worker(praxis, name="w", handler_timeout=0.2, lease=timedelta(seconds=5)).run_once()
    slow = item(praxis, item_id)
    assert slow.status == "pending" and slow.last_error == "timeout: no answer within 0.2 s"


def test_repeated_failures_open_the_circuit_and_postpone_the_plugins_items(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)  # circuit_threshold=3
    failing = [queue(praxis, clinic, "boom", max_attempts=1, available_at=frozen.at - timedelta(seconds=10 - i))
               for i in range(3)]
    waiting = [queue(praxis, clinic, "ok", available_at=frozen.at - timedelta(seconds=5 - i)) for i in range(2)]
    worker = Worker(praxis, name="w")
    assert worker.run_once() == 5
    assert [c[2] for c in courier.CALLS] == ["boom"] * 3  # the ok items were not attempted
    assert all(item(praxis, i).status == "dead" for i in failing)
    with Session(praxis.engine) as session:
        health = session.exec(select(PluginHealth).where(PluginHealth.plugin == "courier")).one()
    assert health.circuit_open and health.consecutive_failures == 3
    for item_id in waiting:
        postponed = item(praxis, item_id)
        assert postponed.status == "pending" and postponed.attempts == 0 and postponed.last_error is None
        assert postponed.available_at == frozen.at + praxis.runtime.circuit_cooldown
    # A new item of the plugin is claimed but, with the circuit open, put back unattempted.
    frozen.advance(minutes=1)
    fresh = queue(praxis, clinic, "ok")
    assert worker.run_once() == 1 and len(courier.CALLS) == 3 and item(praxis, fresh).attempts == 0
    # Cooldown over (half-open): the first failure opens the circuit again at once.
    frozen.advance(minutes=5)
    queue(praxis, clinic, "boom", max_attempts=1, available_at=frozen.at - timedelta(hours=1))
    worker.run_once()
    assert [c[2] for c in courier.CALLS] == ["boom"] * 4
    assert all(item(praxis, i).status == "pending" for i in [*waiting, fresh])
    # Next cooldown over and the plugin works again: everything waiting is delivered.
    frozen.advance(minutes=5, seconds=1)
    assert worker.run_once() == 3
    assert all(item(praxis, i).status == "done" for i in [*waiting, fresh])
    with Session(praxis.engine) as session:
        health = session.exec(select(PluginHealth).where(PluginHealth.plugin == "courier")).one()
    assert not health.circuit_open and health.consecutive_failures == 0


def test_dedupe_key_queues_once_even_from_concurrent_transactions(make_praxis):
    praxis, clinic = courier_praxis(make_praxis)
    first = queue(praxis, clinic, dedupe_key="reminder:42")
    assert queue(praxis, clinic, dedupe_key="reminder:42") == first
    # Two open transactions queuing the same new key: the second waits for the first and gets its id.
    inside, results = threading.Event(), {}

    def slow_writer():
        with transaction(praxis.engine) as session:
            results["a"] = enqueue(session, plugin="courier", topic="send", payload={}, clinic_id=clinic,
                                   dedupe_key="reminder:43")
            inside.set()
            threading.Event().wait(0.3)

    thread = threading.Thread(target=slow_writer)
    thread.start()
    inside.wait(5)
    results["b"] = queue(praxis, clinic, dedupe_key="reminder:43")
    thread.join()
    assert results["a"] == results["b"]
    assert count(praxis, OutboxItem.dedupe_key.in_(["reminder:42", "reminder:43"])) == 2


def test_enqueue_refuses_values_the_table_cannot_hold(make_praxis):
    praxis, clinic = courier_praxis(make_praxis)
    with pytest.raises(ValueError, match="topic: at most 100"):
        queue(praxis, clinic, topic="x" * 101)
    with pytest.raises(ValueError, match="payload: must be JSON-serialisable"):
        queue(praxis, clinic, when=object())


def test_events_reach_only_plugins_enabled_in_the_clinic_at_delivery(make_praxis, frozen):
    praxis = make_praxis([outbox_plugin("courier"), outbox_plugin("listener")])
    a, b = add_clinic(praxis, "A"), add_clinic(praxis, "B")
    for plugin in ("courier", "listener"):
        praxis.plugins.enable(a, plugin, ADMIN)
    praxis.plugins.enable(b, "listener", ADMIN)
    events = {}
    for clinic in (a, b):
        with transaction(praxis.engine) as session:
            events[clinic] = emit(session, praxis.runtime, "patient.created", clinic_id=clinic,
                                  subject_type="patient", subject_id=clinic)
    praxis.plugins.disable(a, "courier", ADMIN)  # after queuing, before delivery
    assert Worker(praxis, name="w").run_once() == 3
    assert sorted(listener.EVENTS) == sorted((c, "patient.created", str(e.id)) for c, e in events.items())
    assert courier.EVENTS == []
    with Session(praxis.engine) as session:
        skipped = session.exec(select(OutboxItem).where(OutboxItem.plugin == "courier")).one()
    assert skipped.status == "done" and skipped.result == {"skipped": "plugin disabled"}


def test_a_crashed_workers_item_is_delivered_again_after_its_lease(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    item_id = queue(praxis, clinic, "ok")
    crashed = Worker(praxis, name="crashed", lease=timedelta(seconds=60))
    survivor = Worker(praxis, name="survivor")
    assert [i.id for i in crashed.claim()] == [item_id]  # ...and then the process dies
    assert survivor.run_once() == 0  # still leased
    frozen.advance(seconds=61)
    assert survivor.run_once() == 1
    redelivered = item(praxis, item_id)
    assert redelivered.status == "done" and redelivered.attempts == 2
    assert courier.CALLS == [(str(item_id), 2, "ok")]
    # The first worker comes back and tries to record an outcome: the fence refuses it.
    assert crashed._finish([Outcome(item_id, "dead", "dead", last_error="late")]) == 1
    assert item(praxis, item_id).status == "done" and item(praxis, item_id).last_error is None


def test_an_item_whose_workers_keep_dying_goes_dead(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    item_id = queue(praxis, clinic, "ok", max_attempts=2)
    for _ in range(2):
        Worker(praxis, name="doomed", lease=timedelta(seconds=60)).claim()
        frozen.advance(seconds=61)
    Worker(praxis, name="w").run_once()
    dead = item(praxis, item_id)
    assert dead.status == "dead" and "lease expired" in dead.last_error and courier.CALLS == []


def test_stop_hands_back_the_items_a_batch_has_not_started(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    slow = queue(praxis, clinic, "slow", seconds=0.3, available_at=frozen.at - timedelta(seconds=1))
    rest = [queue(praxis, clinic, "ok") for _ in range(2)]
    worker = Worker(praxis, name="w")
    threading.Timer(0.1, worker.stop).start()
    assert worker.run_once() == 1
    assert item(praxis, slow).status == "done"
    assert all(item(praxis, i).attempts == 0 and item(praxis, i).locked_by is None for i in rest)
    assert worker.run_once() == 0  # a stopped worker claims nothing


def test_disabled_plugin_handler_items_are_skipped_not_sent(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    item_id = queue(praxis, clinic, "ok")
    praxis.plugins.disable(clinic, "courier", ADMIN)
    Worker(praxis, name="w").run_once()
    assert item(praxis, item_id).result == {"skipped": "plugin disabled"} and courier.CALLS == []


def test_unknown_topic_is_dead_with_a_reason(make_praxis, frozen):
    praxis, clinic = courier_praxis(make_praxis)
    item_id = queue(praxis, clinic, topic="fax")
    Worker(praxis, name="w").run_once()
    assert item(praxis, item_id).last_error == "plugin courier has no outbox handler for topic 'fax'"


def test_a_long_batch_renews_the_lease_of_items_it_has_not_reached(make_praxis):
    praxis, clinic = courier_praxis(make_praxis)
    ids = [queue(praxis, clinic, "slow", seconds=0.3) for _ in range(3)]
    slow = Worker(praxis, name="slow", handler_timeout=0.4, lease=timedelta(seconds=0.5))
    thread = threading.Thread(target=slow.run_once)
    thread.start()
    threading.Event().wait(0.75)  # past the first lease: without renewal the third item would be free
    assert Worker(praxis, name="other").claim() == []
    thread.join()
    assert [item(praxis, i).attempts for i in ids] == [1, 1, 1] and len(courier.CALLS) == 3
