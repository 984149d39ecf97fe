"""FHIR R4 lab connector: the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from plugin_sdk import (
    N_,
    Category,
    ConnectionCheck,
    FieldError,
    OutboxMessage,
    PeriodicJob,
    PermanentError,
    PluginContext,
    PluginError,
    PluginManifest,
    hookimpl,
)
from plugin_sdk.providers import LAB_ORDER_TOPIC, LAB_POLL_TOPIC, LabConnector, LabOrder
from praxis_lab_fhir import __version__
from praxis_lab_fhir.connector import FhirConnector
from praxis_lab_fhir.settings import FhirSettings

manifest = PluginManifest(
    name="lab_fhir",
    version=__version__,
    title=N_("Lab orders over FHIR R4"),
    description=N_("Sends lab orders to the lab's FHIR R4 server as ServiceRequest and Specimen resources and "
                   "polls it for DiagnosticReport and Observation results."),
    category=Category.lab,
    api=">=1.0,<2",
    settings=FhirSettings,
    handles_patient_data=True,
)

CONNECTOR = FhirConnector()
POLL_EVERY = timedelta(minutes=2)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@hookimpl
def praxis_lab_connectors() -> list[LabConnector]:
    return [CONNECTOR]


@hookimpl
def praxis_outbox_handlers() -> dict[str, Any]:
    return {LAB_ORDER_TOPIC: send_order}


def send_order(ctx: PluginContext, message: OutboxMessage) -> dict[str, Any]:
    """Outbox handler of ``lab.order``; the item's id is the Bundle identifier, and every resource is a conditional
    create, so a retry never duplicates the order. Then the core is asked to poll (it records the new status)."""
    order = LabOrder.from_payload(message.payload, message.idempotency_key)
    try:
        ack = CONNECTOR.send_order(ctx, order)
    except PermanentError:
        ctx.enqueue(LAB_POLL_TOPIC, {}, dedupe_key=f"after:{message.id}")
        raise
    ctx.enqueue(LAB_POLL_TOPIC, {}, dedupe_key=f"after:{message.id}")
    return {"ack_id": ack, "action": order.action}


def poll_lab(ctx: PluginContext) -> None:
    """Periodic: have the core poll the lab's FHIR server for new reports."""
    slot = int(ctx.now().timestamp() // POLL_EVERY.total_seconds())
    ctx.enqueue(LAB_POLL_TOPIC, {}, dedupe_key=f"poll:{slot}")


@hookimpl
def praxis_periodic_jobs() -> list[PeriodicJob]:
    return [PeriodicJob("poll_results", poll_lab, every=POLL_EVERY)]


@hookimpl
def praxis_migrations_dir() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def praxis_validate_settings(settings: FhirSettings) -> list[FieldError]:
    errors = []
    host = urlsplit(settings.base_url).hostname or ""
    if settings.base_url.startswith("http://") and host not in LOCAL_HOSTS:
        errors.append(FieldError("base_url", "use https:// (plain http only for a server on this machine)",
                                 "insecure_endpoint"))
    if (settings.printer_host is None) != (settings.printer_port is None):
        errors.append(FieldError("printer_port" if settings.printer_host else "printer_host",
                                 "give the label printer's host and port together", "required"))
    return errors


@hookimpl
def praxis_test_connection(settings: FhirSettings) -> ConnectionCheck:
    """Read the server's CapabilityStatement (``GET /metadata``) with the settings being edited."""
    try:
        with CONNECTOR.client(settings) as client:
            statement = client.request("GET", "/metadata")
    except PluginError as exc:
        return ConnectionCheck(False, f"the FHIR server did not answer as expected: {exc}",
                               {"code": getattr(exc, "code", None)})
    version = statement.get("fhirVersion") if isinstance(statement, dict) else None
    if not str(version or "").startswith("4."):
        return ConnectionCheck(False, f"the server speaks FHIR {version!r}, not R4", {"fhirVersion": version})
    return ConnectionCheck(True, f"connected: FHIR {version}", {"fhirVersion": version})
