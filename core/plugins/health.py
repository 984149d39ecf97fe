"""Count plugin failures per clinic and open the circuit after repeated ones.

Hook calls often run inside the caller's write transaction (a veto during a patient save), where a
second write on SQLite would wait for the caller's own lock. So those calls hand their counts to a
background writer (``defer_*``); ``flush`` waits until everything handed over is written. Callers
outside a transaction, like the outbox worker, write at once with ``record_failure``.
"""

from __future__ import annotations

import logging
import queue
import threading

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import now
from core.db import transaction
from core.models.plugin import PluginHealth
from core.plugins.state import bump_generation

log = logging.getLogger(__name__)


class HealthTracker:
    def __init__(self, engine: Engine, threshold: int) -> None:
        self.engine = engine
        self.threshold = threshold
        # pairs known to have failures on record, so a success only writes when there is something to reset
        self._failing: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self._pending: queue.Queue[tuple[str, int, str, str]] = queue.Queue()
        self._writer: threading.Thread | None = None

    # --- deferred (safe inside a transaction) ------------------------------------------------------

    def defer_failure(self, clinic_id: int, plugin: str, error: str) -> None:
        log.warning("plugin %s failed in clinic %s: %s", plugin, clinic_id, error)
        with self._lock:
            self._failing.add((clinic_id, plugin))
        self._submit(("failure", clinic_id, plugin, error))

    def defer_success(self, clinic_id: int, plugin: str) -> None:
        if (clinic_id, plugin) not in self._failing:
            return
        with self._lock:
            self._failing.discard((clinic_id, plugin))
        self._submit(("success", clinic_id, plugin, ""))

    def flush(self) -> None:
        """Wait until every deferred count is written."""
        if self._writer is not None:
            self._pending.join()

    def _submit(self, job: tuple[str, int, str, str]) -> None:
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._drain, name="plugin-health", daemon=True)
                self._writer.start()
        self._pending.put(job)

    def _drain(self) -> None:
        while True:
            kind, clinic_id, plugin, error = self._pending.get()
            try:
                if kind == "failure":
                    self._write_failure(clinic_id, plugin, error)
                else:
                    self.reset(clinic_id, plugin)
            except Exception:  # counting must never take anything down
                log.exception("could not record health of plugin %s", plugin)
            finally:
                self._pending.task_done()

    # --- immediate ---------------------------------------------------------------------------------

    @property
    def failing(self) -> bool:
        """Whether any failure is on record in this process (a cheap check before recording a success)."""
        return bool(self._failing)

    def record_failure(self, clinic_id: int, plugin: str, error: str) -> bool:
        """Count one failure in its own transaction. Returns True when this failure opened the circuit."""
        log.warning("plugin %s failed in clinic %s: %s", plugin, clinic_id, error)
        try:
            opened = self._write_failure(clinic_id, plugin, error)
        except Exception:  # counting must never break the caller
            log.exception("could not record failure of plugin %s", plugin)
            return False
        with self._lock:
            self._failing.add((clinic_id, plugin))
        return opened

    def record_success(self, clinic_id: int, plugin: str) -> None:
        if (clinic_id, plugin) not in self._failing:
            return
        with self._lock:
            self._failing.discard((clinic_id, plugin))
        self.reset(clinic_id, plugin)

    def _write_failure(self, clinic_id: int, plugin: str, error: str) -> bool:
        with transaction(self.engine) as session:
            health = self._row(session, clinic_id, plugin)
            health.consecutive_failures += 1
            health.total_failures += 1
            health.last_error = error[:2000]
            health.last_failure_at = now()
            opened = health.consecutive_failures >= self.threshold and not health.circuit_open
            if health.consecutive_failures >= self.threshold:
                health.circuit_open = True
                health.opened_at = now()
            session.add(health)
            if opened:
                bump_generation(session)
        return opened

    def reset(self, clinic_id: int, plugin: str) -> bool:
        """Close the circuit and zero the consecutive count (an admin's "reset")."""
        with transaction(self.engine) as session:
            health = session.exec(
                select(PluginHealth).where(PluginHealth.clinic_id == clinic_id, PluginHealth.plugin == plugin)
            ).first()
            if health is None:
                return False
            was_open = health.circuit_open
            health.consecutive_failures = 0
            health.circuit_open = False
            health.opened_at = None
            session.add(health)
            bump_generation(session)
        return was_open

    @staticmethod
    def _row(session: Session, clinic_id: int, plugin: str) -> PluginHealth:
        health = session.exec(
            select(PluginHealth)
            .where(PluginHealth.clinic_id == clinic_id, PluginHealth.plugin == plugin)
            .with_for_update()
        ).first()
        return health or PluginHealth(clinic_id=clinic_id, plugin=plugin)
