"""Storing results a lab connector brought back, and reading them for the patient card.

Results are correlated with the order on the placer order number (the filler order number when the lab sends
only its own). A lab message (results sharing a ``receipt``) is stored whole or not at all: each message goes in
its own savepoint, and a message naming an unknown order or contradicting the order's filler number is refused
as a whole, with the reason in the audit journal.

One row per (order, test): a newer version (preliminary -> final -> corrected) replaces the values and the old
ones go to ``LabResultRevision``; a repeat of what is stored changes nothing, and an older status arriving late
(a preliminary after the final) is ignored. When an order becomes final, or a final order gets a correction,
``lab.result_ready`` is emitted (a domain event for plugins, and a ``core.messaging.event`` item for the messaging
rules: "your results are ready").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from core import audit, events
from core.clock import now
from core.messaging.delivery import EVENT_TOPIC as MESSAGING_EVENT_TOPIC
from core.models.labs import LabOrder, LabOrderLine, LabResult, LabResultRevision, OrderStatus, ResultStatus
from core.outbox import core_handlers
from core.outbox.queue import enqueue
from plugin_sdk.providers import LabResult as SdkLabResult

if TYPE_CHECKING:
    from core.plugins.runtime import PluginRuntime

RESULT_READY = "lab.result_ready"
RANK = {ResultStatus.preliminary: 0, ResultStatus.final: 1, ResultStatus.corrected: 2}
NORMAL_FLAGS = {"", "N"}
ACTOR = audit.Actor.system("labs")


class Refused(Exception):
    """A lab message that cannot be stored; nothing of it is."""


@dataclass
class StoreReport:
    stored: list[str] = field(default_factory=list)  # receipts stored (or already stored)
    refused: dict[str, str] = field(default_factory=dict)  # receipt -> reason
    changed: int = 0  # results added or changed
    events: int = 0

    @property
    def receipts(self) -> list[str]:
        return [*self.stored, *self.refused]


def is_abnormal(flag: str | None) -> bool:
    return (flag or "").strip().upper() not in NORMAL_FLAGS


def result_dict(result: LabResult) -> dict[str, Any]:
    return {"id": result.id, "order_id": result.order_id, "patient_id": str(result.patient_id),
            "test_code": result.test_code, "test_name": result.test_name, "value": result.value,
            "value_type": result.value_type, "units": result.units, "reference_range": result.reference_range,
            "abnormal_flag": result.abnormal_flag, "abnormal": result.abnormal, "status": result.status,
            "notes": result.notes, "observed_at": result.observed_at.isoformat() if result.observed_at else None,
            "received_at": result.received_at.isoformat(), "version": result.version}


def store_results(session: Session, runtime: PluginRuntime, clinic_id: int, results: Iterable[SdkLabResult],
                  *, source: str) -> StoreReport:
    """Store what a connector fetched, one lab message at a time, in the caller's transaction."""
    groups: dict[str, list[SdkLabResult]] = {}
    for result in results:
        key = result.receipt or f"placer:{result.placer_order_number}"
        groups.setdefault(key, []).append(result)
    report = StoreReport()
    for receipt, items in groups.items():
        savepoint = session.begin_nested()
        try:
            changed, emitted = _store_message(session, runtime, clinic_id, receipt, items)
        except Refused as exc:
            savepoint.rollback()
            report.refused[receipt] = str(exc)
            audit.record(session, ACTOR, "labs.results_refused", clinic_id=clinic_id, target=f"lab_message:{receipt}",
                         data={"source": source, "reason": str(exc), "results": len(items),
                               "placer_order_numbers": sorted({r.placer_order_number for r in items})})
            continue
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()
        report.stored.append(receipt)
        report.changed += changed
        report.events += emitted
    return report


def _check(result: SdkLabResult) -> None:
    if result.status not in RANK:
        raise Refused(f"result {result.test_code!r} has an unknown status {result.status!r}")
    if not result.test_code or len(result.test_code) > 50:
        raise Refused("a result without a usable test code")
    if result.observed_at is not None and result.observed_at.tzinfo is None:
        raise Refused(f"result {result.test_code!r}: observation time without a UTC offset")
    if len(result.value or "") > 4000:
        raise Refused(f"result {result.test_code!r}: value longer than 4000 characters")


def _order_for(session: Session, clinic_id: int, result: SdkLabResult, cache: dict[str, LabOrder]) -> LabOrder:
    key = f"{result.placer_order_number}|{result.filler_order_number}"
    if key in cache:
        return cache[key]
    order = None
    if result.placer_order_number:
        order = session.exec(select(LabOrder).where(LabOrder.clinic_id == clinic_id,
                                                    LabOrder.placer_order_number == result.placer_order_number)
                             .with_for_update()).first()
    elif result.filler_order_number:
        order = session.exec(select(LabOrder).where(LabOrder.clinic_id == clinic_id,
                                                    LabOrder.filler_order_number == result.filler_order_number)
                             .with_for_update()).first()
    if order is None:
        raise Refused(f"no order with placer number {result.placer_order_number!r} "
                      f"(filler {result.filler_order_number!r}) in this clinic")
    if result.filler_order_number and order.filler_order_number \
            and order.filler_order_number != result.filler_order_number:
        raise Refused(f"order {order.placer_order_number} has filler number {order.filler_order_number!r}, "
                      f"the lab now says {result.filler_order_number!r}")
    cache[key] = order
    return order


def _store_message(session: Session, runtime: PluginRuntime, clinic_id: int, receipt: str,
                   items: list[SdkLabResult]) -> tuple[int, int]:
    cache: dict[str, LabOrder] = {}
    touched: dict[int, dict[str, Any]] = {}
    changed = 0
    at = now()
    for item in items:
        _check(item)
        order = _order_for(session, clinic_id, item, cache)
        assert order.id is not None
        if item.filler_order_number and not order.filler_order_number:
            order.filler_order_number = item.filler_order_number[:60]
        info = touched.setdefault(order.id, {"order": order, "corrected": False, "abnormal": False, "tests": []})
        existing = session.exec(select(LabResult).where(LabResult.order_id == order.id,
                                                        LabResult.test_code == item.test_code)).first()
        values = {"value": item.value or "", "units": item.units, "reference_range": item.reference_range,
                  "abnormal_flag": item.abnormal_flag, "status": item.status, "observed_at": item.observed_at}
        if existing is None:
            session.add(LabResult(clinic_id=clinic_id, order_id=order.id, patient_id=order.patient_id,
                                  test_code=item.test_code, test_name=item.test_name, value_type=item.value_type,
                                  abnormal=is_abnormal(item.abnormal_flag), notes=item.notes, received_at=at,
                                  receipt=receipt[:200], **values))
        else:
            same = all(getattr(existing, k) == v for k, v in values.items())
            if same or RANK[ResultStatus(item.status)] < RANK[ResultStatus(existing.status)]:
                continue  # a repeat, or an older version arriving late
            assert existing.id is not None
            session.add(LabResultRevision(
                result_id=existing.id, version=existing.version, value=existing.value, units=existing.units,
                reference_range=existing.reference_range, abnormal_flag=existing.abnormal_flag,
                status=existing.status, observed_at=existing.observed_at, received_at=existing.received_at,
                replaced_at=at))
            for key, value in values.items():
                setattr(existing, key, value)
            existing.abnormal = is_abnormal(item.abnormal_flag)
            existing.test_name = item.test_name or existing.test_name
            existing.value_type, existing.notes = item.value_type, item.notes
            existing.received_at, existing.receipt, existing.version = at, receipt[:200], existing.version + 1
            session.add(existing)
            info["corrected"] = info["corrected"] or item.status == ResultStatus.corrected
        changed += 1
        info["abnormal"] = info["abnormal"] or is_abnormal(item.abnormal_flag)
        info["tests"].append(item.test_code)
    session.flush()
    emitted = 0
    for order_id, info in touched.items():
        emitted += _advance(session, runtime, clinic_id, info["order"], info, receipt, at)
        if info["tests"]:
            audit.record(session, ACTOR, "labs.results_received", clinic_id=clinic_id, target=f"lab_order:{order_id}",
                         data={"receipt": receipt, "tests": info["tests"], "order_status": info["order"].status})
    return changed, emitted


def _advance(session: Session, runtime: PluginRuntime, clinic_id: int, order: LabOrder, info: dict[str, Any],
             receipt: str, at: Any) -> int:
    """Move the order to partial or final; emit ``lab.result_ready`` when it becomes final or is corrected."""
    if not info["tests"]:
        return 0
    before = order.status
    if order.status not in (OrderStatus.cancelled, OrderStatus.rejected):
        ordered = set(session.exec(select(LabOrderLine.test_code).where(LabOrderLine.order_id == order.id)).all())
        done = {r.test_code: r.status for r in session.exec(select(LabResult).where(LabResult.order_id == order.id))}
        complete = all(done.get(code) in (ResultStatus.final, ResultStatus.corrected) for code in ordered)
        order.status = OrderStatus.final if complete else OrderStatus.partial
        if complete and order.completed_at is None:
            order.completed_at = at
        order.updated_at = at
        session.add(order)
    became_final = order.status == OrderStatus.final and before != OrderStatus.final
    corrected = order.status == OrderStatus.final and info["corrected"]
    if not (became_final or corrected):
        return 0
    assert order.id is not None
    abnormal = session.exec(select(LabResult.id).where(LabResult.order_id == order.id,
                                                       col(LabResult.abnormal).is_(True))).first() is not None
    data = {"order_id": order.id, "placer_order_number": order.placer_order_number,
            "patient_id": str(order.patient_id), "appointment_id": order.appointment_id,
            "provider_id": order.provider_id, "corrected": corrected and not became_final, "abnormal": abnormal,
            "receipt": receipt}
    event = events.emit(session, runtime, RESULT_READY, clinic_id=clinic_id, subject_type="lab_order",
                        subject_id=order.id, data=data)
    # The messaging rules listening to lab.result_ready ("your results are ready"), planned by the messaging engine.
    enqueue(session, plugin=core_handlers.CORE_PLUGIN, topic=MESSAGING_EVENT_TOPIC, clinic_id=clinic_id,
            payload={"event": RESULT_READY, "patient_id": str(order.patient_id), "event_id": str(event.id),
                     "appointment_id": order.appointment_id, "data": data},
            dedupe_key=f"{RESULT_READY}:{event.id}")
    return 1


def patient_results(session: Session, clinic_id: int, patient_id: uuid.UUID, *, abnormal_only: bool = False,
                    limit: int = 500) -> list[dict[str, Any]]:
    """The patient's results, newest first, with their order's placer number and each result's history."""
    query = (select(LabResult, LabOrder.placer_order_number, LabOrder.provider_id)
             .join(LabOrder, col(LabOrder.id) == col(LabResult.order_id))
             .where(LabResult.clinic_id == clinic_id, LabResult.patient_id == patient_id))
    if abnormal_only:
        query = query.where(col(LabResult.abnormal).is_(True))
    rows = session.exec(query.order_by(col(LabResult.observed_at).desc(), col(LabResult.id).desc()).limit(limit)).all()
    ids = [r.id for r, _, _ in rows if r.id is not None]
    history: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for rev in session.exec(select(LabResultRevision).where(col(LabResultRevision.result_id).in_(ids))
                                .order_by(col(LabResultRevision.version))):
            history.setdefault(rev.result_id, []).append({
                "version": rev.version, "value": rev.value, "units": rev.units,
                "reference_range": rev.reference_range, "abnormal_flag": rev.abnormal_flag, "status": rev.status,
                "observed_at": rev.observed_at.isoformat() if rev.observed_at else None,
                "replaced_at": rev.replaced_at.isoformat()})
    return [{**result_dict(r), "placer_order_number": placer, "provider_id": provider,
             "history": history.get(r.id or 0, [])} for r, placer, provider in rows]
