"""Clinical records: write drafts, finalise, amend signed versions, list and open them.

Every write is one transaction with its audit entry and, for creation and amendment, its domain event.
A record that is signed (or locked) never changes: edits answer 409 and name the way out (an amendment).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from core import audit, events
from core.audit import Actor
from core.auth.access import log_access
from core.clock import now
from core.db import reader, transaction
from core.models.appointment import Appointment
from core.models.auth import User
from core.models.clinic import Clinic
from core.models.patient import Patient, PatientStatus
from core.models.records import ClinicalRecord, RecordSignature, RecordStatus, SignatureKind
from core.records import canonical
from core.records.errors import RecordConflict, RecordForbidden, RecordNotFound
from core.records.schemas import (
    AmendIn,
    RecordCreate,
    RecordOut,
    RecordPage,
    RecordRow,
    RecordUpdate,
    SignatureOut,
)
from plugin_sdk.errors import FieldError, ValidationFailed

if TYPE_CHECKING:
    from core.app_context import Praxis

SUBJECT = "clinical_record"
MAX_LIMIT = 200
EDITABLE = (RecordStatus.draft,)


def signature_out(sig: RecordSignature) -> SignatureOut:
    assert sig.id is not None
    return SignatureOut(
        id=sig.id, kind=sig.kind, provider=sig.provider, signer_id=sig.signer_id, signer_name=sig.signer_name,
        signed_at=sig.signed_at, certificate_serial=sig.certificate_serial,
        certificate_subject=sig.certificate_subject, expires_at=sig.expires_at, timestamped_at=sig.timestamped_at,
        canonical_format=sig.canonical_format, document_sha256=sig.document_sha256, details=dict(sig.details or {}),
    )


def event_data(record: ClinicalRecord) -> dict[str, Any]:
    """What events and audit entries carry: identifiers and state, never the clinical text."""
    return {
        "record_id": str(record.id), "chain_id": str(record.chain_id), "version": record.version,
        "previous_version_id": str(record.previous_version_id) if record.previous_version_id else None,
        "patient_id": str(record.patient_id), "author_id": record.author_id, "kind": record.kind,
        "appointment_id": record.appointment_id, "status": record.status,
    }


def not_editable(record: ClinicalRecord) -> RecordConflict:
    if record.status in (RecordStatus.signed, RecordStatus.locked):
        return RecordConflict(
            f"record {record.id} is {record.status} and can no longer be changed: write an amendment instead "
            f"(POST .../records/{record.id}/amend), which is signed on its own while this version stays as it is",
            code="record_signed", status_now=record.status)
    return RecordConflict(f"record {record.id} is {record.status}: reopen it as a draft before editing",
                          code="record_not_draft", status_now=record.status)


@dataclass(frozen=True)
class ListFilters:
    status: str | None = None
    waiting: bool = False
    author_id: int | None = None
    patient_id: uuid.UUID | None = None
    date_from: date | None = None
    date_to: date | None = None
    include_superseded: bool = True


class RecordService:
    def __init__(self, praxis: Praxis) -> None:
        self.praxis = praxis

    # --- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def load(session: Session, clinic_id: int, record_id: uuid.UUID, *, lock: bool = False) -> ClinicalRecord:
        query = select(ClinicalRecord).where(ClinicalRecord.id == record_id, ClinicalRecord.clinic_id == clinic_id)
        if lock:
            query = query.with_for_update()
        record = session.exec(query).first()
        if record is None:
            raise RecordNotFound(f"there is no record {record_id} in this clinic")
        return record

    @staticmethod
    def _check_patient(session: Session, clinic_id: int, patient_id: uuid.UUID) -> Patient:
        patient = session.get(Patient, patient_id)
        if patient is None or patient.clinic_id != clinic_id:
            raise ValidationFailed([FieldError("patient_id", "no such patient in this clinic", "not_found")])
        if patient.status != PatientStatus.active:
            raise ValidationFailed([FieldError("patient_id", f"the patient is {patient.status}; records are written "
                                                             "for active patients only", "inactive")])
        return patient

    @staticmethod
    def _check_appointment(session: Session, clinic_id: int, patient_id: uuid.UUID, appointment_id: int) -> None:
        appointment = session.get(Appointment, appointment_id)
        if appointment is None or appointment.clinic_id != clinic_id:
            raise ValidationFailed([FieldError("appointment_id", "no such appointment in this clinic", "not_found")])
        if appointment.patient_id is not None and appointment.patient_id != patient_id:
            raise ValidationFailed([FieldError("appointment_id", "the appointment is another patient's",
                                               "other_patient")])

    @staticmethod
    def _content(value: dict[str, Any]) -> dict[str, Any]:
        try:
            result = canonical.normalise_content(value)
        except canonical.NotCanonical as exc:
            raise ValidationFailed([FieldError("content", str(exc), "not_canonical")]) from exc
        assert isinstance(result, dict)
        return result

    @staticmethod
    def names(session: Session, user_ids: set[int]) -> dict[int, str]:
        if not user_ids:
            return {}
        rows = session.exec(select(User.id, User.name).where(col(User.id).in_(sorted(user_ids)))).all()
        return {uid: name for uid, name in rows if uid is not None}

    def out(self, session: Session, record: ClinicalRecord) -> RecordOut:
        sigs = session.exec(select(RecordSignature).where(RecordSignature.record_id == record.id)
                            .order_by(col(RecordSignature.id))).all()
        author = self.names(session, {record.author_id}).get(record.author_id, "")
        return RecordOut(
            id=record.id, chain_id=record.chain_id, version=record.version,
            previous_version_id=record.previous_version_id, superseded_by_id=record.superseded_by_id,
            clinic_id=record.clinic_id, patient_id=record.patient_id, author_id=record.author_id, author_name=author,
            appointment_id=record.appointment_id, kind=record.kind, title=record.title, content=record.content,
            text=record.text, amendment_reason=record.amendment_reason, status=record.status,
            requires_countersign=record.requires_countersign, locked=record.status == RecordStatus.locked,
            revision=record.revision, created_at=record.created_at, updated_at=record.updated_at,
            finalised_at=record.finalised_at, signed_at=record.signed_at, locked_at=record.locked_at,
            signatures=[signature_out(s) for s in sigs],
        )

    # --- writes -------------------------------------------------------------------------------------

    def create(self, clinic_id: int, data: RecordCreate, actor: Actor) -> RecordOut:
        assert actor.id is not None, "records are written by people"
        content = self._content(data.content)
        with transaction(self.praxis.engine) as session:
            self._check_patient(session, clinic_id, data.patient_id)
            if data.appointment_id is not None:
                self._check_appointment(session, clinic_id, data.patient_id, data.appointment_id)
            record_id = uuid.uuid4()
            record = ClinicalRecord(
                id=record_id, chain_id=record_id, version=1, clinic_id=clinic_id, patient_id=data.patient_id,
                author_id=actor.id, appointment_id=data.appointment_id, kind=canonical.nfc(data.kind),
                title=canonical.nfc(data.title), content=content, text=canonical.normalise_text(data.text),
                status=RecordStatus.draft,
            )
            session.add(record)
            session.flush()
            audit.record(session, actor, "records.created", clinic_id=clinic_id, target=f"record:{record.id}",
                         data=event_data(record))
            events.emit(session, self.praxis.runtime, "record.created", clinic_id=clinic_id, subject_type=SUBJECT,
                        subject_id=record.id, data=event_data(record), actor=actor)
            return self.out(session, record)

    def update(self, clinic_id: int, record_id: uuid.UUID, data: RecordUpdate, actor: Actor) -> RecordOut:
        changes = data.model_dump(exclude_unset=True)
        expected = changes.pop("expected_revision", None)
        with transaction(self.praxis.engine) as session:
            record = self.load(session, clinic_id, record_id, lock=True)
            if record.status not in EDITABLE:
                raise not_editable(record)
            if record.author_id != actor.id:
                raise RecordForbidden("only the author edits a draft; others may add their own record",
                                      code="not_author")
            if expected is not None and expected != record.revision:
                raise RecordConflict(f"the record was saved meanwhile (revision {record.revision}, you had "
                                     f"{expected}); reload it", code="stale_revision", revision=record.revision)
            if "appointment_id" in changes and changes["appointment_id"] is not None:
                self._check_appointment(session, clinic_id, record.patient_id, changes["appointment_id"])
            changed = []
            for name, value in changes.items():
                if name == "content":
                    value = self._content(value or {})
                elif name == "text":
                    value = canonical.normalise_text(value or "")
                elif name in ("kind", "title"):
                    if value is None:
                        raise ValidationFailed([FieldError(name, "cannot be null", "null")])
                    value = canonical.nfc(value)
                if getattr(record, name) != value:
                    setattr(record, name, value)
                    changed.append(name)
            if changed:
                record.revision += 1
                record.updated_at = now()
                session.add(record)
                audit.record(session, actor, "records.updated", clinic_id=clinic_id, target=f"record:{record.id}",
                             data={"fields": changed, "revision": record.revision})
            return self.out(session, record)

    def delete_draft(self, clinic_id: int, record_id: uuid.UUID, actor: Actor) -> None:
        with transaction(self.praxis.engine) as session:
            record = self.load(session, clinic_id, record_id, lock=True)
            if record.status != RecordStatus.draft:
                raise not_editable(record) if record.status != RecordStatus.final else RecordConflict(
                    "only drafts can be deleted; reopen the record first", code="record_not_draft")
            if record.author_id != actor.id:
                raise RecordForbidden("only the author deletes a draft", code="not_author")
            if record.previous_version_id is not None:
                previous = session.get(ClinicalRecord, record.previous_version_id, with_for_update=True)
                if previous is not None and previous.superseded_by_id == record.id:
                    previous.superseded_by_id = None
                    session.add(previous)
            data = event_data(record)
            session.delete(record)
            audit.record(session, actor, "records.draft_deleted", clinic_id=clinic_id, target=f"record:{record_id}",
                         data=data)

    def finalise(self, clinic_id: int, record_id: uuid.UUID, actor: Actor) -> RecordOut:
        with transaction(self.praxis.engine) as session:
            record = self.load(session, clinic_id, record_id, lock=True)
            if record.status != RecordStatus.draft:
                raise RecordConflict(f"record {record.id} is already {record.status}", code="record_not_draft",
                                     status_now=record.status)
            if record.author_id != actor.id:
                raise RecordForbidden("only the author finalises a record", code="not_author")
            if not record.text.strip() and not record.content:
                raise ValidationFailed([FieldError("text", "an empty record cannot be finalised", "empty")])
            record.status = RecordStatus.final
            record.finalised_at = record.updated_at = now()
            session.add(record)
            audit.record(session, actor, "records.finalised", clinic_id=clinic_id, target=f"record:{record.id}",
                         data={"version": record.version,
                               "sha256": canonical.sha256(canonical.canonical_bytes(record))})
            return self.out(session, record)

    def reopen(self, clinic_id: int, record_id: uuid.UUID, actor: Actor) -> RecordOut:
        with transaction(self.praxis.engine) as session:
            record = self.load(session, clinic_id, record_id, lock=True)
            if record.status != RecordStatus.final:
                raise not_editable(record) if record.status != RecordStatus.draft else RecordConflict(
                    "the record is a draft already", code="record_not_final")
            if record.author_id != actor.id:
                raise RecordForbidden("only the author reopens a record", code="not_author")
            record.status = RecordStatus.draft
            record.finalised_at = None
            record.updated_at = now()
            session.add(record)
            audit.record(session, actor, "records.reopened", clinic_id=clinic_id, target=f"record:{record.id}")
            return self.out(session, record)

    def amend(self, clinic_id: int, record_id: uuid.UUID, data: AmendIn, actor: Actor) -> RecordOut:
        """A new draft version correcting a signed one. The signed version is not touched except for the pointer
        to its successor, which is not part of what was signed."""
        assert actor.id is not None
        with transaction(self.praxis.engine) as session:
            old = self.load(session, clinic_id, record_id, lock=True)
            if old.status not in (RecordStatus.signed, RecordStatus.locked):
                raise RecordConflict(f"record {old.id} is {old.status}: only signed records are amended; edit or "
                                     "reopen it instead", code="record_not_signed", status_now=old.status)
            if old.superseded_by_id is not None:
                raise RecordConflict(f"version {old.version} already has an amendment ({old.superseded_by_id}); "
                                     "amend the latest version", code="already_amended",
                                     amendment_id=str(old.superseded_by_id))
            self._check_patient(session, clinic_id, old.patient_id)
            new_id = uuid.uuid4()
            record = ClinicalRecord(
                id=new_id, chain_id=old.chain_id, version=old.version + 1, previous_version_id=old.id,
                previous_sha256=canonical.sha256(canonical.canonical_bytes(old)), clinic_id=clinic_id,
                patient_id=old.patient_id, author_id=actor.id, appointment_id=old.appointment_id, kind=old.kind,
                title=canonical.nfc(data.title) if data.title is not None else old.title,
                content=self._content(data.content) if data.content is not None else dict(old.content),
                text=canonical.normalise_text(data.text) if data.text is not None else old.text,
                amendment_reason=canonical.nfc(data.reason.strip()), status=RecordStatus.draft,
            )
            session.add(record)
            session.flush()
            old.superseded_by_id = new_id
            session.add(old)
            details = {**event_data(record), "amends": str(old.id), "reason": record.amendment_reason}
            audit.record(session, actor, "records.amended", clinic_id=clinic_id, target=f"record:{old.id}",
                         data=details)
            events.emit(session, self.praxis.runtime, "record.amended", clinic_id=clinic_id, subject_type=SUBJECT,
                        subject_id=record.id, data=details, actor=actor)
            return self.out(session, record)

    # --- reads --------------------------------------------------------------------------------------

    def get(self, clinic_id: int, record_id: uuid.UUID, actor: Actor) -> RecordOut:
        with transaction(self.praxis.engine) as session:
            record = self.load(session, clinic_id, record_id)
            log_access(session, actor, clinic_id, record.patient_id, "view")
            return self.out(session, record)

    def versions(self, clinic_id: int, record_id: uuid.UUID) -> list[RecordOut]:
        with Session(reader(self.praxis.engine)) as session:
            record = self.load(session, clinic_id, record_id)
            rows = session.exec(select(ClinicalRecord).where(ClinicalRecord.chain_id == record.chain_id,
                                                             ClinicalRecord.clinic_id == clinic_id)
                                .order_by(col(ClinicalRecord.version))).all()
            return [self.out(session, r) for r in rows]

    def search(self, clinic_id: int, filters: ListFilters, *, limit: int = 50, offset: int = 0) -> RecordPage:
        with Session(reader(self.praxis.engine)) as session:
            clinic = session.get(Clinic, clinic_id)
            zone = ZoneInfo(clinic.timezone if clinic else "UTC")
            conditions: list[Any] = [ClinicalRecord.clinic_id == clinic_id]
            if filters.status:
                conditions.append(ClinicalRecord.status == filters.status)
            if filters.waiting:
                conditions.append(or_(ClinicalRecord.status == RecordStatus.final,
                                      (ClinicalRecord.status == RecordStatus.signed)
                                      & (col(ClinicalRecord.requires_countersign).is_(True))))
            if filters.author_id is not None:
                conditions.append(ClinicalRecord.author_id == filters.author_id)
            if filters.patient_id is not None:
                conditions.append(ClinicalRecord.patient_id == filters.patient_id)
            if filters.date_from is not None:
                conditions.append(col(ClinicalRecord.created_at) >= _day_start(filters.date_from, zone))
            if filters.date_to is not None:
                end = _day_start(filters.date_to + timedelta(days=1), zone)
                conditions.append(col(ClinicalRecord.created_at) < end)
            if not filters.include_superseded:
                conditions.append(col(ClinicalRecord.superseded_by_id).is_(None))
            total = session.exec(select(func.count()).select_from(ClinicalRecord).where(*conditions)).one()
            records = session.exec(select(ClinicalRecord).where(*conditions)
                                   .order_by(col(ClinicalRecord.created_at).desc(), col(ClinicalRecord.id))
                                   .limit(limit).offset(offset)).all()
            ids = [r.id for r in records]
            sigs: dict[uuid.UUID, list[RecordSignature]] = {}
            if ids:
                for sig in session.exec(select(RecordSignature).where(col(RecordSignature.record_id).in_(ids))
                                        .order_by(col(RecordSignature.id))).all():
                    sigs.setdefault(sig.record_id, []).append(sig)
            patients = {}
            patient_ids = sorted({r.patient_id for r in records}, key=str)
            if patient_ids:
                for pid, family, given in session.exec(select(Patient.id, Patient.family_name, Patient.given_name)
                                                       .where(col(Patient.id).in_(patient_ids))).all():
                    patients[pid] = " ".join(p for p in (family, given) if p)
            names = self.names(session, {r.author_id for r in records})
            items = []
            for r in records:
                mine = sigs.get(r.id, [])
                latest = mine[-1] if mine else None
                waiting = None
                if r.status == RecordStatus.final:
                    waiting = SignatureKind.sign
                elif r.status == RecordStatus.signed and r.requires_countersign:
                    waiting = SignatureKind.countersign
                expiries = [s.expires_at for s in mine if s.expires_at is not None]
                items.append(RecordRow(
                    id=r.id, version=r.version, patient_id=r.patient_id, patient_name=patients.get(r.patient_id, ""),
                    author_id=r.author_id, author_name=names.get(r.author_id, ""), kind=r.kind, title=r.title,
                    status=r.status, created_at=r.created_at, waiting_for=waiting,
                    signer_name=latest.signer_name if latest else None, signed_at=latest.signed_at if latest else None,
                    expires_at=min(expiries) if expiries else None, locked=r.status == RecordStatus.locked,
                    superseded=r.superseded_by_id is not None,
                ))
            return RecordPage(items=items, total=int(total))


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)
