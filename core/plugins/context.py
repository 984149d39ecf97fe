"""The core's implementation of ``plugin_sdk.PluginContext``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlmodel import Session

from core import audit, clock
from core.db import transaction
from core.outbox.queue import enqueue
from core.plugins import settings as plugin_settings
from plugin_sdk.context import ClinicInfo

if TYPE_CHECKING:
    from core.plugins.runtime import PluginRuntime


class CorePluginContext:
    def __init__(self, runtime: PluginRuntime, plugin: str, clinic_id: int) -> None:
        self._runtime = runtime
        self.plugin = plugin
        snapshot = runtime.snapshot()
        clinic = snapshot.clinics.get(clinic_id)
        if clinic is None:
            runtime.state.invalidate()
            snapshot = runtime.snapshot()
            clinic = snapshot.clinics.get(clinic_id) or ClinicInfo(clinic_id, "", "", "UTC", "en")
        self.clinic: ClinicInfo = clinic
        self.log = logging.getLogger(f"praxis.plugins.{plugin}")
        self._row = snapshot.rows.get((clinic_id, plugin))

    @cached_property
    def settings(self) -> BaseModel | None:
        loaded = self._runtime.plugins[self.plugin]
        assert loaded.manifest is not None
        values = plugin_settings.merged_values(
            loaded.manifest, self._runtime.policy.for_plugin(self.plugin), self._row,
            self._runtime.keyring, self.clinic.id,
        )
        return plugin_settings.build(loaded.manifest, values)

    def now(self) -> datetime:
        return clock.now()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with transaction(self._runtime.engine) as session:
            yield session

    def enqueue(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        available_at: datetime | None = None,
        session: Session | None = None,
    ) -> uuid.UUID:
        key = f"{self.plugin}:{dedupe_key}" if dedupe_key else None
        if session is not None:
            return enqueue(session, plugin=self.plugin, topic=topic, payload=payload, clinic_id=self.clinic.id,
                           dedupe_key=key, available_at=available_at)
        with self.session() as own:
            return enqueue(own, plugin=self.plugin, topic=topic, payload=payload, clinic_id=self.clinic.id,
                           dedupe_key=key, available_at=available_at)

    def audit(self, action: str, *, target: str | None = None, data: dict[str, Any] | None = None,
              session: Session | None = None) -> None:
        actor = audit.Actor.system(f"plugin:{self.plugin}")
        name = f"{self.plugin}.{action}"
        if session is not None:
            audit.record(session, actor, name, clinic_id=self.clinic.id, target=target, data=data)
            return
        with self.session() as own:
            audit.record(own, actor, name, clinic_id=self.clinic.id, target=target, data=data)
