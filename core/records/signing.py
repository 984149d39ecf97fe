"""Signing records through the signing-provider plugins, and verifying the stored signatures.

A signing session covers one or many records and one intent check:

1. ``begin``: the records are checked (final and the caller's own for ``sign``; signed by a trainee and someone
   else's for ``countersign``), their canonical bytes hashed, the provider asked to start its intent check.
2. ``complete``: the signer's answer goes to the provider (wrong answers are refused and audited; too many lock
   the session). Once the check passed, the provider signs every record's canonical bytes, each signature is
   verified, and only then - in one transaction for the whole batch - the signatures are stored and the records'
   status changes. A provider or time-stamp authority that is down answers 503 and stores nothing; the session
   stays open so the same call can be repeated while it has not expired.

Vendors are called outside any database transaction, so a slow vendor never holds a lock.
"""

from __future__ import annotations

import json
import logging
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlmodel import Session, col, select

from core import audit, events
from core.audit import Actor
from core.clock import now
from core.db import transaction
from core.models.records import (
    ClinicalRecord,
    RecordSignature,
    RecordSigningSession,
    RecordStatus,
    SessionStatus,
    SignatureKind,
)
from core.records import canonical
from core.records.errors import (
    IntentCheckFailed,
    RecordConflict,
    RecordError,
    RecordForbidden,
    RecordNotFound,
    SessionExpired,
    SessionLocked,
    SigningFailed,
    SigningUnavailable,
)
from core.records.schemas import (
    ChallengeOut,
    CheckOut,
    EnrollmentOut,
    EnrollmentStepOut,
    ProviderOut,
    SignatureReport,
    SignedRecord,
    SigningOut,
    VerificationOut,
)
from core.records.service import SUBJECT, RecordService, event_data, signature_out
from plugin_sdk.errors import FieldError, PermanentError, RetryableError, UnknownOutcomeError, ValidationFailed
from plugin_sdk.providers import (
    ChallengeKind,
    ChallengeStatus,
    SignatureResult,
    SignerEnrollment,
    SigningChallenge,
    SigningProvider,
    VerificationCheck,
    VerificationReport,
)

if TYPE_CHECKING:
    from core.app_context import Praxis
    from core.plugins.runtime import PluginRuntime

log = logging.getLogger(__name__)
T = TypeVar("T")
SIGN_PERMISSION = "records.sign"

# --- providers -------------------------------------------------------------------------------------------

_providers: weakref.WeakKeyDictionary[Any, list[tuple[str, SigningProvider]]] = weakref.WeakKeyDictionary()


def providers(runtime: PluginRuntime) -> list[tuple[str, SigningProvider]]:
    """(plugin, provider) for every signing provider of the available plugins, in install order."""
    found = _providers.get(runtime)
    if found is None:
        found = []
        for result in runtime.collect("praxis_signing_providers"):
            for provider in result.value or []:
                if isinstance(provider, SigningProvider):
                    found.append((result.plugin, provider))
                else:
                    log.error("plugin %s returned %r from praxis_signing_providers; ignored", result.plugin, provider)
        order = {name: i for i, name in enumerate(runtime.order)}
        found.sort(key=lambda pair: order.get(pair[0], len(order)))
        _providers[runtime] = found
    return found


def provider_of(runtime: PluginRuntime, plugin: str) -> SigningProvider | None:
    return next((prov for name, prov in providers(runtime) if name == plugin), None)


def _vendor_call(what: str, plugin: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a provider and turn its errors into the API's: 503 retry later, 424 refused, 422 bad input."""
    try:
        return fn(*args, **kwargs)
    except ValidationFailed:
        raise
    except RetryableError as exc:
        raise SigningUnavailable(f"{what} is not possible right now ({plugin}): {exc}. Nothing was signed; try "
                                 "again in a moment", reason=str(exc), provider=plugin,
                                 retry_after=exc.retry_after) from exc
    except UnknownOutcomeError as exc:
        raise SigningUnavailable(f"{what}: {plugin} did not answer ({exc}). Nothing was stored; try again",
                                 reason=str(exc), provider=plugin) from exc
    except PermanentError as exc:
        raise SigningFailed(f"{what} was refused by {plugin}: {exc}", reason=str(exc), provider=plugin,
                            vendor_code=exc.code) from exc
    except RecordError:
        raise
    except Exception as exc:
        log.exception("signing provider %s failed in %s", plugin, what)
        raise SigningFailed(f"{what} failed in {plugin}: {type(exc).__name__}: {exc}", reason=str(exc),
                            provider=plugin) from exc


def _enrollment_out(value: SignerEnrollment) -> EnrollmentOut:
    return EnrollmentOut(ready=value.ready, steps=[EnrollmentStepOut(name=s.name, done=s.done, message=s.message)
                                                   for s in value.steps], details=dict(value.details))


def _challenge_out(row: RecordSigningSession, challenge: SigningChallenge | None) -> ChallengeOut:
    return ChallengeOut(
        session_id=row.id, provider=row.provider, kind=row.challenge_kind, status=row.status, signing=row.kind,
        document_count=len(row.record_ids), record_ids=[uuid.UUID(r) for r in row.record_ids],
        expires_at=row.expires_at, attempts_left=challenge.attempts_left if challenge else None,
        qr_url=challenge.qr_url if challenge else None, sent_to=challenge.sent_to if challenge else None,
        message=challenge.message if challenge else "",
    )


@dataclass(frozen=True)
class Signer:
    """Who signs: the caller, with their permissions in the clinic."""

    actor: Actor
    permissions: frozenset[str]

    @property
    def user_id(self) -> int:
        assert self.actor.id is not None
        return self.actor.id


class SigningService:
    def __init__(self, praxis: Praxis) -> None:
        self.praxis = praxis
        self.runtime = praxis.runtime
        self.records = RecordService(praxis)

    def _enabled(self, clinic_id: int) -> list[tuple[str, SigningProvider]]:
        enabled = set(self.runtime.enabled(clinic_id, include_open_circuits=True))
        return [(p, prov) for p, prov in providers(self.runtime) if p in enabled]

    def _ctx(self, clinic_id: int, plugin: str) -> Any:
        return self.runtime.context(plugin, clinic_id)

    # --- providers and enrollment ------------------------------------------------------------------------

    def list_providers(self, clinic_id: int, signer: Signer) -> list[ProviderOut]:
        out = []
        for plugin, provider in self._enabled(clinic_id):
            enrollment, problem = None, None
            try:
                enrollment = _enrollment_out(provider.enrollment(self._ctx(clinic_id, plugin), signer.user_id))
            except Exception as exc:  # a provider that cannot tell is listed with the reason, not hidden
                problem = f"{type(exc).__name__}: {exc}"
            out.append(ProviderOut(plugin=plugin, title=self.runtime.title(plugin),
                                   intent_methods=[str(m) for m in provider.intent_methods],
                                   enrollment=enrollment, problem=problem))
        return out

    def _enabled_provider(self, clinic_id: int, plugin: str) -> SigningProvider:
        provider = next((prov for p, prov in self._enabled(clinic_id) if p == plugin), None)
        if provider is None:
            raise RecordNotFound(f"no signing plugin {plugin!r} is enabled in this clinic", code="no_provider")
        return provider

    def enroll(self, clinic_id: int, signer: Signer, plugin: str, step: str, data: dict[str, Any]) -> EnrollmentOut:
        provider = self._enabled_provider(clinic_id, plugin)
        try:
            result = _vendor_call("enrollment", plugin, provider.enroll, self._ctx(clinic_id, plugin),
                                  signer.user_id, step, data)
        except (ValidationFailed, RecordError) as exc:
            with transaction(self.praxis.engine) as session:
                audit.record(session, signer.actor, "records.enrollment_refused", clinic_id=clinic_id,
                             target=f"user:{signer.user_id}", data={"provider": plugin, "step": step,
                                                                    "reason": str(exc)[:500]})
            raise
        with transaction(self.praxis.engine) as session:
            audit.record(session, signer.actor, "records.enrolled", clinic_id=clinic_id,
                         target=f"user:{signer.user_id}",
                         data={"provider": plugin, "step": step, "ready": result.ready})
        return _enrollment_out(result)

    def _choose(self, clinic_id: int, signer: Signer, plugin: str | None) -> tuple[str, SigningProvider]:
        candidates = self._enabled(clinic_id)
        if plugin is not None:
            candidates = [(p, prov) for p, prov in candidates if p == plugin]
            if not candidates:
                raise ValidationFailed([FieldError("provider", f"no signing plugin {plugin!r} is enabled here",
                                                   "unknown_provider")])
        if not candidates:
            raise RecordConflict("no signing plugin is enabled in this clinic; an administrator enables one",
                                 code="no_provider")
        missing: list[str] = []
        for name, provider in candidates:
            enrollment = _vendor_call("checking your enrollment", name, provider.enrollment,
                                      self._ctx(clinic_id, name), signer.user_id)
            if enrollment.ready:
                return name, provider
            todo = [f"{s.name}: {s.message}" for s in enrollment.steps if not s.done]
            missing.append(f"{name} ({'; '.join(todo) or 'see its enrollment'})")
        raise RecordConflict("you cannot sign yet: " + "; ".join(missing), code="not_enrolled")

    # --- sessions ------------------------------------------------------------------------------------------

    def _eligible(self, session: Session, record: ClinicalRecord, kind: str, signer: Signer) -> None:
        if record.superseded_by_id is not None:
            raise RecordConflict(f"record {record.id} was amended; sign its latest version", code="superseded",
                                 record_id=str(record.id))
        if kind == SignatureKind.sign:
            if record.author_id != signer.user_id:
                raise RecordForbidden(f"record {record.id} is someone else's: you sign your own records "
                                      "(a supervisor countersigns a trainee's)", code="not_author",
                                      record_id=str(record.id))
            if record.status != RecordStatus.final:
                raise RecordConflict(f"record {record.id} is {record.status}; only final records are signed",
                                     code="record_not_final", record_id=str(record.id), status_now=record.status)
        else:
            if record.author_id == signer.user_id:
                raise RecordForbidden(f"record {record.id} is your own: a countersignature comes from a supervisor",
                                      code="own_record", record_id=str(record.id))
            if record.status != RecordStatus.signed or not record.requires_countersign:
                raise RecordConflict(f"record {record.id} is {record.status} and does not wait for a "
                                     "countersignature", code="no_countersign_needed", record_id=str(record.id),
                                     status_now=record.status)

    def _load_all(self, session: Session, clinic_id: int, ids: list[uuid.UUID], *,
                  lock: bool = False) -> list[ClinicalRecord]:
        query = select(ClinicalRecord).where(ClinicalRecord.clinic_id == clinic_id,
                                             col(ClinicalRecord.id).in_(ids))
        if lock:
            query = query.with_for_update()
        found = {r.id: r for r in session.exec(query).all()}
        missing = [str(i) for i in ids if i not in found]
        if missing:
            raise RecordNotFound(f"there is no record {', '.join(missing)} in this clinic", record_ids=missing)
        return [found[i] for i in ids]

    def begin(self, clinic_id: int, signer: Signer, record_ids: list[uuid.UUID], kind: str,
              plugin: str | None = None, method: str | None = None) -> ChallengeOut:
        ids = list(dict.fromkeys(record_ids))
        with Session(self.praxis.engine) as session:
            records = self._load_all(session, clinic_id, ids)
            for record in records:
                self._eligible(session, record, kind, signer)
            digests = {str(r.id): canonical.sha256(canonical.canonical_bytes(r)) for r in records}
        name, provider = self._choose(clinic_id, signer, plugin)
        if method is not None and method not in provider.intent_methods:
            raise ValidationFailed([FieldError("method", f"{name} offers {', '.join(provider.intent_methods)}",
                                               "unknown_method")])
        challenge = _vendor_call("starting the signing", name, provider.begin, self._ctx(clinic_id, name),
                                 signer.user_id, len(ids), method)
        passed = challenge.status == ChallengeStatus.passed
        row = RecordSigningSession(
            clinic_id=clinic_id, user_id=signer.user_id, kind=kind, provider=name,
            provider_session_id=challenge.session_id, challenge_kind=str(challenge.kind),
            record_ids=[str(i) for i in ids], digests=digests,
            status=SessionStatus.passed if passed else SessionStatus.pending, expires_at=challenge.expires_at,
        )
        with transaction(self.praxis.engine) as session:
            session.add(row)
            session.flush()
            audit.record(session, signer.actor, "records.signing_started", clinic_id=clinic_id,
                         target=f"signing_session:{row.id}",
                         data={"provider": name, "kind": kind, "intent_check": str(challenge.kind),
                               "records": row.record_ids})
        return _challenge_out(row, challenge)

    def _session(self, session: Session, clinic_id: int, signer: Signer, session_id: uuid.UUID,
                 *, lock: bool = False) -> RecordSigningSession:
        query = select(RecordSigningSession).where(RecordSigningSession.id == session_id,
                                                   RecordSigningSession.clinic_id == clinic_id,
                                                   RecordSigningSession.user_id == signer.user_id)
        if lock:
            query = query.with_for_update()
        row = session.exec(query).first()
        if row is None:
            raise RecordNotFound(f"there is no signing session {session_id} of yours in this clinic")
        return row

    def _set_status(self, clinic_id: int, signer: Signer, session_id: uuid.UUID, status: str, action: str,
                    data: dict[str, Any], *, failed_attempt: bool = False, error: str | None = None) -> None:
        with transaction(self.praxis.engine) as session:
            row = self._session(session, clinic_id, signer, session_id, lock=True)
            row.status = status
            if failed_attempt:
                row.failed_attempts += 1
            if error is not None:
                row.last_error = error[:1000]
            if status in (SessionStatus.done, SessionStatus.failed, SessionStatus.locked, SessionStatus.expired):
                row.completed_at = now()
            session.add(row)
            audit.record(session, signer.actor, action, clinic_id=clinic_id, target=f"signing_session:{row.id}",
                         data={"provider": row.provider, "failed_attempts": row.failed_attempts, **data})

    def complete(self, clinic_id: int, signer: Signer, session_id: uuid.UUID, response: str | None) -> SigningOut:
        with Session(self.praxis.engine) as session:
            row = self._session(session, clinic_id, signer, session_id)
        if row.status == SessionStatus.done:
            raise RecordConflict("this signing session is finished already", code="session_done")
        if row.status == SessionStatus.locked:
            raise SessionLocked("this signing session is locked after too many wrong answers; begin a new one")
        if row.status in (SessionStatus.failed, SessionStatus.expired):
            raise SessionExpired(f"this signing session has {row.status}; begin a new one",
                                 code=f"session_{row.status}")
        if row.expires_at is not None and now() >= row.expires_at:
            self._set_status(clinic_id, signer, row.id, SessionStatus.expired, "records.signing_expired", {})
            raise SessionExpired("the signing session expired; begin a new one")
        provider = provider_of(self.runtime, row.provider)
        if provider is None or not self.runtime.is_enabled(clinic_id, row.provider):
            raise SigningFailed(f"the signing plugin {row.provider} is no longer enabled here", code="no_provider")
        ctx = self._ctx(clinic_id, row.provider)
        if row.status == SessionStatus.pending:
            outcome = _vendor_call("checking your answer", row.provider, provider.complete, ctx,
                                   row.provider_session_id, response)
            self._apply_outcome(clinic_id, signer, row, outcome)
        return self._sign(clinic_id, signer, row, provider, ctx)

    def _apply_outcome(self, clinic_id: int, signer: Signer, row: RecordSigningSession,
                       outcome: SigningChallenge) -> None:
        details = {"intent_check": row.challenge_kind, "attempts_left": outcome.attempts_left,
                   "vendor_message": outcome.message[:300]}
        if outcome.status == ChallengeStatus.passed:
            self._set_status(clinic_id, signer, row.id, SessionStatus.passed, "records.intent_confirmed", details)
            row.status = SessionStatus.passed
            return
        if outcome.status == ChallengeStatus.rejected:
            self._set_status(clinic_id, signer, row.id, SessionStatus.pending, "records.intent_failed", details,
                             failed_attempt=True)
            left = f"; {outcome.attempts_left} attempt(s) left" if outcome.attempts_left is not None else ""
            raise IntentCheckFailed(f"the intent check failed: {outcome.message or 'wrong answer'}{left}",
                                    fields=[{"field": "response", "message": outcome.message or "wrong answer",
                                             "code": "wrong_code"}], attempts_left=outcome.attempts_left)
        if outcome.status == ChallengeStatus.locked:
            self._set_status(clinic_id, signer, row.id, SessionStatus.locked, "records.intent_locked", details,
                             failed_attempt=True)
            raise SessionLocked("too many wrong answers: the signing session is locked; begin a new one",
                                attempts_left=0)
        if outcome.status == ChallengeStatus.expired:
            self._set_status(clinic_id, signer, row.id, SessionStatus.expired, "records.signing_expired", details)
            raise SessionExpired("the intent check expired; begin a new signing session")
        kind_word = "scan the QR code and finish the face check" if row.challenge_kind == ChallengeKind.qr_face \
            else "answer the intent check"
        raise RecordConflict(f"the intent check is not finished yet: {kind_word}, then try again",
                             code="intent_pending", status_now="pending")

    def _sign(self, clinic_id: int, signer: Signer, row: RecordSigningSession, provider: SigningProvider,
              ctx: Any) -> SigningOut:
        ids = [uuid.UUID(r) for r in row.record_ids]
        with Session(self.praxis.engine) as session:
            records = self._load_all(session, clinic_id, ids)
            for record in records:
                self._eligible(session, record, row.kind, signer)
                if canonical.sha256(canonical.canonical_bytes(record)) != row.digests.get(str(record.id)):
                    raise RecordConflict(f"record {record.id} changed after the signing began; begin again",
                                         code="changed_since_begin", record_id=str(record.id))
            documents = [canonical.canonical_bytes(r) for r in records]
        try:
            results = _vendor_call("signing", row.provider, provider.sign_in_session, ctx, row.provider_session_id,
                                   signer.user_id, documents)
            if len(results) != len(documents):
                raise SigningFailed(f"{row.provider} returned {len(results)} signatures for {len(documents)} records")
            for record, document, result in zip(records, documents, results, strict=True):
                report = _vendor_call("checking the new signature", row.provider, provider.verify, ctx, document,
                                      result.signature)
                if not report.valid:
                    failed = [f"{c.name}: {c.message}" for c in report.checks if not c.passed]
                    raise SigningFailed(f"the signature {row.provider} made for record {record.id} did not verify "
                                        f"({'; '.join(failed) or 'no reason given'}); nothing was stored",
                                        code="signature_invalid", record_id=str(record.id), checks=failed)
        except SigningUnavailable as exc:
            self._set_status(clinic_id, signer, row.id, SessionStatus.passed, "records.signing_failed",
                             {"reason": str(exc)[:500], "retryable": True}, error=str(exc))
            raise
        except RecordError as exc:
            self._set_status(clinic_id, signer, row.id, SessionStatus.failed, "records.signing_failed",
                             {"reason": str(exc)[:500], "retryable": False}, error=str(exc))
            raise
        return self._store(clinic_id, signer, row, records, documents, results)

    def _store(self, clinic_id: int, signer: Signer, row: RecordSigningSession, records: list[ClinicalRecord],
               documents: list[bytes], results: list[SignatureResult]) -> SigningOut:
        """One transaction: every signature, every status change, the session, the audit entries and events."""
        at = now()
        signed: list[SignedRecord] = []
        with transaction(self.praxis.engine) as session:
            fresh = self._load_all(session, clinic_id, [r.id for r in records], lock=True)
            session_row = self._session(session, clinic_id, signer, row.id, lock=True)
            if session_row.status != SessionStatus.passed:
                raise RecordConflict(f"the signing session is {session_row.status}", code="session_changed")
            for record, document, result in zip(fresh, documents, results, strict=True):
                self._eligible(session, record, row.kind, signer)  # nothing changed while the vendor worked
                if canonical.canonical_bytes(record) != document:
                    raise RecordConflict(f"record {record.id} changed while it was being signed; begin again",
                                         code="changed_since_begin")
                sig = RecordSignature(
                    clinic_id=clinic_id, record_id=record.id, kind=row.kind, provider=row.provider,
                    signer_id=signer.user_id, signer_name=result.signer[:300], signature=result.signature,
                    canonical_format=canonical.FORMAT, document_sha256=canonical.sha256(document),
                    signed_at=result.signed_at, certificate_serial=result.certificate_serial,
                    certificate_subject=_text(result.details.get("certificate_subject"), 500),
                    expires_at=result.expires_at, timestamped_at=_when(result.details.get("timestamped_at")),
                    details=_jsonable(result.details), session_id=row.id,
                )
                session.add(sig)
                if row.kind == SignatureKind.sign:
                    record.requires_countersign = SIGN_PERMISSION not in signer.permissions
                    record.signed_at = result.signed_at
                    record.status = RecordStatus.signed if record.requires_countersign else RecordStatus.locked
                else:
                    record.status = RecordStatus.locked
                if record.status == RecordStatus.locked:
                    record.locked_at = at
                record.updated_at = at
                session.add(record)
                session.flush()
                data = {**event_data(record), "signature_id": sig.id, "signature_kind": row.kind,
                        "provider": row.provider, "signer_id": signer.user_id, "signer": sig.signer_name,
                        "certificate_serial": sig.certificate_serial, "sha256": sig.document_sha256,
                        "session_id": str(row.id)}
                audit.record(session, signer.actor, "records.countersigned" if row.kind == SignatureKind.countersign
                             else "records.signed", clinic_id=clinic_id, target=f"record:{record.id}", data=data)
                events.emit(session, self.runtime, "record.signed", clinic_id=clinic_id, subject_type=SUBJECT,
                            subject_id=record.id, data=data, actor=signer.actor)
                signed.append(SignedRecord(record_id=record.id, status=record.status, signature=signature_out(sig)))
            session_row.status = SessionStatus.done
            session_row.completed_at = at
            session.add(session_row)
        return SigningOut(session_id=row.id, status=SessionStatus.done, signed=signed)

    # --- verification ------------------------------------------------------------------------------------------

    def verify(self, clinic_id: int, record_id: uuid.UUID, actor: Actor) -> VerificationOut:
        """Recompute the record's canonical bytes and have each signature's provider check its signature."""
        with Session(self.praxis.engine) as session:
            record = RecordService.load(session, clinic_id, record_id)
            sigs = session.exec(select(RecordSignature).where(RecordSignature.record_id == record.id)
                                .order_by(col(RecordSignature.id))).all()
            previous = session.get(ClinicalRecord, record.previous_version_id) if record.previous_version_id else None
        document = canonical.canonical_bytes(record)
        digest = canonical.sha256(document)
        checks: list[CheckOut] = []
        expected = {SignatureKind.sign} | ({SignatureKind.countersign} if record.status == RecordStatus.locked
                                           and record.requires_countersign else set())
        have = {s.kind for s in sigs}
        if record.status in (RecordStatus.draft, RecordStatus.final):
            checks.append(CheckOut(name="signed", passed=False, message=f"the record is {record.status}, not signed"))
        else:
            missing = sorted(expected - have)
            checks.append(CheckOut(name="signatures present", passed=not missing,
                                   message=f"missing: {', '.join(missing)}" if missing else
                                   f"{len(sigs)} signature(s) stored: {', '.join(sorted(have))}"))
        if previous is not None:
            previous_digest = canonical.sha256(canonical.canonical_bytes(previous))
            same = previous_digest == record.previous_sha256
            checks.append(CheckOut(
                name="amended version", passed=same,
                message=f"amends version {previous.version} ({previous.id}), unchanged since"
                if same else f"version {previous.version} ({previous.id}) was changed after this amendment was "
                             f"written: its content hashes to {previous_digest[:16]}..., the amendment recorded "
                             f"{(record.previous_sha256 or '')[:16]}..."))
        reports: list[SignatureReport] = []
        for sig in sigs:
            sig_checks = [CheckOut(name="format", passed=sig.canonical_format == canonical.FORMAT,
                                   message=f"canonical form {sig.canonical_format}")]
            same = digest == sig.document_sha256
            sig_checks.append(CheckOut(
                name="content digest", passed=same,
                message="the stored record is byte for byte what was signed (SHA-256 " + digest[:16] + "...)" if same
                else f"the stored record differs from what was signed: its canonical bytes hash to {digest[:16]}..., "
                     f"the signed ones to {sig.document_sha256[:16]}... (the content was changed after signing)"))
            provider = provider_of(self.runtime, sig.provider)
            if provider is None:
                sig_checks.append(CheckOut(name="provider", passed=False,
                                           message=f"the signing plugin {sig.provider} is not installed here, so "
                                                   "the signature itself cannot be checked"))
            else:
                report = self._provider_verify(clinic_id, sig.provider, provider, document, sig.signature)
                sig_checks += [CheckOut(name=c.name, passed=c.passed, message=c.message) for c in report.checks]
                if not report.valid and all(c.passed for c in report.checks):
                    sig_checks.append(CheckOut(name="provider verdict", passed=False,
                                               message=f"{sig.provider} judged the signature invalid"))
            reports.append(SignatureReport(signature_id=sig.id or 0, kind=sig.kind, provider=sig.provider,
                                           signer_name=sig.signer_name, signed_at=sig.signed_at,
                                           valid=all(c.passed for c in sig_checks), checks=sig_checks))
        valid = all(c.passed for c in checks) and bool(reports) and all(r.valid for r in reports)
        failed = [c for c in checks if not c.passed] + [c for r in reports for c in r.checks if not c.passed]
        summary = (f"valid: {len(reports)} signature(s) verified over the stored content" if valid
                   else "NOT valid: " + "; ".join(f"{c.name}: {c.message}" for c in failed))
        at = now()
        with transaction(self.praxis.engine) as session:
            audit.record(session, actor, "records.verified", clinic_id=clinic_id, target=f"record:{record.id}",
                         data={"valid": valid, "failed": [c.name for c in failed], "sha256": digest})
        return VerificationOut(record_id=record.id, version=record.version, status=record.status, valid=valid,
                               checked_at=at, summary=summary, checks=checks, signatures=reports)

    def _provider_verify(self, clinic_id: int, plugin: str, provider: SigningProvider, document: bytes,
                         signature: bytes) -> VerificationReport:
        try:
            report = provider.verify(self._ctx(clinic_id, plugin), document, signature)
        except Exception as exc:  # verification must always answer with a report
            log.exception("signing provider %s failed to verify", plugin)
            return VerificationReport(False, (VerificationCheck("provider", False,
                                                                f"{plugin} could not verify: {exc}"),))
        return report


def _text(value: Any, limit: int) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None


def _when(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


def _jsonable(details: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dict(details or {}), default=str))


def export_pdf(praxis: Praxis, clinic_id: int, record_id: uuid.UUID, actor: Actor) -> tuple[bytes, str]:
    """The record as a PDF with its signatures and a fresh verification; logged as a patient-data export."""
    from core.auth.access import log_access
    from core.models.clinic import Clinic
    from core.models.patient import Patient
    from core.records.pdf import render

    service = SigningService(praxis)
    verification = service.verify(clinic_id, record_id, actor) if _has_signatures(praxis, clinic_id, record_id) \
        else None
    with transaction(praxis.engine) as session:
        record = RecordService.load(session, clinic_id, record_id)
        out = service.records.out(session, record)
        clinic = session.get(Clinic, clinic_id)
        patient = session.get(Patient, record.patient_id)
        assert clinic is not None
        log_access(session, actor, clinic_id, record.patient_id, "export")
        audit.record(session, actor, "records.exported", clinic_id=clinic_id, target=f"record:{record.id}",
                     data={"format": "pdf", "version": record.version})
    name = " ".join(p for p in (patient.family_name, patient.given_name) if p) if patient else str(out.patient_id)
    data = render(out, clinic_name=clinic.name, timezone=clinic.timezone, locale=clinic.locale, patient_name=name,
                  verification=verification, exported_at=now())
    return data, f"record-{out.id}-v{out.version}.pdf"


def _has_signatures(praxis: Praxis, clinic_id: int, record_id: uuid.UUID) -> bool:
    with Session(praxis.engine) as session:
        return session.exec(select(RecordSignature.id).where(RecordSignature.record_id == record_id,
                                                             RecordSignature.clinic_id == clinic_id)).first() \
            is not None
