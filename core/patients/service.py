"""Registering, finding, changing, trashing and restoring patients.

Every write is one transaction holding the change, its audit entry (before/after of the fields that
changed; identifiers only masked) and its domain event in the outbox. The clinic's plugins validate
every write through ``praxis_validate_patient`` just before commit.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from core.audit import Actor
from core.auth.access import log_access
from core.clock import now
from core.db import transaction
from core.models.audit import AuditEntry
from core.models.clinic import Clinic
from core.models.patient import Patient, PatientIdentifier, PatientPhone, PatientStatus
from core.patients import chart, contacts, merge, records, search
from core.patients import identifiers as ids
from core.patients.errors import DuplicateWarning, FieldErrors, PatientConflict, PatientNotFound, invalid
from core.patients.hooks import pinned_plugin_state
from core.patients.records import Card
from core.patients.schemas import (
    ChartFormatOut,
    DuplicateCandidate,
    HistoryEntry,
    MergeOut,
    PatientCreate,
    PatientOut,
    PatientPage,
    PatientUpdate,
)
from plugin_sdk.contributions import IdentifierType

MAX_LIMIT = 200
NOT_NULL = {"chart_number", "family_name", "given_name", "sex", "address", "preferred_channel", "vip", "notes",
            "tags", "phones", "emails", "guardians", "alerts", "consents", "identifiers"}
EARLIEST_BIRTH = date(1880, 1, 1)
_STATUSES = frozenset(s.value for s in PatientStatus)
_READ_OPTIONS: dict[str, dict[str, Any]] = {"sqlite": {"praxis_read_only": True},
                                            "postgresql": {"isolation_level": "AUTOCOMMIT"}}


class PatientService:
    def __init__(self, praxis: Any) -> None:
        self.praxis = praxis
        self.runtime = praxis.runtime
        self.keyring = praxis.keyring
        self.engine = praxis.engine

    # --- small helpers -----------------------------------------------------------------------------

    def _clinic(self, session: Session, clinic_id: int) -> Clinic:
        clinic = session.get(Clinic, clinic_id)
        if clinic is None:
            raise PatientNotFound(f"there is no clinic {clinic_id}")
        return clinic

    def identifier_types(self, clinic_id: int) -> dict[str, IdentifierType]:
        return ids.types_for_clinic(self.runtime, clinic_id)

    @staticmethod
    def _local_now(clinic: Clinic) -> datetime:
        try:
            return now().astimezone(ZoneInfo(clinic.timezone))
        except (KeyError, ValueError):
            return now()

    def _veto(self, card: Card, is_new: bool) -> None:
        self.runtime.veto("praxis_validate_patient", card.patient.clinic_id,
                          patient=records.veto_view(self.keyring, card), is_new=is_new)

    # --- checking input ----------------------------------------------------------------------------

    @staticmethod
    def _check_scalars(values: dict[str, Any], errors: FieldErrors) -> dict[str, Any]:
        out = dict(values)
        for name in ("family_name", "given_name", "family_name_latin", "given_name_latin", "address", "notes",
                     "preferred_language", "chart_number"):
            if isinstance(out.get(name), str):
                out[name] = out[name].strip()
        if "family_name" in out and not out["family_name"]:
            errors.add("family_name", "the family name is required", "required")
        if "chart_number" in out and out["chart_number"] == "":
            errors.add("chart_number", "the chart number may not be empty", "required")
        for name in ("family_name_latin", "given_name_latin", "preferred_language"):
            if name in out and out[name] == "":
                out[name] = None
        birth = out.get("birth_date")
        if birth is not None:
            if birth > now().date():
                errors.add("birth_date", "the birth date is in the future", "future")
            elif birth < EARLIEST_BIRTH:
                errors.add("birth_date", f"the birth date is before {EARLIEST_BIRTH.isoformat()}", "too_early")
        if "tags" in out and out["tags"] is not None:
            tags: list[str] = []
            for i, tag in enumerate(out["tags"]):
                tag = " ".join(str(tag).split())
                if not tag:
                    errors.add(f"tags.{i}", "a tag may not be empty", "required")
                elif len(tag) > 50:
                    errors.add(f"tags.{i}", "a tag is at most 50 characters", "too_long")
                elif tag not in tags:
                    tags.append(tag)
            out["tags"] = tags
        for name in ("sex", "preferred_channel"):
            if out.get(name) is not None:
                out[name] = str(out[name].value if hasattr(out[name], "value") else out[name])
        return out

    @staticmethod
    def _check_phones(items: list[Any], region: str, errors: FieldErrors) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            try:
                e164 = contacts.parse_phone(item.number, region)
            except ValueError as exc:
                errors.add(f"phones.{i}", str(exc))
                continue
            if e164 in seen:
                errors.add(f"phones.{i}", f"{e164} is listed twice", "duplicate")
                continue
            seen.add(e164)
            out.append({"id": item.id, "e164": e164, "kind": str(item.kind.value),
                        "digits": contacts.searchable_digits(e164), "position": i})
        return out

    @staticmethod
    def _check_emails(items: list[Any], errors: FieldErrors) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            try:
                email = contacts.normalise_email(item.email)
            except ValueError as exc:
                errors.add(f"emails.{i}", str(exc))
                continue
            if email.lower() in seen:
                errors.add(f"emails.{i}", f"{email} is listed twice", "duplicate")
                continue
            seen.add(email.lower())
            out.append({"id": item.id, "email": email, "position": i})
        return out

    @staticmethod
    def _check_guardians(items: list[Any], region: str, errors: FieldErrors) -> list[dict[str, Any]]:
        out = []
        for i, item in enumerate(items):
            row = {"id": item.id, "name": item.name, "relation": item.relation, "phone": None, "email": None}
            if item.phone:
                try:
                    row["phone"] = contacts.parse_phone(item.phone, region)
                except ValueError as exc:
                    errors.add(f"guardians.{i}.phone", str(exc))
            if item.email:
                try:
                    row["email"] = contacts.normalise_email(item.email)
                except ValueError as exc:
                    errors.add(f"guardians.{i}.email", str(exc))
            out.append(row)
        return out

    @staticmethod
    def _check_alerts(items: list[Any]) -> list[dict[str, Any]]:
        return [{"id": a.id, "type": str(a.type.value), "text": a.text, "severity": str(a.severity.value)}
                for a in items]

    @staticmethod
    def _check_consents(items: list[Any], errors: FieldErrors) -> list[dict[str, Any]]:
        out = []
        for i, c in enumerate(items):
            if c.revoked_at is not None and c.revoked_at < c.signed_at:
                errors.add(f"consents.{i}.revoked_at", "a consent cannot be revoked before it was signed", "order")
            out.append({"id": c.id, "type": c.type, "version": c.version, "signed_at": c.signed_at,
                        "revoked_at": c.revoked_at})
        return out

    @staticmethod
    def _check_identifiers(values: dict[str, str | None], types: dict[str, IdentifierType],
                           errors: FieldErrors) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for code, value in values.items():
            kind = types.get(code)
            if kind is None:
                known = ", ".join(sorted(types)) or "none (no country plugin with identifiers is enabled)"
                errors.add(f"identifiers.{code}", f"unknown identifier type {code!r}; known here: {known}",
                           "unknown_type")
                continue
            if value is None or not str(value).strip():
                out[code] = None
                continue
            try:
                out[code] = ids.normalise(kind, str(value))
            except ValueError as exc:
                errors.add(f"identifiers.{code}", str(exc))
        return out

    # --- writing child rows ------------------------------------------------------------------------

    @staticmethod
    def _sync(session: Session, card: Card, kind: str, items: list[dict[str, Any]], errors: FieldErrors,
              natural: str | None = None) -> None:
        """Make ``kind`` rows equal ``items``: an item's ``id`` (or natural key) keeps that row."""
        model = records.CHILD_MODELS[kind]
        existing = card.rows(kind)
        by_id = {r.id: r for r in existing}
        by_natural = {getattr(r, natural): r for r in existing} if natural else {}
        kept: list[Any] = []
        for i, item in enumerate(items):
            item = dict(item)
            row_id = item.pop("id", None)
            row = None
            if row_id is not None:
                row = by_id.get(row_id)
                if row is None:
                    errors.add(f"{kind}.{i}.id", f"this patient has no such {kind[:-1]}", "unknown_id")
                    continue
            elif natural:
                row = by_natural.get(item[natural])
            if row is None or any(row is k for k in kept):
                row = model(clinic_id=card.patient.clinic_id, patient_id=card.patient.id, **item)
            else:
                for name, value in item.items():
                    setattr(row, name, value)
            kept.append(row)
        if errors.errors:
            return
        for row in existing:
            if not any(row is k for k in kept):
                session.delete(row)
        session.add_all(kept)
        setattr(card, kind, kept)

    def _set_identifiers(self, session: Session, card: Card, values: dict[str, str | None],
                         types: dict[str, IdentifierType]) -> None:
        rows = {r.type_code: r for r in card.identifiers}
        for code, normalised in values.items():
            row = rows.get(code)
            if normalised is None:
                if row is not None:
                    session.delete(row)
                    del rows[code]
                continue
            sealed = ids.seal(self.keyring, types[code], card.patient.id, normalised)
            if row is None:
                row = PatientIdentifier(clinic_id=card.patient.clinic_id, patient_id=card.patient.id, type_code=code,
                                        ciphertext=sealed.ciphertext, blind_index=sealed.blind_index,
                                        masked=sealed.masked)
                rows[code] = row
            elif row.blind_index != sealed.blind_index or row.masked != sealed.masked:
                row.ciphertext, row.blind_index, row.masked = sealed.ciphertext, sealed.blind_index, sealed.masked
            session.add(row)
        card.identifiers = sorted(rows.values(), key=lambda r: r.type_code)

    def _chart_taken(self, session: Session, clinic_id: int, number: str, but: uuid.UUID | None = None) -> bool:
        stmt = select(Patient.id).where(Patient.clinic_id == clinic_id, Patient.chart_number == number)
        if but is not None:
            stmt = stmt.where(Patient.id != but)
        return session.exec(stmt).first() is not None

    # --- duplicates --------------------------------------------------------------------------------

    def duplicates(self, session: Session, clinic_id: int, name_key: str, birth_date: date | None,
                   phones: list[str]) -> list[DuplicateCandidate]:
        reasons: dict[uuid.UUID, list[str]] = {}
        if birth_date is not None and name_key:
            stmt = select(Patient.id).where(Patient.clinic_id == clinic_id, Patient.status == PatientStatus.active,
                                            Patient.name_key == name_key, Patient.birth_date == birth_date).limit(20)
            for pid in session.exec(stmt).all():
                reasons.setdefault(pid, []).append("name_birth_date")
        if phones:
            stmt = (select(PatientPhone.patient_id).join(Patient, col(Patient.id) == PatientPhone.patient_id)
                    .where(PatientPhone.clinic_id == clinic_id, col(PatientPhone.e164).in_(phones),
                           Patient.status == PatientStatus.active).distinct().limit(20))
            for pid in session.exec(stmt).all():
                reasons.setdefault(pid, []).append("phone")
        if not reasons:
            return []
        patients = list(session.exec(select(Patient).where(col(Patient.id).in_(list(reasons)))
                                     .order_by(Patient.chart_number)).all())
        return [DuplicateCandidate(patient=s, reasons=reasons[s.id]) for s in records.summaries(session, patients)]

    # --- create ------------------------------------------------------------------------------------

    def create(self, clinic_id: int, data: PatientCreate, actor: Actor) -> PatientOut:
        types = self.identifier_types(clinic_id)
        plugin_keys = search.plugin_key_source(self.runtime, clinic_id)
        with pinned_plugin_state(self.runtime), transaction(self.engine) as session:
            clinic = self._clinic(session, clinic_id)
            errors = FieldErrors()
            scalars = self._check_scalars(data.model_dump(include=set(records.SCALARS)), errors)
            phones = self._check_phones(data.phones, clinic.country, errors)
            emails = self._check_emails(data.emails, errors)
            guardians = self._check_guardians(data.guardians, clinic.country, errors)
            consents = self._check_consents(data.consents, errors)
            identifiers = self._check_identifiers(dict(data.identifiers), types, errors)
            errors.raise_if_any()
            key = search.name_key(scalars["family_name"], scalars["given_name"])
            if not data.confirm_duplicate:
                candidates = self.duplicates(session, clinic_id, key, scalars["birth_date"],
                                             [p["e164"] for p in phones])
                if candidates:
                    raise DuplicateWarning([c.model_dump(mode="json") for c in candidates])
            if scalars.get("chart_number"):
                if self._chart_taken(session, clinic_id, scalars["chart_number"]):
                    raise invalid("chart_number", f"chart number {scalars['chart_number']} is already taken", "taken")
            else:
                scalars["chart_number"] = chart.allocate(session, clinic_id, self._local_now(clinic))
            at = now()
            patient = Patient(clinic_id=clinic_id, name_key=key, created_at=at, created_by=actor.id, updated_at=at,
                              updated_by=actor.id, **scalars)
            session.add(patient)
            session.flush()
            card = Card(patient)
            self._sync(session, card, "phones", phones, errors)
            self._sync(session, card, "emails", emails, errors)
            self._sync(session, card, "guardians", guardians, errors)
            self._sync(session, card, "alerts", self._check_alerts(data.alerts), errors)
            self._sync(session, card, "consents", consents, errors)
            errors.raise_if_any()
            self._set_identifiers(session, card, identifiers, types)
            records.rebuild_search_keys(session, patient, plugin_keys)
            session.flush()
            self._veto(card, is_new=True)
            after = records.state(card)
            records.record(session, self.runtime, actor, "patient.created", "patient.created", card,
                           audit_data={"changes": records.diff({}, after)}, after=after,
                           event_extra={"changed": sorted(after)})
            return records.to_out(card, types)

    # --- update ------------------------------------------------------------------------------------

    def update(self, clinic_id: int, patient_id: uuid.UUID, data: PatientUpdate, actor: Actor) -> PatientOut:
        types = self.identifier_types(clinic_id)
        plugin_keys = search.plugin_key_source(self.runtime, clinic_id)
        given = data.model_fields_set - {"version"}
        with pinned_plugin_state(self.runtime), transaction(self.engine) as session:
            clinic = self._clinic(session, clinic_id)
            patient = records.load_patient(session, clinic_id, patient_id, lock=True)
            if patient.status != PatientStatus.active:
                raise PatientConflict("not_active", f"the patient is {patient.status}; restore or unmerge it first",
                                      patient_status=patient.status)
            if patient.version != data.version:
                raise PatientConflict("version_conflict", "the patient was changed by someone else since you read "
                                      "it; reload and apply your change again", current_version=patient.version)
            card = records.load_card(session, patient)
            before = records.state(card)
            before_index = records.identifier_fingerprint(card)
            errors = FieldErrors()
            for name in sorted(given & NOT_NULL):
                if getattr(data, name) is None:
                    errors.add(name, f"{name} may not be null", "required")
            errors.raise_if_any()
            scalars = self._check_scalars(data.model_dump(include=given & set(records.SCALARS)), errors)
            lists: dict[str, list[dict[str, Any]]] = {}
            if "phones" in given:
                lists["phones"] = self._check_phones(data.phones or [], clinic.country, errors)
            if "emails" in given:
                lists["emails"] = self._check_emails(data.emails or [], errors)
            if "guardians" in given:
                lists["guardians"] = self._check_guardians(data.guardians or [], clinic.country, errors)
            if "alerts" in given:
                lists["alerts"] = self._check_alerts(data.alerts or [])
            if "consents" in given:
                lists["consents"] = self._check_consents(data.consents or [], errors)
            identifiers = self._check_identifiers(dict(data.identifiers or {}), types, errors)
            if scalars.get("chart_number") and scalars["chart_number"] != patient.chart_number \
                    and self._chart_taken(session, clinic_id, scalars["chart_number"], but=patient.id):
                errors.add("chart_number", f"chart number {scalars['chart_number']} is already taken", "taken")
            errors.raise_if_any()
            for name, value in scalars.items():
                setattr(patient, name, value)
            for kind, items in lists.items():
                self._sync(session, card, kind, items, errors, natural="e164" if kind == "phones" else None)
            errors.raise_if_any()
            self._set_identifiers(session, card, identifiers, types)
            after = records.state(card)
            changes = records.diff(before, after)
            if before_index != records.identifier_fingerprint(card) and "identifiers" not in changes:
                changes["identifiers"] = {"before": before["identifiers"], "after": after["identifiers"]}
            if not changes:
                session.rollback()
                return records.to_out(records.load_card(session, records.load_patient(session, clinic_id,
                                                                                      patient_id)), types)
            if changes.keys() & {"family_name", "given_name", "family_name_latin", "given_name_latin"}:
                patient.name_key = search.name_key(patient.family_name, patient.given_name)
                records.rebuild_search_keys(session, patient, plugin_keys)
            patient.version += 1
            patient.updated_at, patient.updated_by = now(), actor.id
            session.add(patient)
            session.flush()
            self._veto(card, is_new=False)
            records.record(session, self.runtime, actor, "patient.updated", "patient.updated", card,
                           audit_data={"changes": changes, "version": patient.version}, after=after,
                           event_extra={"changed": sorted(changes),
                                        "before": {k: v["before"] for k, v in changes.items()}})
            return records.to_out(card, types)

    # --- read --------------------------------------------------------------------------------------

    def get(self, clinic_id: int, patient_id: uuid.UUID, actor: Actor, *, reveal: bool = False) -> PatientOut:
        """Open a card. Writes the access log (and a reveal entry when identifiers are shown in full)."""
        types = self.identifier_types(clinic_id)
        with pinned_plugin_state(self.runtime), transaction(self.engine) as session:
            card = records.load_card(session, records.load_patient(session, clinic_id, patient_id))
            log_access(session, actor, clinic_id, patient_id, "view")
            if reveal and card.identifiers:
                log_access(session, actor, clinic_id, patient_id, "view_identifiers")
            return records.to_out(card, types, self.keyring if reveal else None)

    def search(
        self,
        clinic_id: int,
        *,
        q: str | None = None,
        phone: str | None = None,
        chart_number: str | None = None,
        identifier_type: str | None = None,
        identifier: str | None = None,
        tag: str | None = None,
        vip: bool | None = None,
        status: str | None = PatientStatus.active,
        limit: int = 50,
        offset: int = 0,
    ) -> PatientPage:
        """Find patients; all given criteria must match. Sorted by name, then chart number.

        One statement (``search.page_statement``: page, total and the page's phones), built once per set of
        criteria, on a connection of its own; nothing is written (no access log: a search shows no card).
        """
        errors = FieldErrors()
        if not 1 <= limit <= MAX_LIMIT:
            errors.add("limit", f"must be between 1 and {MAX_LIMIT}", "range")
        if offset < 0:
            errors.add("offset", "must not be negative", "range")
        shape: list[str] = []
        params: dict[str, Any] = {"clinic_id": clinic_id, "limit": limit, "offset": offset}
        if status is not None:
            if status not in _STATUSES:
                errors.add("status", "must be active, trashed or merged", "choice")
            shape.append("status")
            params["status"] = status
        query = search.normalise(q)
        if query:
            shape.append("name")
            params["low"], params["high"] = search.prefix_range(query)
        if phone is not None and phone.strip():
            digits = search.phone_run(phone)
            if len(digits) < search.MIN_PHONE_DIGITS:
                errors.add("phone", f"give at least {search.MIN_PHONE_DIGITS} digits", "too_short")
            shape.append("phone")
            params["like"] = f"%{digits}%"
        if chart_number is not None and chart_number.strip():
            shape.append("chart")
            params["chart"] = chart_number.strip()
        if identifier_type or identifier:
            types = self.identifier_types(clinic_id)
            kind = types.get(identifier_type or "")
            if kind is None:
                errors.add("identifier_type", f"unknown identifier type {identifier_type!r}; known here: "
                           f"{', '.join(sorted(types)) or 'none'}", "unknown_type")
            elif not identifier or not identifier.strip():
                errors.add("identifier", "give the identifier to look for", "required")
            else:
                try:
                    value = ids.normalise(kind, identifier)
                except ValueError as exc:
                    errors.add("identifier", str(exc))
                else:
                    shape.append("identifier")
                    params["type_code"] = kind.code
                    params["blind_index"] = ids.search_index(self.keyring, kind.code, value)
        if tag is not None and tag.strip():
            shape.append("tag")
            tag = " ".join(tag.split())
            params["tag"] = [tag] if self.engine.dialect.name == "postgresql" else tag
        if vip is not None:
            shape.append("vip")
            params["vip"] = vip
        errors.raise_if_any()
        dialect = self.engine.dialect.name
        with self.engine.connect() as connection:
            # A read: on SQLite a plain BEGIN, not the write lock. On PostgreSQL one statement reads a consistent
            # snapshot by itself: autocommit saves the BEGIN and ROLLBACK round trips.
            connection.execution_options(**_READ_OPTIONS.get(dialect, _READ_OPTIONS["sqlite"]))
            rows = connection.execute(search.page_statement(dialect, tuple(shape)), params).all()
            if rows:
                total = rows[0][-2]
            elif offset:
                total = connection.execute(search.count_statement(dialect, tuple(shape)), params).scalar_one()
            else:
                total = 0
        items: list[dict[str, Any]] = []
        current: dict[str, Any] = {}
        width = len(search.SUMMARY_COLUMNS)
        for row in rows:  # a patient's rows are together (sorted by name, then its unique chart number)
            if not items or current["id"] != row[0]:
                current = dict(zip(search.SUMMARY_COLUMNS, row[:width], strict=True))
                current["phones"] = []
                items.append(current)
            if row[-1] is not None:
                current["phones"].append(row[-1])
        return PatientPage.model_validate({"items": items, "total": total, "limit": limit, "offset": offset})

    def history(self, clinic_id: int, patient_id: uuid.UUID, *, limit: int = 100,
                offset: int = 0) -> list[HistoryEntry]:
        """The audit entries of one patient, oldest first."""
        with Session(self.engine) as session:
            records.load_patient(session, clinic_id, patient_id)
            rows = session.exec(
                select(AuditEntry).where(AuditEntry.clinic_id == clinic_id,
                                         AuditEntry.target == f"patient:{patient_id}")
                .order_by(col(AuditEntry.seq)).limit(limit).offset(offset)
            ).all()
            return [HistoryEntry.model_validate(r.model_dump()) for r in rows]

    # --- trash -------------------------------------------------------------------------------------

    def trash(self, clinic_id: int, patient_id: uuid.UUID, reason: str, actor: Actor) -> PatientOut:
        reason = " ".join((reason or "").split())
        if not reason:
            raise invalid("reason", "say why the card is deleted", "required")
        types = self.identifier_types(clinic_id)
        with pinned_plugin_state(self.runtime), transaction(self.engine) as session:
            patient = records.load_patient(session, clinic_id, patient_id, lock=True)
            if patient.status != PatientStatus.active:
                raise PatientConflict("not_active", f"the patient is already {patient.status}",
                                      patient_status=patient.status)
            card = records.load_card(session, patient)
            before = records.state(card)
            at = now()
            patient.status, patient.deleted_at, patient.deleted_by = PatientStatus.trashed, at, actor.id
            patient.delete_reason = reason[:500]
            patient.version += 1
            patient.updated_at, patient.updated_by = at, actor.id
            session.add(patient)
            session.flush()
            after = records.state(card)
            records.record(session, self.runtime, actor, "patient.deleted", "patient.deleted", card,
                           audit_data={"reason": patient.delete_reason, "changes": records.diff(before, after)},
                           after=after, event_extra={"reason": patient.delete_reason, "changed": ["status"],
                                                     "before": {"status": before["status"]}})
            return records.to_out(card, types)

    def restore(self, clinic_id: int, patient_id: uuid.UUID, actor: Actor) -> PatientOut:
        types = self.identifier_types(clinic_id)
        with pinned_plugin_state(self.runtime), transaction(self.engine) as session:
            patient = records.load_patient(session, clinic_id, patient_id, lock=True)
            if patient.status != PatientStatus.trashed:
                raise PatientConflict("not_trashed", f"the patient is {patient.status}, not in the trash",
                                      patient_status=patient.status)
            card = records.load_card(session, patient)
            before = records.state(card)
            reason = patient.delete_reason
            patient.status = PatientStatus.active
            patient.deleted_at = patient.deleted_by = patient.delete_reason = None
            patient.version += 1
            patient.updated_at, patient.updated_by = now(), actor.id
            session.add(patient)
            session.flush()
            self._veto(card, is_new=False)
            after = records.state(card)
            records.record(session, self.runtime, actor, "patient.restored", "patient.restored", card,
                           audit_data={"deleted_reason": reason, "changes": records.diff(before, after)},
                           after=after, event_extra={"changed": ["status"], "before": {"status": before["status"]}})
            return records.to_out(card, types)

    # --- merge -------------------------------------------------------------------------------------

    def merge(self, clinic_id: int, survivor_id: uuid.UUID, merged_id: uuid.UUID, actor: Actor) -> MergeOut:
        with pinned_plugin_state(self.runtime), transaction(self.engine) as session:
            return merge.merge(self, session, clinic_id, survivor_id, merged_id, actor)

    def unmerge(self, clinic_id: int, merged_id: uuid.UUID, actor: Actor) -> PatientOut:
        with pinned_plugin_state(self.runtime), transaction(self.engine) as session:
            return merge.unmerge(self, session, clinic_id, merged_id, actor)

    # --- chart numbers -----------------------------------------------------------------------------

    def chart_format(self, clinic_id: int) -> ChartFormatOut:
        with Session(self.engine) as session:
            clinic = self._clinic(session, clinic_id)
            row = chart.current_format(session, clinic_id)
            return ChartFormatOut(format=row.format, example=chart.preview(row, self._local_now(clinic)))

    def set_chart_format(self, clinic_id: int, fmt: str, actor: Actor) -> ChartFormatOut:
        from core import audit

        try:
            chart.check_format(fmt)
        except ValueError as exc:
            raise invalid("format", str(exc)) from exc
        with pinned_plugin_state(self.runtime), transaction(self.engine) as session:
            clinic = self._clinic(session, clinic_id)
            old, new = chart.set_format(session, clinic_id, fmt)
            audit.record(session, actor, "patient.chart_format_changed", clinic_id=clinic_id,
                         target=f"clinic:{clinic_id}", data={"before": old, "after": new})
            row = chart.current_format(session, clinic_id)
            return ChartFormatOut(format=row.format, example=chart.preview(row, self._local_now(clinic)))

