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
from sqlmodel import Session, col, select

from core import audit, clock
from core.db import reader, transaction
from core.outbox.queue import enqueue
from core.plugins import settings as plugin_settings
from plugin_sdk.context import ClinicInfo, PatientView, RecordView

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

    def emit_event(self, name: str, *, patient_id: str | uuid.UUID | None = None, appointment_id: int | None = None,
                   data: dict[str, Any] | None = None, session: Session | None = None) -> uuid.UUID:
        from core.messaging import event_kinds

        if session is not None:
            return event_kinds.emit(session, self._runtime, self.plugin, self.clinic.id, name, patient_id=patient_id,
                                    appointment_id=appointment_id, data=data)
        with self.session() as own:
            return event_kinds.emit(own, self._runtime, self.plugin, self.clinic.id, name, patient_id=patient_id,
                                    appointment_id=appointment_id, data=data)

    def audit(self, action: str, *, target: str | None = None, data: dict[str, Any] | None = None,
              session: Session | None = None) -> None:
        actor = audit.Actor.system(f"plugin:{self.plugin}")
        name = f"{self.plugin}.{action}"
        if session is not None:
            audit.record(session, actor, name, clinic_id=self.clinic.id, target=target, data=data)
            return
        with self.session() as own:
            audit.record(own, actor, name, clinic_id=self.clinic.id, target=target, data=data)

    # --- read access to core data ------------------------------------------------------------------

    def _require_patient_data(self, what: str) -> None:
        manifest = self._runtime.plugins[self.plugin].manifest
        if manifest is None or not manifest.handles_patient_data:
            raise PermissionError(f"plugin {self.plugin} reads {what} but its manifest does not declare "
                                  "handles_patient_data")

    def patient(self, patient_id: str) -> PatientView | None:
        from core.models.patient import Patient, PatientEmail, PatientIdentifier, PatientPhone
        from core.patients.identifiers import aad

        self._require_patient_data("patients")
        try:
            key = uuid.UUID(str(patient_id))
        except ValueError:
            return None
        with Session(reader(self._runtime.engine)) as session:
            row = session.get(Patient, key)
            if row is None or row.clinic_id != self.clinic.id:
                return None
            phones = session.exec(select(PatientPhone.e164).where(PatientPhone.patient_id == key)).all()
            emails = session.exec(select(PatientEmail.email).where(PatientEmail.patient_id == key)).all()
            identifiers = {
                i.type_code: self._runtime.keyring.decrypt(i.ciphertext, aad(key, i.type_code))
                for i in session.exec(select(PatientIdentifier).where(PatientIdentifier.patient_id == key)).all()
            }
            view = PatientView(
                id=str(row.id), chart_number=row.chart_number, family_name=row.family_name,
                given_name=row.given_name, family_name_latin=row.family_name_latin,
                given_name_latin=row.given_name_latin, birth_date=row.birth_date, sex=row.sex,
                phones=tuple(phones), emails=tuple(emails), preferred_language=row.preferred_language,
                identifiers=identifiers, status=row.status,
            )
        self.audit("patient_read", target=f"patient:{key}", data={"identifiers": sorted(identifiers)})
        return view

    def appointment(self, appointment_id: int) -> dict[str, Any] | None:
        from zoneinfo import ZoneInfo

        from core.models.appointment import Appointment
        from core.scheduling.appointments import appointment_out

        with Session(reader(self._runtime.engine)) as session:
            row = session.get(Appointment, appointment_id)
            if row is None or row.clinic_id != self.clinic.id:
                return None
            return appointment_out(row, ZoneInfo(self.clinic.timezone))

    def staff_identifiers(self, user_id: int) -> dict[str, str]:
        from core.models.auth import Membership, UserIdentifier

        with Session(reader(self._runtime.engine)) as session:
            member = session.exec(select(Membership).where(
                Membership.user_id == user_id, Membership.clinic_id == self.clinic.id)).first()
            if member is None:
                return {}
            rows = session.exec(select(UserIdentifier).where(UserIdentifier.user_id == user_id)).all()
            return {r.type_code: r.value for r in rows}

    def records(self, *, appointment_id: int | None = None, patient_id: str | None = None) -> list[RecordView]:
        from core.models.records import ClinicalRecord

        self._require_patient_data("clinical records")
        if appointment_id is None and patient_id is None:
            raise ValueError("give appointment_id or patient_id")
        query = select(ClinicalRecord).where(
            ClinicalRecord.clinic_id == self.clinic.id, col(ClinicalRecord.superseded_by_id).is_(None))
        if appointment_id is not None:
            query = query.where(ClinicalRecord.appointment_id == appointment_id)
        if patient_id is not None:
            query = query.where(ClinicalRecord.patient_id == uuid.UUID(str(patient_id)))
        with Session(reader(self._runtime.engine)) as session:
            rows = session.exec(query.order_by(col(ClinicalRecord.created_at))).all()
            views = [RecordView(
                id=str(r.id), patient_id=str(r.patient_id), author_id=r.author_id, appointment_id=r.appointment_id,
                kind=r.kind, title=r.title, text=r.text, content=dict(r.content), status=r.status,
                version=r.version, signed=r.status in ("signed", "locked"), signed_at=r.signed_at,
            ) for r in rows]
        self.audit("records_read", target=f"appointment:{appointment_id}" if appointment_id is not None
                   else f"patient:{patient_id}", data={"records": [v.id for v in views]})
        return views
