"""Lab orders: created from a visit (the services on the appointment) or from services billed to the patient,
sent through the outbox, cancelled, and kept in step with what the outbox did.

Sending: the order, its lines and specimens and one outbox item for the lab's connector plugin (topic
``plugin_sdk.providers.LAB_ORDER_TOPIC``, payload ``LabOrder.to_payload()``) are written in one transaction. The
item's id is the idempotency key the connector passes to the lab (HL7 MSH-10, FHIR identifier), so a retried
delivery never makes a second order. The plugin's own outbox handler delivers it; ``reconcile`` then reads the
item's outcome (done: acknowledged with the lab's id, dead: rejected with the reason) into the order's status.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from core import audit
from core.clock import now
from core.db import transaction
from core.labs import catalogue
from core.labs.errors import Conflict, FieldErrors, NotFound, invalid
from core.models.appointment import Appointment
from core.models.auth import User
from core.models.labs import LabKind, LabOrder, LabOrderLine, LabResult, LabTest, OrderStatus, Specimen
from core.models.outbox import OutboxItem, OutboxStatus
from core.models.patient import Patient
from core.outbox.queue import enqueue
from plugin_sdk.providers import LAB_ORDER_TOPIC
from plugin_sdk.providers import LabOrder as SdkLabOrder

if TYPE_CHECKING:
    from core.plugins.runtime import PluginRuntime

OPEN_STATUSES = (OrderStatus.placed, OrderStatus.sent, OrderStatus.acknowledged, OrderStatus.partial)
MAX_TESTS = 100
#: A cancel for an order whose delivery is in flight waits this long, so it reaches the lab after the order.
CANCEL_DELAY = timedelta(minutes=2)


def placer_number(clinic_id: int, order_id: int) -> str:
    return f"C{clinic_id}-{order_id:07d}"


def accession_number(clinic_id: int, specimen_id: int) -> str:
    return f"S{clinic_id}-{specimen_id:07d}"


# --- creating -------------------------------------------------------------------------------------------


def _service_codes(services: list[Any]) -> list[str]:
    codes = []
    for service in services or []:
        code = service if isinstance(service, str) else (service.get("code") if isinstance(service, dict) else None)
        if isinstance(code, str) and code.strip() and code.strip() not in codes:
            codes.append(code.strip())
    return codes


def create_from_appointment(engine: Engine, runtime: PluginRuntime, clinic_id: int, appointment_id: int,
                            provider_id: int, actor: audit.Actor, *, doctor_id: int | None = None,
                            notes: str = "", collected_at: datetime | None = None) -> dict[str, Any]:
    """Order the tests mapped to the services on the appointment (the visit)."""
    with Session(engine) as session:
        appt = session.get(Appointment, appointment_id)
        if appt is None or appt.clinic_id != clinic_id or appt.deleted_at is not None:
            raise NotFound(f"appointment {appointment_id} not found in this clinic")
        if appt.patient_id is None:
            raise invalid("appointment_id", "the appointment has no registered patient yet", "no_patient")
        codes = _service_codes(appt.services)
        if not codes:
            raise invalid("appointment_id", "the appointment lists no services to order tests for", "no_services")
        patient_id, doctor = appt.patient_id, doctor_id or appt.doctor_id
    return create_order(engine, runtime, clinic_id, provider_id=provider_id, patient_id=patient_id,
                        service_codes=codes, doctor_id=doctor, appointment_id=appointment_id, source="appointment",
                        actor=actor, notes=notes, collected_at=collected_at)


def create_order(engine: Engine, runtime: PluginRuntime, clinic_id: int, *, provider_id: int,
                 patient_id: uuid.UUID, actor: audit.Actor, service_codes: list[str] | None = None,
                 test_codes: list[str] | None = None, doctor_id: int | None = None,
                 appointment_id: int | None = None, source: str | None = None, notes: str = "",
                 collected_at: datetime | None = None) -> dict[str, Any]:
    """Place an order for the tests mapped to ``service_codes`` (services billed to the patient) and/or the
    ``test_codes`` of the lab's catalogue, and queue it for the lab."""
    errors = FieldErrors()
    service_codes = [c.strip() for c in service_codes or [] if isinstance(c, str) and c.strip()]
    test_codes = [c.strip() for c in test_codes or [] if isinstance(c, str) and c.strip()]
    if not service_codes and not test_codes:
        errors.add("services", "name the billed services (or lab tests) to order", "required")
    if len(service_codes) + len(test_codes) > MAX_TESTS:
        errors.add("services", f"at most {MAX_TESTS} services and tests per order", "too_many")
    if len(notes) > 2000:
        errors.add("notes", "at most 2000 characters")
    if collected_at is not None and collected_at.tzinfo is None:
        errors.add("collected_at", "give a time with its UTC offset")
    errors.raise_if_any()
    if collected_at is not None:
        collected_at = collected_at.astimezone(UTC)
    with transaction(engine) as session:
        provider = catalogue.get_provider(session, clinic_id, provider_id)
        if provider.kind != LabKind.medical or not provider.active:
            raise invalid("provider_id", "choose an active medical lab", "wrong_kind")
        plugin = provider.connector_plugin
        if not plugin:
            raise invalid("provider_id", "this lab has no connector plugin to send orders through", "no_connector")
        if not runtime.is_enabled(clinic_id, plugin):
            raise invalid("provider_id", f"the lab's connector plugin {plugin!r} is not enabled in this clinic",
                          "plugin_disabled")
        patient = session.get(Patient, patient_id)
        if patient is None or patient.clinic_id != clinic_id or patient.status != "active":
            raise invalid("patient_id", "no active patient with this id in the clinic", "unknown_patient")
        doctor = session.get(User, doctor_id) if doctor_id is not None else None
        if doctor_id is not None and doctor is None:
            raise invalid("doctor_id", "no such user", "unknown_user")
        if appointment_id is not None:
            appt = session.get(Appointment, appointment_id)
            if appt is None or appt.clinic_id != clinic_id:
                raise invalid("appointment_id", "no such appointment in this clinic", "unknown_appointment")
        picked: list[tuple[LabTest, str | None]] = list(
            catalogue.tests_for_services(session, provider_id, service_codes))
        if service_codes and not picked:
            raise invalid("services", "none of these services maps to a test of this lab; map them first",
                          "not_mapped")
        if test_codes:
            known = {t.code: t for t in session.exec(select(LabTest).where(
                LabTest.provider_id == provider_id, col(LabTest.code).in_(test_codes), col(LabTest.active).is_(True)))}
            missing = [c for c in test_codes if c not in known]
            if missing:
                raise invalid("tests", f"not in this lab's active catalogue: {', '.join(missing)}", "unknown_test")
            have = {t.code for t, _ in picked}
            picked += [(known[c], None) for c in test_codes if c not in have]
        at = now()
        order = LabOrder(clinic_id=clinic_id, provider_id=provider_id, patient_id=patient_id, doctor_id=doctor_id,
                         appointment_id=appointment_id, placer_order_number=f"tmp-{uuid.uuid4().hex}",
                         source=source or ("services" if service_codes else "manual"), notes=notes, placed_at=at,
                         created_by=actor.id, updated_at=at)
        session.add(order)
        session.flush()
        assert order.id is not None
        order.placer_order_number = placer_number(clinic_id, order.id)
        lines = [LabOrderLine(order_id=order.id, test_id=t.id, test_code=t.code, test_name=t.name,
                              coding_system=t.coding_system, service_code=service) for t, service in picked]
        session.add_all(lines)
        specimens = []
        for kind in sorted({t.specimen_type or "SER" for t, _ in picked}):
            specimen = Specimen(clinic_id=clinic_id, order_id=order.id, accession_number=f"tmp-{uuid.uuid4().hex}",
                                barcode_value="", specimen_type=kind, collected_at=collected_at)
            session.add(specimen)
            session.flush()
            assert specimen.id is not None
            specimen.accession_number = specimen.barcode_value = accession_number(clinic_id, specimen.id)
            specimens.append(specimen)
        sdk_order = _sdk_order(order, patient, doctor, lines, specimens, provider.code, "new", at)
        order.outbox_item_id = enqueue(session, plugin=plugin, topic=LAB_ORDER_TOPIC, payload=sdk_order.to_payload(),
                                       clinic_id=clinic_id, dedupe_key=f"lab.order:{clinic_id}:{order.id}")
        session.add(order)
        session.flush()
        audit.record(session, actor, "labs.order_placed", clinic_id=clinic_id, target=f"lab_order:{order.id}",
                     data={"placer_order_number": order.placer_order_number, "provider_id": provider_id,
                           "patient_id": str(patient_id), "tests": [line.test_code for line in lines],
                           "source": order.source})
        return order_dict(session, order)


def _sdk_order(order: LabOrder, patient: Patient, doctor: User | None, lines: list[LabOrderLine],
               specimens: list[Specimen], lab_code: str | None, action: str, at: datetime) -> SdkLabOrder:
    return SdkLabOrder(
        placer_order_number=order.placer_order_number,
        patient={"id": str(patient.id), "chart_number": patient.chart_number, "family_name": patient.family_name,
                 "given_name": patient.given_name,
                 "birth_date": patient.birth_date.isoformat() if patient.birth_date else None, "sex": patient.sex},
        tests=tuple({"code": line.test_code, "name": line.test_name, "coding_system": line.coding_system}
                    for line in lines),
        ordered_at=order.placed_at if action == "new" else at,
        idempotency_key="",  # the outbox item's id, filled in by the plugin's handler
        ordering_provider={"id": str(doctor.id), "name": doctor.name} if doctor is not None else {},
        specimens=tuple({"accession_number": s.accession_number, "type": s.specimen_type,
                         "collected_at": s.collected_at.isoformat() if s.collected_at else None} for s in specimens),
        action=action, lab_code=lab_code,
        visit_number=str(order.appointment_id) if order.appointment_id is not None else None,
    )


# --- reading --------------------------------------------------------------------------------------------


def get_order(session: Session, clinic_id: int, order_id: int) -> LabOrder:
    order = session.get(LabOrder, order_id)
    if order is None or order.clinic_id != clinic_id:
        raise NotFound(f"lab order {order_id} not found in this clinic")
    return order


def order_dict(session: Session, order: LabOrder, *, with_results: bool = True) -> dict[str, Any]:
    lines = list(session.exec(select(LabOrderLine).where(LabOrderLine.order_id == order.id)
                              .order_by(col(LabOrderLine.id))))
    specimens = list(session.exec(select(Specimen).where(Specimen.order_id == order.id).order_by(col(Specimen.id))))
    out: dict[str, Any] = {
        "id": order.id, "provider_id": order.provider_id, "patient_id": str(order.patient_id),
        "doctor_id": order.doctor_id, "appointment_id": order.appointment_id,
        "placer_order_number": order.placer_order_number, "filler_order_number": order.filler_order_number,
        "source": order.source, "status": order.status, "status_reason": order.status_reason,
        "outbox_item_id": str(order.outbox_item_id) if order.outbox_item_id else None, "ack_id": order.ack_id,
        "notes": order.notes, "placed_at": order.placed_at.isoformat(),
        "acknowledged_at": order.acknowledged_at.isoformat() if order.acknowledged_at else None,
        "completed_at": order.completed_at.isoformat() if order.completed_at else None,
        "cancelled_at": order.cancelled_at.isoformat() if order.cancelled_at else None,
        "lines": [{"id": ln.id, "test_code": ln.test_code, "test_name": ln.test_name, "service_code": ln.service_code}
                  for ln in lines],
        "specimens": [specimen_dict(s) for s in specimens],
    }
    if with_results:
        from core.labs.results import result_dict

        results = session.exec(select(LabResult).where(LabResult.order_id == order.id).order_by(col(LabResult.id)))
        out["results"] = [result_dict(r) for r in results]
    return out


def specimen_dict(specimen: Specimen) -> dict[str, Any]:
    return {"id": specimen.id, "order_id": specimen.order_id, "accession_number": specimen.accession_number,
            "barcode_value": specimen.barcode_value, "specimen_type": specimen.specimen_type,
            "collected_at": specimen.collected_at.isoformat() if specimen.collected_at else None,
            "label_printed_at": specimen.label_printed_at.isoformat() if specimen.label_printed_at else None}


def list_orders(session: Session, clinic_id: int, *, patient_id: uuid.UUID | None = None,
                appointment_id: int | None = None, status: str | None = None, limit: int = 100,
                offset: int = 0) -> list[dict[str, Any]]:
    query = select(LabOrder).where(LabOrder.clinic_id == clinic_id)
    if patient_id is not None:
        query = query.where(LabOrder.patient_id == patient_id)
    if appointment_id is not None:
        query = query.where(LabOrder.appointment_id == appointment_id)
    if status is not None:
        query = query.where(LabOrder.status == status)
    orders = session.exec(query.order_by(col(LabOrder.placed_at).desc(), col(LabOrder.id).desc())
                          .offset(offset).limit(limit))
    return [order_dict(session, o, with_results=False) for o in orders]


# --- cancelling -----------------------------------------------------------------------------------------


def cancel_order(engine: Engine, clinic_id: int, order_id: int, actor: audit.Actor, *, reason: str = "") -> dict:
    """Cancel an order. Not yet handed to the lab: its delivery is withdrawn and nothing is sent. Otherwise a
    cancel message follows the order to the lab (HL7 ORC-1 CA, FHIR status revoked)."""
    if len(reason) > 1000:
        raise invalid("reason", "at most 1000 characters")
    with transaction(engine) as session:
        order = session.exec(select(LabOrder).where(LabOrder.id == order_id).with_for_update()).first()
        if order is None or order.clinic_id != clinic_id:
            raise NotFound(f"lab order {order_id} not found in this clinic")
        if order.status not in OPEN_STATUSES:
            raise Conflict(f"the order is {order.status} and cannot be cancelled", status=order.status)
        if order.status == OrderStatus.partial or session.exec(
                select(LabResult.id).where(LabResult.order_id == order.id)).first():
            raise Conflict("the lab has already reported results for this order", status=order.status)
        at = now()
        notify_lab = True
        if order.outbox_item_id is not None:
            withdrawn = session.execute(
                update(OutboxItem)
                .where(col(OutboxItem.id) == order.outbox_item_id, col(OutboxItem.status) == OutboxStatus.pending,
                       or_(col(OutboxItem.locked_until).is_(None), col(OutboxItem.locked_until) < at))
                .values(status=OutboxStatus.done, finished_at=at, result={"withdrawn": "order cancelled"})
                .returning(col(OutboxItem.attempts))
            ).first()
            if withdrawn is not None and withdrawn[0] == 0:
                notify_lab = False  # never attempted: the lab cannot know the order
            item = session.get(OutboxItem, order.outbox_item_id)
            if item is not None and item.status == OutboxStatus.dead:
                notify_lab = False
        if notify_lab:
            provider = catalogue.get_provider(session, clinic_id, order.provider_id)
            patient = session.get(Patient, order.patient_id)
            assert patient is not None
            doctor = session.get(User, order.doctor_id) if order.doctor_id is not None else None
            lines = list(session.exec(select(LabOrderLine).where(LabOrderLine.order_id == order.id)))
            specimens = list(session.exec(select(Specimen).where(Specimen.order_id == order.id)))
            item = session.get(OutboxItem, order.outbox_item_id) if order.outbox_item_id else None
            in_flight = item is not None and item.status == OutboxStatus.pending
            payload = _sdk_order(order, patient, doctor, lines, specimens, provider.code, "cancel", at).to_payload()
            order.cancel_item_id = enqueue(
                session, plugin=provider.connector_plugin or "", topic=LAB_ORDER_TOPIC, payload=payload,
                clinic_id=clinic_id, dedupe_key=f"lab.cancel:{clinic_id}:{order.id}",
                available_at=at + CANCEL_DELAY if in_flight else at)
        before = order.status
        order.status, order.status_reason = OrderStatus.cancelled, reason or None
        order.cancelled_at = order.updated_at = at
        session.add(order)
        session.flush()
        audit.record(session, actor, "labs.order_cancelled", clinic_id=clinic_id, target=f"lab_order:{order.id}",
                     data={"before": before, "reason": reason, "lab_notified": notify_lab})
        return order_dict(session, order)


# --- keeping the status in step with the outbox -----------------------------------------------------------


def reconcile(session: Session, clinic_id: int, plugin: str | None = None) -> int:
    """Bring placed/sent orders in line with their delivery: done -> acknowledged (with the lab's id and filler
    order number), dead -> rejected (with the reason), attempted -> sent. Returns orders changed."""
    query = (select(LabOrder, OutboxItem).join(OutboxItem, col(OutboxItem.id) == col(LabOrder.outbox_item_id))
             .where(LabOrder.clinic_id == clinic_id,
                    col(LabOrder.status).in_([OrderStatus.placed, OrderStatus.sent])))
    if plugin is not None:
        query = query.where(OutboxItem.plugin == plugin)
    changed = 0
    at = now()
    for order, item in session.exec(query).all():
        status = order.status
        if item.status == OutboxStatus.done:
            result = item.result or {}
            order.status, order.acknowledged_at = OrderStatus.acknowledged, item.finished_at or at
            order.ack_id = str(result.get("ack_id"))[:100] if result.get("ack_id") else order.ack_id
            filler = result.get("filler_order_number")
            if filler and not order.filler_order_number:
                order.filler_order_number = str(filler)[:60]
        elif item.status == OutboxStatus.dead:
            order.status, order.status_reason = OrderStatus.rejected, (item.last_error or "delivery failed")[:1000]
        elif item.attempts > 0 and status == OrderStatus.placed:
            order.status = OrderStatus.sent
            if item.status == OutboxStatus.unknown:
                order.status_reason = "the lab may or may not have received the order; see the outbox"
        if order.status != status:
            order.updated_at = at
            session.add(order)
            changed += 1
            audit.record(session, audit.Actor.system("labs"), "labs.order_status", clinic_id=clinic_id,
                         target=f"lab_order:{order.id}",
                         data={"before": status, "after": order.status, "reason": order.status_reason})
    return changed
