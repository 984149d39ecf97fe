"""A per-process view of plugin state, refreshed from the database when another process changes it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select, update

from core.db import reader
from core.models.clinic import Clinic
from core.models.plugin import PluginHealth, PluginState, RuntimeGeneration
from plugin_sdk.context import ClinicInfo


@dataclass(frozen=True)
class Snapshot:
    generation: int
    clinics: dict[int, ClinicInfo] = field(default_factory=dict)
    enabled: dict[int, frozenset[str]] = field(default_factory=dict)
    rows: dict[tuple[int, str], PluginState] = field(default_factory=dict)
    health: dict[tuple[int, str], PluginHealth] = field(default_factory=dict)
    any_open: bool = False

    def enabled_in(self, clinic_id: int) -> frozenset[str]:
        return self.enabled.get(clinic_id, frozenset())

    def circuit_open(self, clinic_id: int, plugin: str, cooldown: timedelta, at: datetime) -> bool:
        health = self.health.get((clinic_id, plugin))
        if health is None or not health.circuit_open or health.opened_at is None:
            return False
        opened = health.opened_at
        return at < opened + cooldown


def bump_generation(session: Session) -> None:
    """Tell every process to re-read plugin state; call inside the transaction that changed it."""
    result = session.exec(
        update(RuntimeGeneration).where(RuntimeGeneration.id == 1)
        .values(generation=RuntimeGeneration.generation + 1)
    )
    if not result.rowcount:
        session.add(RuntimeGeneration(id=1, generation=1))
    session.flush()


class StateCache:
    def __init__(self, engine: Engine, refresh_seconds: float) -> None:
        self.engine = engine
        self.refresh_seconds = refresh_seconds
        self._snapshot = Snapshot(generation=-1)
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._checked_at = 0.0
        self._snapshot = Snapshot(generation=-1)

    def get(self) -> Snapshot:
        if time.monotonic() - self._checked_at < self.refresh_seconds:
            return self._snapshot
        with self._lock:
            if time.monotonic() - self._checked_at >= self.refresh_seconds:
                self._refresh()
        return self._snapshot

    def _refresh(self) -> None:
        with Session(reader(self.engine)) as session:
            generation = session.exec(
                select(RuntimeGeneration.generation).where(RuntimeGeneration.id == 1)
            ).first() or 0
            if generation != self._snapshot.generation:
                self._snapshot = self._load(session, generation)
        self._checked_at = time.monotonic()

    @staticmethod
    def _load(session: Session, generation: int) -> Snapshot:
        clinics = {
            c.id: ClinicInfo(c.id, c.name, c.country, c.timezone, c.locale)
            for c in session.exec(select(Clinic)).all()
            if c.id is not None
        }
        rows = {(r.clinic_id, r.plugin): r for r in session.exec(select(PluginState)).all()}
        enabled: dict[int, set[str]] = {}
        for (clinic_id, plugin), row in rows.items():
            if row.enabled:
                enabled.setdefault(clinic_id, set()).add(plugin)
        health = {(h.clinic_id, h.plugin): h for h in session.exec(select(PluginHealth)).all()}
        for item in list(rows.values()) + list(health.values()):
            session.expunge(item)
        return Snapshot(
            generation=generation,
            clinics=clinics,
            enabled={k: frozenset(v) for k, v in enabled.items()},
            rows=rows,
            health=health,
            any_open=any(h.circuit_open for h in health.values()),
        )

