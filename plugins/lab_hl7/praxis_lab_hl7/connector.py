"""The ``LabConnector``: ORM^O01 out over MLLP, results from the inbox the listener fills (and from a QRY^R02 query).

Outcomes of sending an order:

* ``AA`` (or ``CA``): accepted. The lab's filler order number (ORC-3 of an ORR^O02) is the acknowledgement id, else
  our control id.
* ``AE``: the lab refused the content (e.g. an unknown test code): ``PermanentError`` with the lab's reason.
* ``AR``: rejected: ``PermanentError``, except with ERR-3 206 (record locked) or 207 (internal error), which HL7
  table 0357 defines as the receiver's own trouble: ``RetryableError``.
* No connection, no answer in time, a broken connection, a garbled answer or an ACK for another message:
  ``RetryableError``. The lab drops a resend with the same MSH-10, so trying again never makes a second order.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from plugin_sdk import PermanentError, PluginContext, RetryableError
from plugin_sdk.providers import LabConnector, LabOrder, LabResult
from praxis_lab_hl7 import store
from praxis_lab_hl7.messages import (
    TRANSIENT_ERRORS,
    Hl7Reject,
    build_order,
    build_query,
    control_id,
    parse_answer,
    parse_results,
    to_lab_results,
)
from praxis_lab_hl7.mllp import MllpError, exchange
from praxis_lab_hl7.settings import Hl7Settings

log = logging.getLogger(__name__)
RECEIPT_PREFIX = "hl7:"


@dataclass(frozen=True)
class Delivery:
    ack_id: str
    filler_order_number: str | None
    ack_code: str


def zone_of(ctx: PluginContext) -> ZoneInfo:
    try:
        return ZoneInfo(ctx.clinic.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _settings(ctx: PluginContext) -> Hl7Settings:
    settings = ctx.settings
    if not isinstance(settings, Hl7Settings):
        raise PermanentError("the HL7 connector is not configured for this clinic", code="not_configured")
    return settings


def _talk(settings: Hl7Settings, message: str) -> str:
    try:
        return exchange(settings.host, settings.port, message, settings.timeout_seconds)
    except MllpError as exc:
        raise RetryableError(f"lab {settings.host}:{settings.port}: {exc}", code=exc.code) from exc


class Hl7Connector(LabConnector):
    def deliver(self, ctx: PluginContext, order: LabOrder) -> Delivery:
        settings = _settings(ctx)
        control = control_id(order.idempotency_key)
        sending = (settings.sending_application, settings.sending_facility)
        receiving = (settings.receiving_application, settings.receiving_facility)
        raw = _talk(settings, build_order(order, sending=sending, receiving=receiving, control=control,
                                          at=ctx.now(), processing_id=settings.processing_id))
        try:
            answer = parse_answer(raw)
        except ValueError as exc:
            raise RetryableError(f"the lab's answer is not an HL7 acknowledgement: {exc}", code="bad_ack") from exc
        if answer.control_id != control:
            raise RetryableError(f"the lab acknowledged message {answer.control_id!r}, not ours ({control})",
                                 code="ack_mismatch")
        if answer.code in ("AA", "CA"):
            filler = answer.filler_order_number
            with ctx.session() as session:
                store.record_order(session, ctx.clinic.id, order.placer_order_number, order.action, control, filler,
                                   answer.code, ctx.now())
            return Delivery(filler or control, filler, answer.code)
        code = f"{answer.code}-{answer.error_code}" if answer.error_code else answer.code or "no_msa"
        reason = answer.text or "no reason given"
        if answer.code in ("AR", "CR") and answer.error_code in TRANSIENT_ERRORS:
            raise RetryableError(f"the lab cannot take the order now ({code}): {reason}", code=code)
        verb = "refused" if answer.code in ("AE", "CE") else "rejected"
        raise PermanentError(f"the lab {verb} the order ({code}): {reason}", code=code)

    def send_order(self, ctx: PluginContext, order: LabOrder) -> str:
        return self.deliver(ctx, order).ack_id

    # --- results -------------------------------------------------------------------------------------------

    def fetch_results(self, ctx: PluginContext) -> list[LabResult]:
        """Results received and not yet confirmed by the core. With ``results_query`` the lab is first asked for
        results it could not push; if it cannot be reached, what the listener received is still handed out, and
        the error is raised only when there is nothing to hand out."""
        settings = _settings(ctx)
        failure: Exception | None = None
        if settings.results_query:
            try:
                self.query(ctx)
            except (RetryableError, PermanentError) as exc:
                failure = exc
                log.warning("clinic %s: asking the lab for results failed: %s", ctx.clinic.id, exc)
        with ctx.session() as session:
            rows = store.hand_out(session, ctx.clinic.id, ctx.now())
        if not rows and failure is not None:
            raise failure
        results: list[LabResult] = []
        for row in rows:
            receipt = f"{RECEIPT_PREFIX}{row['id']}"
            for group in row["results"]:
                results += to_lab_results(group["placer_order_number"], group.get("filler_order_number"),
                                          group["results"], receipt)
        return results

    def confirm_results(self, ctx: PluginContext, receipts: list[str]) -> None:
        ids = [int(r[len(RECEIPT_PREFIX):]) for r in receipts if r.startswith(RECEIPT_PREFIX)
               and r[len(RECEIPT_PREFIX):].isdigit()]
        with ctx.session() as session:
            store.confirm(session, ctx.clinic.id, ids, ctx.now())

    def query(self, ctx: PluginContext) -> int:
        """Ask the lab (QRY^R02) for results not delivered yet; store each order group of the ORF^R04 answer in
        the inbox. Returns the groups stored."""
        settings = _settings(ctx)
        control = control_id(f"query:{uuid.uuid4()}")
        sending = (settings.sending_application, settings.sending_facility)
        receiving = (settings.receiving_application, settings.receiving_facility)
        raw = _talk(settings, build_query(sending=sending, receiving=receiving, control=control, at=ctx.now(),
                                          processing_id=settings.processing_id))
        try:
            answer = parse_answer(raw)
        except ValueError as exc:
            raise RetryableError(f"the lab's answer to the query is not HL7: {exc}", code="bad_answer") from exc
        if answer.control_id != control:
            raise RetryableError(f"the lab answered message {answer.control_id!r}, not our query ({control})",
                                 code="ack_mismatch")
        if answer.code not in ("AA", "CA"):
            raise PermanentError(f"the lab refused the result query ({answer.code} {answer.error_code}): "
                                 f"{answer.text or 'no reason'}; turn off 'Ask the lab for results' if it does not "
                                 f"answer queries", code=f"query_{answer.code}")
        if answer.message_type.split("^")[0] == "ACK":
            return 0  # nothing waiting
        try:
            parsed = parse_results(raw, zone_of(ctx), expect=("ORF^R04",))
        except Hl7Reject as exc:
            raise PermanentError(f"the lab's query answer is malformed: {exc.reason}", code="bad_answer") from exc
        stored = 0
        with ctx.session() as session:
            for i, group in enumerate(parsed.groups):
                row = store.add_message(session, ctx.clinic.id, f"{parsed.control_id}:{i}", "query", raw,
                                        [_group_json(group)], ctx.now())
                stored += row is not None
        return stored


def _group_json(group: Any) -> dict[str, Any]:
    return {"placer_order_number": group.placer_order_number, "filler_order_number": group.filler_order_number,
            "results": group.results}
