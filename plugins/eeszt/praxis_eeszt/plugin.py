"""The EESZT plugin's manifest and hook implementations (the ``praxis.plugins`` entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter

from plugin_sdk import (
    N_,
    Category,
    ConnectionCheck,
    DomainEvent,
    EventName,
    FieldError,
    Panel,
    PermissionSpec,
    PluginContext,
    PluginManifest,
    hookimpl,
)
from praxis_eeszt import __version__, service
from praxis_eeszt.certificate import CertificateError
from praxis_eeszt.client import EesztLoginRequired, EesztRefused, EesztUnavailable
from praxis_eeszt.i18n import LOCALE_DIR
from praxis_eeszt.panels import PATIENT_PANELS, VISIT_PANELS
from praxis_eeszt.settings import EesztSettings

manifest = PluginManifest(
    name="eeszt",
    version=__version__,
    title=N_("EESZT"),
    description=N_("Hungary's national e-health service: visits reported to the event catalogue with their "
                   "outpatient report, the patient's EHR documents with break-glass, eProfile and e-referrals."),
    category=Category.country,
    countries=("HU",),
    requires={"hungary": ">=1.0,<2"},
    api=">=1.0,<2",
    settings=EesztSettings,
    handles_patient_data=True,
    permissions=(
        PermissionSpec(code="eeszt.use", title=N_("Work with EESZT (documents, eProfile, e-referrals)")),
        PermissionSpec(code="eeszt.break_glass", title=N_("Open a patient's restricted EESZT documents "
                                                          "(break-glass)")),
        PermissionSpec(code="eeszt.manage", title=N_("Set up EESZT (certificate, stamp numbers, sync backlog)")),
    ),
)


@hookimpl
def praxis_routes() -> APIRouter:
    from praxis_eeszt.routes import router

    return router


@hookimpl
def praxis_translations_dir() -> Path:
    return LOCALE_DIR


@hookimpl
def praxis_panels(ctx: PluginContext, where: str) -> list[Panel]:
    """EESZT on the patient card (documents, eProfile, e-referrals) and the visit's sync in the appointment dialog."""
    return list(PATIENT_PANELS if where == "patient" else VISIT_PANELS if where == "visit" else ())


@hookimpl
def praxis_migrations_dir() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def praxis_validate_patient(ctx: PluginContext, patient: dict[str, Any]) -> list[FieldError]:
    """While EESZT is enabled, every patient needs a TAJ number (the hungary plugin checks its check digit)."""
    value = (patient.get("identifiers") or {}).get(service.TAJ)
    if value is None or not str(value).strip():
        return [FieldError(f"identifiers.{service.TAJ}", "TAJ number is required while EESZT is enabled",
                           "required")]
    return []


@hookimpl
def praxis_on_event(ctx: PluginContext, event: DomainEvent) -> None:
    if event.name == EventName.appointment_status_changed:
        service.on_status_changed(ctx, event)


@hookimpl
def praxis_outbox_handlers() -> dict[str, Any]:
    return {service.OPEN: service.tracked(service.handle_open),
            service.CLOSE: service.tracked(service.handle_close),
            service.REPORT: service.tracked(service.handle_report)}


@hookimpl
def praxis_test_connection(ctx: PluginContext, settings: EesztSettings) -> ConnectionCheck:
    """Check the certificate (readable, key matches, valid now) and that EESZT accepts it."""
    if settings.missing():
        return ConnectionCheck(False, "Fill in: " + ", ".join(settings.missing()), {"missing": settings.missing()})
    try:
        certificate = service.certificate_of(settings)
    except CertificateError as exc:
        return ConnectionCheck(False, f"The certificate cannot be used: {exc}", {"code": exc.code})
    details: dict[str, Any] = {"certificate": certificate.summary(ctx.now())}
    problem = certificate.problem_at(ctx.now())
    if problem:
        return ConnectionCheck(False, f"The certificate cannot be used: {problem}", details)
    try:
        answer = service.client_for(ctx, settings, certificate).ping()
    except EesztUnavailable as exc:
        return ConnectionCheck(False, f"EESZT cannot be reached: {exc.message}", {**details, "code": exc.code})
    except (EesztRefused, EesztLoginRequired) as exc:
        return ConnectionCheck(False, f"EESZT refused the certificate: {exc.message}", {**details, "code": exc.code})
    return ConnectionCheck(True, f"Connected to EESZT as institution {answer.get('institution')}",
                           {**details, "eeszt": answer})
