"""HL7 v2.5 lab connector: the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from plugin_sdk import (
    N_,
    Category,
    ConnectionCheck,
    FieldError,
    OutboxMessage,
    PeriodicJob,
    PermanentError,
    PluginContext,
    PluginManifest,
    hookimpl,
)
from plugin_sdk.providers import LAB_ORDER_TOPIC, LAB_POLL_TOPIC, LabConnector, LabOrder
from praxis_lab_hl7 import __version__, store
from praxis_lab_hl7.connector import Hl7Connector
from praxis_lab_hl7.listener import LISTENERS
from praxis_lab_hl7.settings import Hl7Settings

manifest = PluginManifest(
    name="lab_hl7",
    version=__version__,
    title=N_("Lab orders over HL7 v2 (MLLP)"),
    description=N_("Sends lab orders as HL7 v2.5 ORM^O01 messages over MLLP and receives ORU^R01 results on a "
                   "listener of its own."),
    category=Category.lab,
    api=">=1.0,<2",
    settings=Hl7Settings,
    handles_patient_data=True,  # orders carry the patient's name, birth date and chart number
)

CONNECTOR = Hl7Connector()
LISTENER_EVERY = timedelta(seconds=30)
POLL_EVERY = timedelta(minutes=5)


@hookimpl
def praxis_lab_connectors() -> list[LabConnector]:
    return [CONNECTOR]


@hookimpl
def praxis_outbox_handlers() -> dict[str, Any]:
    return {LAB_ORDER_TOPIC: send_order}


def send_order(ctx: PluginContext, message: OutboxMessage) -> dict[str, Any]:
    """Outbox handler of ``lab.order``; the item's id is the idempotency key (MSH-10 derives from it). After the
    lab answered, the core is asked to poll, which also records the order's new status."""
    order = LabOrder.from_payload(message.payload, message.idempotency_key)
    try:
        delivery = CONNECTOR.deliver(ctx, order)
    except PermanentError:
        ctx.enqueue(LAB_POLL_TOPIC, {}, dedupe_key=f"after:{message.id}")
        raise
    ctx.enqueue(LAB_POLL_TOPIC, {}, dedupe_key=f"after:{message.id}")
    return {"ack_id": delivery.ack_id, "filler_order_number": delivery.filler_order_number,
            "ack_code": delivery.ack_code, "action": order.action}


def ensure_listener(ctx: PluginContext) -> None:
    """Periodic: keep this clinic's MLLP listener running; have the core poll if received results wait."""
    state = LISTENERS.ensure(ctx)
    if state == "started":
        ctx.log.info("MLLP result listener started on %s:%s", *LISTENERS.get(ctx.clinic.id).address)  # type: ignore[union-attr]
    with ctx.session() as session:
        waiting = store.pending_count(session, ctx.clinic.id)
    if waiting:
        slot = int(ctx.now().timestamp() // LISTENER_EVERY.total_seconds())
        ctx.enqueue(LAB_POLL_TOPIC, {}, dedupe_key=f"waiting:{slot}")


def poll_lab(ctx: PluginContext) -> None:
    """Periodic: have the core poll (it asks the lab for results not pushed and updates order statuses)."""
    slot = int(ctx.now().timestamp() // POLL_EVERY.total_seconds())
    ctx.enqueue(LAB_POLL_TOPIC, {}, dedupe_key=f"poll:{slot}")


@hookimpl
def praxis_periodic_jobs() -> list[PeriodicJob]:
    return [PeriodicJob("mllp_listener", ensure_listener, every=LISTENER_EVERY),
            PeriodicJob("poll_results", poll_lab, every=POLL_EVERY)]


@hookimpl
def praxis_migrations_dir() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def praxis_plugin_disabled(ctx: PluginContext) -> None:
    LISTENERS.stop(ctx.clinic.id)


@hookimpl
def praxis_validate_settings(settings: Hl7Settings) -> list[FieldError]:
    errors = []
    if (settings.printer_host is None) != (settings.printer_port is None):
        errors.append(FieldError("printer_port" if settings.printer_host else "printer_host",
                                 "give the label printer's host and port together", "required"))
    if settings.listener_port is not None and settings.listener_port == settings.port \
            and settings.host in ("127.0.0.1", "localhost", "::1"):
        errors.append(FieldError("listener_port", "the listener cannot use the lab's own port on this machine",
                                 "port_clash"))
    return errors


@hookimpl
def praxis_test_connection(settings: Hl7Settings) -> ConnectionCheck:
    """Open a TCP connection to the lab's MLLP port (no message is sent)."""
    try:
        with socket.create_connection((settings.host, settings.port), timeout=min(settings.timeout_seconds, 10)):
            pass
    except OSError as exc:
        return ConnectionCheck(False, f"cannot reach the lab at {settings.host}:{settings.port}: {exc}",
                               {"code": "unreachable"})
    return ConnectionCheck(True, f"the lab's MLLP port {settings.host}:{settings.port} accepts connections",
                           {"host": settings.host, "port": settings.port})
