"""The outbox worker: claim due items, hand them to plugins, record the outcome; run periodic jobs.

Several workers (threads on SQLite, processes on PostgreSQL) can run at once and never work on the same
item:

* **Claim.** One statement marks a batch as ours and returns it:
  ``UPDATE core_outbox SET locked_by=me, locked_until=now+lease, attempts=attempts+1 WHERE id IN (SELECT id
  ... WHERE status='pending' AND available_at<=now AND (locked_until IS NULL OR locked_until<now) ORDER BY
  available_at LIMIT n FOR UPDATE SKIP LOCKED) RETURNING *``. PostgreSQL skips rows another worker is
  claiming; on SQLite the engine opens every transaction with ``BEGIN IMMEDIATE``, which serialises claims.
* **Lease.** A claimed item is ours until ``locked_until``. A worker that dies simply stops renewing; once
  the lease runs out another worker claims the item again (at least once). Handlers run with a time limit
  shorter than the lease, and a long batch renews the lease of the items it has not reached yet.
* **Fenced finish.** Every outcome is written with ``WHERE id=? AND locked_by=me``: a worker that lost its
  lease cannot overwrite the work of the one that took over.

Outcomes: success -> ``done``; ``RetryableError``, a timeout or any other exception -> ``pending`` again
after an exponential backoff with jitter (``retry_after`` wins), ``dead`` once ``max_attempts`` is used up;
``PermanentError`` -> ``dead`` at once; ``UnknownOutcomeError`` -> ``unknown`` for a person to decide.
Failures count against the plugin in that clinic; while its circuit is open its items wait, unattempted.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import or_, select, update
from sqlmodel import col

from core.clock import now
from core.db import transaction
from core.events import EVENT_TOPIC
from core.models.outbox import OutboxItem, OutboxStatus
from core.outbox import calls, core_handlers
from core.outbox.admin import purge
from core.outbox.periodic import Scheduler
from plugin_sdk.context import OutboxMessage
from plugin_sdk.errors import PermanentError, RetryableError, UnknownOutcomeError
from plugin_sdk.events import DomainEvent

if TYPE_CHECKING:
    from core.app_context import Praxis
    from core.plugins.state import Snapshot

log = logging.getLogger(__name__)

BACKOFF_BASE = 10.0  # seconds before the first retry
BACKOFF_CAP = 3600.0  # never wait longer than this between attempts (unless the vendor says so)
QUARANTINE_WAIT = timedelta(minutes=5)


def backoff(attempt: int, retry_after: float | None = None, *, base: float = BACKOFF_BASE,
            cap: float = BACKOFF_CAP, rand: random.Random | None = None) -> float:
    """Seconds to wait before the next attempt after ``attempt`` failed (1 = the first attempt).

    Exponential (base, 2*base, 4*base ... up to ``cap``) with "equal jitter": a random point in the upper
    half of that window, so retries of many items spread out without ever retrying sooner than half the
    window. A vendor's ``retry_after`` is honoured as given.
    """
    if retry_after is not None:
        return max(0.0, float(retry_after))
    window = min(cap, base * 2 ** max(0, attempt - 1))
    return window / 2 + (rand or random).uniform(0, window / 2)


@dataclass
class Outcome:
    """What became of one claimed item; written by the fenced finish."""

    item_id: uuid.UUID
    status: str
    kind: str  # done, skipped, retry, dead, unknown, postponed, parked
    result: dict[str, Any] | None = None
    last_error: str | None = None
    available_at: datetime | None = None
    undo_attempt: bool = False

    @property
    def plain_done(self) -> bool:
        return self.kind == "done" and self.result is None


@dataclass
class BatchReport:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: int = 0  # leases taken over by another worker before we finished
    jobs: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        extra = f", lost lease {self.lost}" if self.lost else ""
        jobs = f", periodic runs {self.jobs}" if self.jobs else ""
        return f"batch: {self.claimed} items ({parts or 'none'}{extra}){jobs} in {self.seconds * 1000:.0f} ms"


class Worker:
    """Delivers outbox items and runs periodic jobs. ``run_once`` does one round; ``run_forever`` loops."""

    def __init__(
        self,
        praxis: Praxis,
        name: str = "worker",
        *,
        batch_size: int = 100,
        handler_timeout: float = 30.0,
        lease: timedelta | None = None,
        job_timeout: float = 60.0,
        keep_done: timedelta = timedelta(days=7),
        purge_every: timedelta = timedelta(hours=1),
        poll_seconds: float = 1.0,
    ) -> None:
        self.praxis = praxis
        self.name = name
        # Unique per worker even when several share a name: the fence depends on it.
        self.owner = f"{name}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]
        self.batch_size = batch_size
        self.handler_timeout = handler_timeout
        self.lease = lease or timedelta(seconds=max(4 * handler_timeout, handler_timeout + 30))
        if self.lease.total_seconds() <= handler_timeout:
            raise ValueError("lease must be longer than handler_timeout, or a slow handler's item is claimed twice")
        self.keep_done = keep_done
        self.purge_every = purge_every
        self.poll_seconds = poll_seconds
        self.handlers = self._collect_handlers()
        self.scheduler = Scheduler(praxis, self.owner, job_timeout=job_timeout)
        self.last_report = BatchReport()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_purge = 0.0
        self._rand = random.Random()
        self._snap: Snapshot | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start_thread(self) -> threading.Thread:
        """Run ``run_forever`` on a daemon thread (the embedded worker inside the app process)."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, name=f"outbox-{self.name}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the loop to finish its current batch and return; waits for a thread started here."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_forever(self, poll_seconds: float | None = None, on_batch: Any = None) -> None:
        """Loop until ``stop()``: work while there is work, else wait ``poll_seconds`` between looks."""
        poll = self.poll_seconds if poll_seconds is None else poll_seconds
        failures = 0
        while not self._stop.is_set():
            try:
                handled = self.run_once()
                failures = 0
            except Exception:  # e.g. the database is unreachable: keep the worker alive and back off
                failures += 1
                log.exception("outbox worker %s: round failed", self.owner)
                self._stop.wait(min(30.0, poll * 2 ** min(failures, 5)))
                continue
            if on_batch is not None and (handled or self.last_report.jobs):
                on_batch(self.last_report)
            if not handled and not self.last_report.jobs:
                self._stop.wait(poll)

    # --- one round ---------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Run due periodic jobs and maintenance, then claim and handle one batch. Returns items handled."""
        started = time.monotonic()
        report = BatchReport()
        report.jobs = self.scheduler.tick()
        self._maintenance()
        items = [] if self._stop.is_set() else self.claim()
        report.claimed = len(items)
        if items:
            self._process(items, report)
        report.seconds = time.monotonic() - started
        self.last_report = report
        if items:
            log.info("%s %s", self.name, report.line())
        return report.claimed - report.lost - report.outcomes["released"]

    def claim(self, limit: int | None = None) -> list[OutboxItem]:
        """Atomically take up to ``limit`` due items: lease them to this worker and count the attempt."""
        at = now()
        due = (
            select(OutboxItem.id)
            .where(
                OutboxItem.status == OutboxStatus.pending,
                OutboxItem.available_at <= at,
                or_(col(OutboxItem.locked_until).is_(None), col(OutboxItem.locked_until) < at),
            )
            .order_by(col(OutboxItem.available_at))
            .limit(limit or self.batch_size)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(OutboxItem)
            .where(col(OutboxItem.id).in_(due.scalar_subquery()))
            .values(locked_by=self.owner, locked_until=at + self.lease, attempts=OutboxItem.attempts + 1)
            .returning(OutboxItem)
            .execution_options(synchronize_session=False)
        )
        with transaction(self.praxis.engine) as session:
            items = list(session.execute(statement).scalars().all())
            session.expunge_all()
        items.sort(key=lambda i: i.available_at)
        return items

    def _process(self, items: list[OutboxItem], report: BatchReport) -> None:
        runtime = self.praxis.runtime
        snap = self._snap = runtime.snapshot()
        available = set(runtime.available())
        lease_until = time.monotonic() + self.lease.total_seconds()
        opened: set[tuple[int | None, str]] = set()
        outcomes: list[Outcome] = []
        last_flush = time.monotonic()
        remaining = list(items)
        while remaining:
            if self._stop.is_set():  # shutting down: hand back what we have not started
                report.lost += self._finish(outcomes)
                outcomes = []
                self._release(remaining)
                report.outcomes["released"] += len(remaining)
                break
            # Renew the lease of what is left before it could run out under a slow handler.
            if lease_until - time.monotonic() < self.handler_timeout + 5:
                remaining, lost = self._renew(remaining)
                report.lost += lost
                lease_until = time.monotonic() + self.lease.total_seconds()
                if not remaining:
                    break
            item = remaining.pop(0)
            outcome = self._handle(item, snap, available, opened)
            outcomes.append(outcome)
            report.outcomes[outcome.kind] += 1
            if time.monotonic() - last_flush > 0.5:
                report.lost += self._finish(outcomes)
                outcomes, last_flush = [], time.monotonic()
        report.lost += self._finish(outcomes)

    # --- one item ----------------------------------------------------------------------------------

    def _handle(self, item: OutboxItem, snap: Snapshot, available: set[str],
                opened: set[tuple[int | None, str]]) -> Outcome:
        runtime = self.praxis.runtime
        plugin, clinic_id = item.plugin, item.clinic_id
        at = now()
        if item.attempts > item.max_attempts:
            return Outcome(item.id, OutboxStatus.dead, "dead", last_error=(
                f"gave up after {item.max_attempts} attempts; the last worker stopped before finishing "
                f"(lease expired). Previous error: {item.last_error or 'none'}"))
        if plugin == core_handlers.CORE_PLUGIN:  # the core's own work: no plugin to check (see core_handlers)
            return self._invoke(item, opened)
        loaded = runtime.get(plugin)
        if loaded is None:
            return Outcome(item.id, OutboxStatus.done, "skipped", result={"skipped": "plugin not installed"})
        if loaded.quarantined:
            return Outcome(item.id, OutboxStatus.pending, "parked", available_at=at + QUARANTINE_WAIT,
                           undo_attempt=True, last_error=f"plugin quarantined: {loaded.quarantine_reason}")
        if plugin not in available:
            return Outcome(item.id, OutboxStatus.done, "skipped", result={"skipped": "plugin not allowed"})
        if clinic_id is not None:
            if plugin not in snap.enabled_in(clinic_id):
                return Outcome(item.id, OutboxStatus.done, "skipped", result={"skipped": "plugin disabled"})
            health = snap.health.get((clinic_id, plugin))
            if (clinic_id, plugin) in opened:
                return self._postpone(item, at + runtime.circuit_cooldown)
            if snap.circuit_open(clinic_id, plugin, runtime.circuit_cooldown, at):
                assert health is not None and health.opened_at is not None
                return self._postpone(item, health.opened_at + runtime.circuit_cooldown)
        return self._invoke(item, opened)

    def _invoke(self, item: OutboxItem, opened: set[tuple[int | None, str]]) -> Outcome:
        runtime = self.praxis.runtime
        plugin, clinic_id = item.plugin, item.clinic_id
        try:
            function, args = self._target(item)
        except _Undeliverable as exc:
            return Outcome(item.id, OutboxStatus.dead, "dead", last_error=str(exc))
        try:
            value = calls.call(function, args, self.handler_timeout, name=f"outbox-{plugin}")
        except PermanentError as exc:
            code = f" [{exc.code}]" if exc.code else ""
            return Outcome(item.id, OutboxStatus.dead, "dead", last_error=f"PermanentError{code}: {exc}")
        except UnknownOutcomeError as exc:
            self._count_failure(item, f"unknown outcome: {exc}", opened)
            return Outcome(item.id, OutboxStatus.unknown, "unknown", last_error=f"UnknownOutcomeError: {exc}")
        except RetryableError as exc:
            code = f" [{exc.code}]" if exc.code else ""
            return self._retry(item, f"RetryableError{code}: {exc}", exc.retry_after, opened)
        except calls.CallTimeout as exc:
            return self._retry(item, f"timeout: {exc}", None, opened)
        except (Exception, SystemExit) as exc:
            log.warning("outbox item %s (%s/%s) failed", item.id, plugin, item.topic, exc_info=True)
            return self._retry(item, f"{type(exc).__name__}: {exc}", None, opened)
        if clinic_id is not None and plugin != core_handlers.CORE_PLUGIN:
            runtime.health.record_success(clinic_id, plugin)
        return Outcome(item.id, OutboxStatus.done, "done", result=_result(value))

    def _target(self, item: OutboxItem) -> tuple[Any, list[Any]]:
        runtime = self.praxis.runtime
        if item.plugin == core_handlers.CORE_PLUGIN:
            ctx = None  # no plugin: a core handler builds the context of the plugin it calls
        else:
            ctx = runtime.context(item.plugin, item.clinic_id if item.clinic_id is not None else 0)
        if item.topic == EVENT_TOPIC:
            implementations = runtime.implementations("praxis_on_event", [item.plugin])
            if not implementations:
                raise _Undeliverable(f"plugin {item.plugin} no longer implements praxis_on_event")
            try:
                event = DomainEvent.model_validate(item.payload)
            except ValidationError as exc:
                raise _Undeliverable(f"payload is not a valid domain event: {exc}") from exc
            _, impl = implementations[0]
            given = {"ctx": ctx, "event": event}
            return impl.function, [given[a] for a in impl.argnames]
        message = OutboxMessage(
            id=item.id, topic=item.topic, clinic_id=item.clinic_id, payload=dict(item.payload),
            attempt=item.attempts, idempotency_key=str(item.id), created_at=item.created_at,
            extra={"dedupe_key": item.dedupe_key} if item.dedupe_key else {},
        )
        if core_handlers.is_core_topic(item.topic):
            core_handler = core_handlers.get(item.topic)
            if core_handler is None:
                raise _Undeliverable(f"the core has no handler for topic {item.topic!r}")
            return core_handler, [self.praxis, message, item.plugin]
        handler = self.handlers.get(item.plugin, {}).get(item.topic)
        if handler is None:
            raise _Undeliverable(f"plugin {item.plugin} has no outbox handler for topic {item.topic!r}")
        return handler, [ctx, message]

    def _retry(self, item: OutboxItem, error: str, retry_after: float | None,
               opened: set[tuple[int | None, str]]) -> Outcome:
        self._count_failure(item, error, opened)
        if item.attempts >= item.max_attempts:
            return Outcome(item.id, OutboxStatus.dead, "dead",
                           last_error=f"gave up after {item.attempts} attempts: {error}")
        delay = backoff(item.attempts, retry_after, rand=self._rand)
        return Outcome(item.id, OutboxStatus.pending, "retry", last_error=error,
                       available_at=now() + timedelta(seconds=delay))

    def _postpone(self, item: OutboxItem, until: datetime) -> Outcome:
        return Outcome(item.id, OutboxStatus.pending, "postponed", available_at=max(until, now()), undo_attempt=True)

    def _count_failure(self, item: OutboxItem, error: str, opened: set[tuple[int | None, str]]) -> None:
        if item.clinic_id is None or item.plugin == core_handlers.CORE_PLUGIN:
            return
        runtime = self.praxis.runtime
        # A failure while the circuit is half-open (cooldown over, not yet reset) opens it again at once.
        half_open = self._half_open(item.clinic_id, item.plugin)
        if runtime.health.record_failure(item.clinic_id, item.plugin, f"outbox {item.topic}: {error}") or half_open:
            opened.add((item.clinic_id, item.plugin))

    def _half_open(self, clinic_id: int, plugin: str) -> bool:
        health = self._snap.health.get((clinic_id, plugin)) if self._snap is not None else None
        return bool(health and health.circuit_open)

    # --- writing outcomes --------------------------------------------------------------------------

    def _finish(self, outcomes: list[Outcome]) -> int:
        """Write outcomes, fenced on our lease. Returns how many items another worker had taken over."""
        if not outcomes:
            return 0
        at = now()
        written: set[uuid.UUID] = set()
        mine = OutboxItem.locked_by == self.owner
        with transaction(self.praxis.engine) as session:
            plain = [o.item_id for o in outcomes if o.plain_done]
            if plain:
                rows = session.execute(
                    update(OutboxItem).where(col(OutboxItem.id).in_(plain), mine)
                    .values(status=OutboxStatus.done, locked_by=None, locked_until=None, finished_at=at)
                    .returning(OutboxItem.id).execution_options(synchronize_session=False)
                )
                written.update(rows.scalars())
            for outcome in outcomes:
                if outcome.plain_done:
                    continue
                values: dict[str, Any] = {"status": outcome.status, "locked_by": None, "locked_until": None}
                if outcome.status in (OutboxStatus.done, OutboxStatus.dead):
                    values["finished_at"] = at
                if outcome.result is not None:
                    values["result"] = outcome.result
                if outcome.last_error is not None:
                    values["last_error"] = outcome.last_error[:4000]
                if outcome.available_at is not None:
                    values["available_at"] = outcome.available_at
                if outcome.undo_attempt:
                    values["attempts"] = OutboxItem.attempts - 1
                row = session.execute(
                    update(OutboxItem).where(OutboxItem.id == outcome.item_id, mine).values(**values)
                    .returning(OutboxItem.id).execution_options(synchronize_session=False)
                ).first()
                if row is not None:
                    written.add(row[0])
        lost = [o.item_id for o in outcomes if o.item_id not in written]
        for item_id in lost:
            log.warning("outbox item %s: lease lost to another worker before finishing; its outcome is dropped",
                        item_id)
        return len(lost)

    def _release(self, items: list[OutboxItem]) -> None:
        with transaction(self.praxis.engine) as session:
            session.execute(
                update(OutboxItem)
                .where(col(OutboxItem.id).in_([i.id for i in items]), OutboxItem.locked_by == self.owner)
                .values(locked_by=None, locked_until=None, attempts=OutboxItem.attempts - 1)
                .execution_options(synchronize_session=False)
            )

    def _renew(self, items: list[OutboxItem]) -> tuple[list[OutboxItem], int]:
        ids = [i.id for i in items]
        with transaction(self.praxis.engine) as session:
            rows = session.execute(
                update(OutboxItem).where(col(OutboxItem.id).in_(ids), OutboxItem.locked_by == self.owner)
                .values(locked_until=now() + self.lease)
                .returning(OutboxItem.id).execution_options(synchronize_session=False)
            )
            kept = set(rows.scalars())
        return [i for i in items if i.id in kept], len(ids) - len(kept)

    # --- plugins and maintenance -------------------------------------------------------------------

    def _collect_handlers(self) -> dict[str, dict[str, Any]]:
        handlers: dict[str, dict[str, Any]] = {}
        for result in self.praxis.runtime.collect("praxis_outbox_handlers"):
            if not isinstance(result.value, dict):
                log.error("plugin %s: praxis_outbox_handlers must return {topic: handler}", result.plugin)
                continue
            good = {t: h for t, h in result.value.items() if isinstance(t, str) and callable(h)}
            if len(good) != len(result.value):
                log.error("plugin %s: outbox handlers ignored (topic not a string or handler not callable)",
                          result.plugin)
            handlers[result.plugin] = good
        return handlers

    def _maintenance(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.purge_every.total_seconds()
        try:
            removed, runs = purge(self.praxis.engine, keep_done=self.keep_done)
        except Exception:
            log.exception("outbox purge failed; trying again in %s", self.purge_every)
            return
        if removed or runs:
            log.info("outbox purge: removed %d done items and %d job runs", removed, runs)


class _Undeliverable(Exception):
    """No handler can ever take this item as it is (dead at once)."""


def _result(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        try:
            json.dumps(value)
            return value
        except (TypeError, ValueError):
            return {"value": repr(value)}
    return {"value": value if isinstance(value, str | int | float | bool | list) else repr(value)}
