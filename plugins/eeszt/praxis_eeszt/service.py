"""The plugin's logic, shared by its routes, event hook and outbox handlers: configuration, doctors' stamp
numbers and EESZT logins, and the per-visit synchronisation (event catalogue + outpatient report)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from plugin_sdk import DomainEvent, OutboxMessage, PermanentError, PluginContext, RetryableError
from praxis_eeszt.certificate import CertificateError, ClientCertificate
from praxis_eeszt.client import EesztClient, EesztRefused, EesztUnavailable
from praxis_eeszt.models import Doctor, DoctorSession, SyncItem, Visit
from praxis_eeszt.settings import EesztSettings

TAJ = "hu.taj"
OPEN, CLOSE, REPORT = "eeszt.event.open", "eeszt.event.close", "eeszt.report.send"
STEPS = {OPEN: "open_event", CLOSE: "close_event", REPORT: "send_report"}
STARTED_ROLES = ("arrived", "in_progress")
#: How long a token login's one-time code stays refused for a second use (two TOTP steps and some slack).
OTP_REPLAY_WINDOW = timedelta(seconds=90)
#: A report waits this long for the visit's record to be finalised before the outbox tries again.
RECORD_WAIT_SECONDS = 900.0


class NotConfigured(Exception):
    def __init__(self, missing: list[str]) -> None:
        super().__init__("EESZT is not set up yet: fill in " + ", ".join(missing))
        self.missing = missing


# --- configuration -------------------------------------------------------------------------------


def settings_of(ctx: PluginContext) -> EesztSettings:
    settings = ctx.settings
    assert isinstance(settings, EesztSettings)
    return settings


def certificate_of(settings: EesztSettings) -> ClientCertificate:
    if settings.client_certificate is None:
        raise NotConfigured(["client_certificate"])
    return ClientCertificate.load(settings.client_certificate.get_secret_value().encode())


def client_for(ctx: PluginContext, settings: EesztSettings | None = None,
               certificate: ClientCertificate | None = None) -> EesztClient:
    settings = settings or settings_of(ctx)
    if settings.missing() and not (certificate and settings.missing() == ["client_certificate"]):
        raise NotConfigured(settings.missing())
    return EesztClient(settings.service_url, certificate or certificate_of(settings), settings.institution_id,
                       settings.unit_code, now=ctx.now, timeout=settings.timeout_seconds)


# --- doctors -------------------------------------------------------------------------------------


def doctor(session: Session, clinic_id: int, user_id: int) -> Doctor | None:
    return session.exec(select(Doctor).where(Doctor.clinic_id == clinic_id, Doctor.user_id == user_id)).first()


def doctor_out(row: Doctor | None, user_id: int) -> dict[str, Any]:
    return {"user_id": user_id, "stamp_number": row.stamp_number if row else None,
            "eeszt_user": row.eeszt_user if row else None}


def otp_replayed(ctx: PluginContext, user_id: int, otp: str) -> bool:
    """Refuse a one-time code this doctor used a moment ago (before asking EESZT), and remember this one."""
    digest = hashlib.sha256(f"{ctx.clinic.id}:{user_id}:{otp}".encode()).hexdigest()
    now = ctx.now()
    with ctx.session() as session:
        row = doctor(session, ctx.clinic.id, user_id)
        if row is None:
            return False
        if row.last_otp_digest == digest and row.last_otp_at and now - row.last_otp_at < OTP_REPLAY_WINDOW:
            return True
        row.last_otp_digest, row.last_otp_at = digest, now
        session.add(row)
    return False


# --- doctors' EESZT sessions ---------------------------------------------------------------------


def _context(clinic_id: int, user_id: int) -> str:
    return f"eeszt-session:{clinic_id}:{user_id}"


def current_session(ctx: PluginContext, user_id: int) -> tuple[DoctorSession, str] | None:
    """The doctor's live login (row, token), or None: ended, past its ``session_hours`` or made with another
    certificate (those are ended here, with the reason)."""
    settings = settings_of(ctx)
    try:
        certificate = certificate_of(settings)
    except (NotConfigured, CertificateError):
        return None
    now = ctx.now()
    with ctx.session() as session:
        row = session.exec(select(DoctorSession).where(
            DoctorSession.clinic_id == ctx.clinic.id, DoctorSession.user_id == user_id,
            col(DoctorSession.ended_at).is_(None)).order_by(col(DoctorSession.id).desc())).first()
        if row is None:
            return None
        token = None
        if row.certificate_fingerprint == certificate.fingerprint:
            token = certificate.unseal(row.sealed_token, _context(ctx.clinic.id, user_id))
        reason = "expired" if now >= row.expires_at else ("certificate_changed" if token is None else None)
        if reason is not None:
            row.ended_at, row.end_reason = now, reason
            session.add(row)
            ctx.audit("session_ended", target=f"user:{user_id}", data={"reason": reason}, session=session)
            return None
        assert token is not None
        return row, token


def start_session(ctx: PluginContext, user_id: int, method: str, token: str) -> DoctorSession:
    settings = settings_of(ctx)
    certificate = certificate_of(settings)
    now = ctx.now()
    with ctx.session() as session:
        for old in session.exec(select(DoctorSession).where(
                DoctorSession.clinic_id == ctx.clinic.id, DoctorSession.user_id == user_id,
                col(DoctorSession.ended_at).is_(None))).all():
            old.ended_at, old.end_reason = now, "replaced"
            session.add(old)
        row = DoctorSession(
            clinic_id=ctx.clinic.id, user_id=user_id, method=method,
            sealed_token=certificate.seal(token, _context(ctx.clinic.id, user_id)),
            certificate_fingerprint=certificate.fingerprint, started_at=now,
            expires_at=now + timedelta(hours=settings.session_hours))
        session.add(row)
        session.flush()
        session.expunge(row)
    return row


def end_session(ctx: PluginContext, row: DoctorSession, reason: str) -> None:
    with ctx.session() as session:
        stored = session.get(DoctorSession, row.id)
        if stored is not None and stored.ended_at is None:
            stored.ended_at, stored.end_reason = ctx.now(), reason
            session.add(stored)
            ctx.audit("session_ended", target=f"user:{row.user_id}", data={"reason": reason}, session=session)


def session_status(ctx: PluginContext, user_id: int) -> dict[str, Any]:
    live = current_session(ctx, user_id)
    if live is None:
        return {"user_id": user_id, "logged_in": False, "method": None, "started_at": None, "expires_at": None,
                "remaining_seconds": 0}
    row, _ = live
    return {"user_id": user_id, "logged_in": True, "method": row.method, "started_at": row.started_at.isoformat(),
            "expires_at": row.expires_at.isoformat(),
            "remaining_seconds": int((row.expires_at - ctx.now()).total_seconds())}


# --- visits: event catalogue and outpatient report -----------------------------------------------


def on_status_changed(ctx: PluginContext, event: DomainEvent) -> None:
    """Queue opening the event when a visit starts and closing it (then the report) when it is done."""
    data = event.data
    role = data.get("status_role")
    if role not in (*STARTED_ROLES, "done") or not data.get("patient_id") or data.get("in_trash"):
        return
    appointment_id = int(data["id"])
    topic = CLOSE if role == "done" else OPEN
    now = ctx.now()
    with ctx.session() as session:
        visit = session.exec(select(Visit).where(Visit.clinic_id == ctx.clinic.id,
                                                 Visit.appointment_id == appointment_id)).first()
        if visit is None:
            visit = Visit(clinic_id=ctx.clinic.id, appointment_id=appointment_id,
                          patient_id=uuid.UUID(str(data["patient_id"])), doctor_id=int(data["doctor_id"]),
                          created_at=now, updated_at=now)
            session.add(visit)
            session.flush()
        payload = {"appointment_id": appointment_id, "at": data.get("status_changed_at") or now.isoformat()}
        queue(ctx, session, topic, payload, appointment_id)


def queue(ctx: PluginContext, session: Session, topic: str, payload: dict[str, Any], appointment_id: int) -> None:
    item_id = ctx.enqueue(topic, payload, dedupe_key=f"{STEPS[topic]}:{appointment_id}", session=session)
    if session.get(SyncItem, item_id) is None:
        now = ctx.now()
        session.add(SyncItem(id=item_id, clinic_id=ctx.clinic.id, appointment_id=appointment_id, step=STEPS[topic],
                             created_at=now, updated_at=now))


def tracked(handler: Any) -> Any:
    """Run an outbox handler and keep its sync item's state: done, retrying (with the error) or failed."""

    def run(ctx: PluginContext, message: OutboxMessage) -> None:
        try:
            handler(ctx, message)
        except NotConfigured as exc:
            _mark(ctx, message, "retrying", str(exc))
            raise RetryableError(str(exc), retry_after=3600, code="not_configured") from None
        except EesztUnavailable as exc:
            _mark(ctx, message, "retrying", exc.message)
            raise RetryableError(exc.message, retry_after=exc.retry_after, code=exc.code) from None
        except RetryableError as exc:
            _mark(ctx, message, "retrying", str(exc))
            raise
        except EesztRefused as exc:
            _mark(ctx, message, "failed", f"EESZT refused ({exc.code}): {exc.message}")
            raise PermanentError(exc.message, code=exc.code) from None
        except PermanentError as exc:
            _mark(ctx, message, "failed", str(exc))
            raise
        except Exception as exc:
            _mark(ctx, message, "retrying", f"{type(exc).__name__}: {exc}")
            raise
        _mark(ctx, message, "done", None)

    return run


def _mark(ctx: PluginContext, message: OutboxMessage, status: str, error: str | None) -> None:
    with ctx.session() as session:
        item = session.get(SyncItem, message.id)
        if item is None:
            return
        item.status, item.attempts, item.last_error, item.updated_at = status, message.attempt, error, ctx.now()
        session.add(item)


def _visit(session: Session, ctx: PluginContext, appointment_id: int) -> Visit:
    visit = session.exec(select(Visit).where(Visit.clinic_id == ctx.clinic.id,
                                             Visit.appointment_id == appointment_id)).first()
    if visit is None:
        raise PermanentError(f"appointment {appointment_id} has no EESZT visit record")
    return visit


def _taj_and_doctor(ctx: PluginContext, visit: Visit) -> tuple[str, str]:
    patient = ctx.patient(str(visit.patient_id))
    if patient is None:
        raise PermanentError(f"patient {visit.patient_id} is gone from this clinic")
    taj = patient.identifiers.get(TAJ)
    if not taj:
        raise PermanentError(f"patient {patient.chart_number} has no TAJ number: add it to the card and retry")
    with ctx.session() as session:
        row = doctor(session, ctx.clinic.id, visit.doctor_id)
    if row is None:
        raise PermanentError(f"the visit's doctor (user {visit.doctor_id}) has no stamp number for EESZT: "
                             "set it on the EESZT page and retry")
    return taj, row.eeszt_user


def ensure_open(ctx: PluginContext, appointment_id: int, started_at: str, key: str) -> str:
    with ctx.session() as session:
        visit = _visit(session, ctx, appointment_id)
        if visit.event_id:
            return visit.event_id
    taj, doctor_user = _taj_and_doctor(ctx, visit)
    answer = client_for(ctx).open_event(external_id=f"praxis:{ctx.clinic.id}:{appointment_id}", taj=taj,
                                        doctor=doctor_user, started_at=started_at, idempotency_key=key)
    with ctx.session() as session:
        visit = _visit(session, ctx, appointment_id)
        visit.event_id, visit.opened_at, visit.updated_at = str(answer["event_id"]), ctx.now(), ctx.now()
        if visit.event_status == "queued":
            visit.event_status = "open"
        session.add(visit)
        ctx.audit("event_opened", target=f"appointment:{appointment_id}", data={"event_id": visit.event_id},
                  session=session)
        return str(visit.event_id)


def handle_open(ctx: PluginContext, message: OutboxMessage) -> None:
    ensure_open(ctx, int(message.payload["appointment_id"]), str(message.payload["at"]), message.idempotency_key)


def handle_close(ctx: PluginContext, message: OutboxMessage) -> None:
    appointment_id = int(message.payload["appointment_id"])
    with ctx.session() as session:
        visit = _visit(session, ctx, appointment_id)
        already = visit.event_status == "closed"
    if not already:
        event_id = ensure_open(ctx, appointment_id, str(message.payload["at"]), f"{message.idempotency_key}:open")
        client_for(ctx).close_event(event_id, ended_at=str(message.payload["at"]),
                                    idempotency_key=message.idempotency_key)
    with ctx.session() as session:
        visit = _visit(session, ctx, appointment_id)
        if visit.event_status != "closed":
            visit.event_status, visit.closed_at, visit.updated_at = "closed", ctx.now(), ctx.now()
            session.add(visit)
            ctx.audit("event_closed", target=f"appointment:{appointment_id}", data={"event_id": visit.event_id},
                      session=session)
        queue(ctx, session, REPORT, {"appointment_id": appointment_id}, appointment_id)


def outpatient_report(ctx: PluginContext, appointment_id: int) -> dict[str, Any]:
    """The visit's finished records as one outpatient report (ambuláns lap); drafts are not sent."""
    records = [r for r in ctx.records(appointment_id=appointment_id) if r.status != "draft"]
    if not records:
        raise RetryableError("waiting for the visit's clinical record to be finalised", retry_after=RECORD_WAIT_SECONDS,
                             code="no_record")
    parts = [f"{r.title}\n{r.text}".strip() if r.title else r.text.strip() for r in records]
    return {"type": "outpatient_report", "title": "Ambuláns lap", "text": "\n\n".join(p for p in parts if p),
            "records": [{"id": r.id, "kind": r.kind, "version": r.version, "signed": r.signed,
                         "content": r.content} for r in records]}


def handle_report(ctx: PluginContext, message: OutboxMessage) -> None:
    appointment_id = int(message.payload["appointment_id"])
    with ctx.session() as session:
        visit = _visit(session, ctx, appointment_id)
        if visit.document_id:
            return
        event_id = visit.event_id
    if not event_id:
        raise RetryableError("the visit's EESZT event is not open yet", code="event_not_open")
    report = outpatient_report(ctx, appointment_id)
    _, doctor_user = _taj_and_doctor(ctx, visit)
    answer = client_for(ctx).submit_document({**report, "event_id": event_id, "doctor": doctor_user},
                                             idempotency_key=message.idempotency_key)
    with ctx.session() as session:
        visit = _visit(session, ctx, appointment_id)
        visit.document_id, visit.document_sent_at, visit.updated_at = str(answer["document_id"]), ctx.now(), ctx.now()
        session.add(visit)
        ctx.audit("report_sent", target=f"appointment:{appointment_id}",
                  data={"document_id": visit.document_id, "records": [r["id"] for r in report["records"]]},
                  session=session)


def visit_out(visit: Visit | None, items: list[SyncItem]) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "event": None if visit is None else {
            "id": visit.event_id, "status": visit.event_status, "opened_at": iso(visit.opened_at),
            "closed_at": iso(visit.closed_at)},
        "document": None if visit is None or not visit.document_id else {
            "id": visit.document_id, "sent_at": iso(visit.document_sent_at)},
        "sync": [sync_out(i) for i in items],
    }


def sync_out(item: SyncItem) -> dict[str, Any]:
    return {"id": str(item.id), "appointment_id": item.appointment_id, "step": item.step, "status": item.status,
            "attempts": item.attempts, "last_error": item.last_error, "created_at": item.created_at.isoformat(),
            "updated_at": item.updated_at.isoformat()}
