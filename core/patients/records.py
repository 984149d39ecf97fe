"""Reading a patient card with everything attached, and the views of it that audit entries, events,
validation hooks and API responses get."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, delete, select

from core import audit, events
from core.audit import Actor
from core.crypto import Keyring
from core.models.patient import (
    Patient,
    PatientAlert,
    PatientConsent,
    PatientEmail,
    PatientGuardian,
    PatientIdentifier,
    PatientPhone,
    PatientSearchKey,
)
from core.patients import identifiers as ids
from core.patients import search
from core.patients.errors import PatientNotFound
from core.patients.schemas import PatientOut, PatientSummary
from plugin_sdk.contributions import IdentifierType

SCALARS = (
    "chart_number", "family_name", "given_name", "family_name_latin", "given_name_latin", "birth_date", "sex",
    "address", "preferred_channel", "preferred_language", "vip", "notes", "tags",
)
CHILD_KINDS = ("phones", "emails", "identifiers", "guardians", "alerts", "consents")
CHILD_MODELS: dict[str, Any] = {
    "phones": PatientPhone, "emails": PatientEmail, "identifiers": PatientIdentifier,
    "guardians": PatientGuardian, "alerts": PatientAlert, "consents": PatientConsent,
}


@dataclass
class Card:
    patient: Patient
    phones: list[PatientPhone] = field(default_factory=list)
    emails: list[PatientEmail] = field(default_factory=list)
    identifiers: list[PatientIdentifier] = field(default_factory=list)
    guardians: list[PatientGuardian] = field(default_factory=list)
    alerts: list[PatientAlert] = field(default_factory=list)
    consents: list[PatientConsent] = field(default_factory=list)

    def rows(self, kind: str) -> list[Any]:
        return getattr(self, kind)  # type: ignore[no-any-return]


def load_patient(session: Session, clinic_id: int, patient_id: uuid.UUID, *, lock: bool = False) -> Patient:
    stmt = select(Patient).where(Patient.id == patient_id, Patient.clinic_id == clinic_id)
    if lock:
        stmt = stmt.with_for_update()
    patient = session.exec(stmt).first()
    if patient is None:
        raise PatientNotFound(f"there is no patient {patient_id} in clinic {clinic_id}")
    return patient


def load_card(session: Session, patient: Patient) -> Card:
    card = Card(patient)
    for kind, model in CHILD_MODELS.items():
        stmt = select(model).where(model.patient_id == patient.id)
        if hasattr(model, "position"):
            stmt = stmt.order_by(model.position)
        elif kind == "identifiers":
            stmt = stmt.order_by(model.type_code)
        elif kind == "consents":
            stmt = stmt.order_by(model.signed_at, model.id)
        else:
            stmt = stmt.order_by(model.id)
        setattr(card, kind, list(session.exec(stmt).all()))
    return card


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else value


def state(card: Card) -> dict[str, Any]:
    """The card as JSON: what audit entries diff and events carry. Identifiers appear only masked."""
    p = card.patient
    out: dict[str, Any] = {name: _iso(getattr(p, name)) for name in SCALARS}
    out["tags"] = list(p.tags or [])
    out["status"] = p.status
    out["phones"] = [{"e164": r.e164, "kind": r.kind} for r in card.phones]
    out["emails"] = [r.email for r in card.emails]
    out["identifiers"] = {r.type_code: r.masked for r in card.identifiers}
    out["guardians"] = [{"name": r.name, "relation": r.relation, "phone": r.phone, "email": r.email}
                        for r in card.guardians]
    out["alerts"] = [{"type": r.type, "text": r.text, "severity": r.severity} for r in card.alerts]
    out["consents"] = [{"type": r.type, "version": r.version, "signed_at": _iso(r.signed_at),
                        "revoked_at": _iso(r.revoked_at)} for r in card.consents]
    return out


def identifier_fingerprint(card: Card) -> dict[str, str]:
    return {r.type_code: r.blind_index for r in card.identifiers}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: {"before": before.get(k), "after": after[k]} for k in after if before.get(k) != after[k]}


def decrypted_identifiers(keyring: Keyring, card: Card) -> dict[str, str]:
    return {r.type_code: keyring.decrypt(r.ciphertext, ids.aad(card.patient.id, r.type_code))
            for r in card.identifiers}


def veto_view(keyring: Keyring, card: Card) -> dict[str, Any]:
    """What ``praxis_validate_patient`` sees: the fields as saved, identifiers as {code: value}."""
    p = card.patient
    view: dict[str, Any] = {name: getattr(p, name) for name in SCALARS}
    view["id"] = str(p.id)
    view["tags"] = list(p.tags or [])
    view["phones"] = [{"e164": r.e164, "kind": r.kind} for r in card.phones]
    view["emails"] = [r.email for r in card.emails]
    view["identifiers"] = decrypted_identifiers(keyring, card)
    view["guardians"] = [{"name": r.name, "relation": r.relation, "phone": r.phone, "email": r.email}
                         for r in card.guardians]
    view["alerts"] = [{"type": r.type, "text": r.text, "severity": r.severity} for r in card.alerts]
    view["consents"] = [{"type": r.type, "version": r.version, "signed_at": r.signed_at,
                         "revoked_at": r.revoked_at} for r in card.consents]
    return view


def to_out(card: Card, types: dict[str, IdentifierType], keyring: Keyring | None = None) -> PatientOut:
    """The API view; identifier values are included only when a ``keyring`` is passed (reveal)."""
    p = card.patient
    identifiers = []
    for r in card.identifiers:
        kind = types.get(r.type_code)
        value = keyring.decrypt(r.ciphertext, ids.aad(p.id, r.type_code)) if keyring is not None else None
        identifiers.append({"id": r.id, "type_code": r.type_code, "title": kind.title if kind else r.type_code,
                            "masked": r.masked, "value": value})
    data = p.model_dump()
    data.update(
        phones=[{"id": r.id, "e164": r.e164, "kind": r.kind} for r in card.phones],
        emails=[{"id": r.id, "email": r.email} for r in card.emails],
        identifiers=identifiers,
        guardians=[r.model_dump() for r in card.guardians],
        alerts=[r.model_dump() for r in card.alerts],
        consents=[r.model_dump() for r in card.consents],
    )
    return PatientOut.model_validate(data)


def summaries(session: Session, patients: list[Patient]) -> list[PatientSummary]:
    phones: dict[uuid.UUID, list[str]] = {}
    if patients:
        for patient_id, e164 in session.exec(search.phones_of([p.id for p in patients])).all():
            phones.setdefault(patient_id, []).append(e164)
    return [PatientSummary.model_validate({**p.model_dump(), "phones": phones.get(p.id, [])}) for p in patients]


def rebuild_search_keys(session: Session, patient: Patient, plugin_keys: Any) -> list[tuple[str, str]]:
    session.exec(delete(PatientSearchKey).where(col(PatientSearchKey.patient_id) == patient.id))
    keys = search.name_keys(patient.family_name, patient.given_name, patient.family_name_latin,
                            patient.given_name_latin, plugin_keys)
    session.add_all([PatientSearchKey(clinic_id=patient.clinic_id, patient_id=patient.id, key=k, kind=kind)
                     for k, kind in keys])
    return keys


def event_data(after: dict[str, Any], card: Card, **extra: Any) -> dict[str, Any]:
    p = card.patient
    return {"id": str(p.id), "clinic_id": p.clinic_id, "version": p.version, **after, **extra}


def record(
    session: Session,
    runtime: Any,
    actor: Actor,
    action: str,
    event: str | None,
    card: Card,
    *,
    audit_data: dict[str, Any],
    event_extra: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Write the audit entry and queue the domain event, in the caller's transaction."""
    p = card.patient
    audit.record(session, actor, action, clinic_id=p.clinic_id, target=f"patient:{p.id}", data=audit_data)
    if event is not None:
        events.emit(session, runtime, event, clinic_id=p.clinic_id, subject_type="patient", subject_id=p.id,
                    data=event_data(after if after is not None else state(card), card, **(event_extra or {})),
                    actor=actor)
