"""Merging two cards of the same person, and undoing it.

A merge moves the merged card's phones, e-mails, identifiers, guardians, alerts and consents to the
survivor (a phone, e-mail or identifier the survivor already has stays behind), marks the merged card
``merged`` with ``merged_into``, and remembers exactly which rows moved. An unmerge moves those rows
back, as long as the survivor still has every one of them. Identifiers are re-encrypted on each move
because their ciphertext is bound to the patient that owns them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from core.audit import Actor
from core.clock import now
from core.models.patient import Patient, PatientMerge, PatientStatus
from core.patients import identifiers as ids
from core.patients import records
from core.patients.errors import PatientConflict, invalid
from core.patients.schemas import MergeOut, PatientOut

if TYPE_CHECKING:
    from core.patients.service import PatientService

# Rows of these kinds that duplicate one of the survivor's are left on the merged card.
DEDUPE_BY = {"phones": "e164", "emails": "email", "identifiers": "blind_index"}


def _lock_pair(session: Session, clinic_id: int, a: uuid.UUID, b: uuid.UUID) -> tuple[Patient, Patient]:
    # Always lock in id order so two merges of the same pair cannot deadlock on PostgreSQL.
    first, second = sorted([a, b], key=str)
    locked = {pid: records.load_patient(session, clinic_id, pid, lock=True) for pid in (first, second)}
    return locked[a], locked[b]


def _move(svc: PatientService, session: Session, kind: str, row: Any, to: Patient) -> None:
    if kind == "identifiers":
        plain = svc.keyring.decrypt(row.ciphertext, ids.aad(row.patient_id, row.type_code))
        row.ciphertext = svc.keyring.encrypt(plain, ids.aad(to.id, row.type_code))
    row.patient_id = to.id
    session.add(row)


def _bump(patient: Patient, actor: Actor) -> None:
    patient.version += 1
    patient.updated_at, patient.updated_by = now(), actor.id


def merge(svc: PatientService, session: Session, clinic_id: int, survivor_id: uuid.UUID, merged_id: uuid.UUID,
          actor: Actor) -> MergeOut:
    if survivor_id == merged_id:
        raise invalid("merged_id", "a patient cannot be merged into itself", "same")
    survivor, other = _lock_pair(session, clinic_id, survivor_id, merged_id)
    for field, patient in (("survivor_id", survivor), ("merged_id", other)):
        if patient.status != PatientStatus.active:
            raise PatientConflict("not_active", f"{field}: the patient is {patient.status}; only active cards merge",
                                  field=field, patient_status=patient.status)
    keep, fold = records.load_card(session, survivor), records.load_card(session, other)
    for row in fold.identifiers:
        mine = next((r for r in keep.identifiers if r.type_code == row.type_code), None)
        if mine is not None and mine.blind_index != row.blind_index:
            raise invalid(f"identifiers.{row.type_code}",
                          f"the two patients have different {row.type_code} identifiers ({mine.masked} and "
                          f"{row.masked}); correct one of them before merging", "conflict")
    before = records.state(keep)
    moved: dict[str, list[str]] = {}
    for kind in records.CHILD_KINDS:
        natural = DEDUPE_BY.get(kind)
        have = {str(getattr(r, natural)).lower() for r in keep.rows(kind)} if natural else set()
        position = len(keep.rows(kind))
        for row in fold.rows(kind):
            if natural and str(getattr(row, natural)).lower() in have:
                continue
            if hasattr(row, "position"):
                row.position = position
                position += 1
            _move(svc, session, kind, row, survivor)
            moved.setdefault(kind, []).append(str(row.id))
    other.status, other.merged_into = PatientStatus.merged, survivor.id
    _bump(other, actor)
    _bump(survivor, actor)
    tags = list(survivor.tags or [])
    added_tags = [t for t in (other.tags or []) if t not in tags]
    if added_tags:
        survivor.tags = tags + added_tags
    if other.vip and not survivor.vip:
        survivor.vip = True
    record = PatientMerge(clinic_id=clinic_id, survivor_id=survivor.id, merged_id=other.id,
                          moved={**moved, "tags": added_tags, "vip": other.vip and not before["vip"]},
                          merged_by=actor.id)
    session.add_all([other, survivor, record])
    session.flush()
    keep = records.load_card(session, survivor)
    svc._veto(keep, is_new=False)
    after = records.state(keep)
    counts = {kind: len(moved.get(kind, [])) for kind in records.CHILD_KINDS}
    changes = records.diff(before, after)
    records.record(session, svc.runtime, actor, "patient.merged", "patient.merged", keep,
                   audit_data={"merge_id": str(record.id), "merged_id": str(other.id), "moved": counts,
                               "changes": changes},
                   after=after, event_extra={"merge_id": str(record.id), "merged_id": str(other.id), "moved": counts,
                                             "changed": sorted(changes),
                                             "before": {k: v["before"] for k, v in changes.items()}})
    records.record(session, svc.runtime, actor, "patient.merged_into", None, records.load_card(session, other),
                   audit_data={"merge_id": str(record.id), "survivor_id": str(survivor.id), "moved": counts})
    out = records.to_out(keep, svc.identifier_types(clinic_id))
    return MergeOut(merge_id=record.id, survivor=out, moved=counts)


def unmerge(svc: PatientService, session: Session, clinic_id: int, merged_id: uuid.UUID,
            actor: Actor) -> PatientOut:
    other = records.load_patient(session, clinic_id, merged_id)
    if other.status != PatientStatus.merged or other.merged_into is None:
        raise PatientConflict("not_merged", f"the patient is {other.status}, not merged into another card",
                              patient_status=other.status)
    record = session.exec(
        select(PatientMerge).where(PatientMerge.clinic_id == clinic_id, PatientMerge.merged_id == merged_id,
                                   col(PatientMerge.unmerged_at).is_(None))
        .order_by(col(PatientMerge.merged_at).desc())
    ).first()
    if record is None:
        raise PatientConflict("no_merge_record", "no open merge record for this patient")
    survivor, other = _lock_pair(session, clinic_id, record.survivor_id, merged_id)
    if survivor.status != PatientStatus.active:
        raise PatientConflict("survivor_not_active", f"the card it was merged into is {survivor.status}; "
                              "restore it first", patient_status=survivor.status)
    keep = records.load_card(session, survivor)
    before = records.state(keep)
    missing: dict[str, int] = {}
    to_move: list[tuple[str, Any]] = []
    for kind in records.CHILD_KINDS:
        rows = {str(r.id): r for r in keep.rows(kind)}
        for row_id in record.moved.get(kind, []):
            row = rows.get(row_id)
            if row is None:
                missing[kind] = missing.get(kind, 0) + 1
            else:
                to_move.append((kind, row))
    if missing:
        raise PatientConflict("moved_rows_changed", "some rows that came with the merge were removed from the "
                              "survivor since, so the merge can no longer be undone exactly", missing=missing)
    for kind, row in to_move:
        _move(svc, session, kind, row, other)
    added = set(record.moved.get("tags", []))
    if added:
        survivor.tags = [t for t in (survivor.tags or []) if t not in added]
    if record.moved.get("vip"):
        survivor.vip = False
    other.status, other.merged_into = PatientStatus.active, None
    _bump(other, actor)
    _bump(survivor, actor)
    record.unmerged_at, record.unmerged_by = now(), actor.id
    session.add_all([other, survivor, record])
    session.flush()
    keep, back = records.load_card(session, survivor), records.load_card(session, other)
    svc._veto(keep, is_new=False)
    svc._veto(back, is_new=False)
    after = records.state(keep)
    changes = records.diff(before, after)
    counts = {kind: len(record.moved.get(kind, [])) for kind in records.CHILD_KINDS}
    records.record(session, svc.runtime, actor, "patient.unmerged", "patient.updated", keep,
                   audit_data={"merge_id": str(record.id), "merged_id": str(other.id), "moved_back": counts,
                               "changes": changes},
                   after=after, event_extra={"unmerged_id": str(other.id), "changed": sorted(changes),
                                             "before": {k: v["before"] for k, v in changes.items()}})
    records.record(session, svc.runtime, actor, "patient.unmerged", "patient.restored", back,
                   audit_data={"merge_id": str(record.id), "survivor_id": str(survivor.id), "moved_back": counts},
                   event_extra={"unmerged_from": str(survivor.id), "changed": ["status"],
                                "before": {"status": PatientStatus.merged.value}})
    return records.to_out(back, svc.identifier_types(clinic_id))
