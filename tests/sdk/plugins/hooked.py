"""A fixture plugin implementing the lifecycle, contribution, validation and provider hooks, recording calls."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from plugin_sdk import Category, FieldError, PermissionSpec, PluginManifest, hookimpl
from plugin_sdk.providers import (
    DeliveryStatus,
    LabConnector,
    LabOrder,
    LabResult,
    MessagingProvider,
    OutgoingMessage,
    SendResult,
    SignatureResult,
    SigningProvider,
    VerificationCheck,
    VerificationReport,
)

ASSETS = Path(__file__).with_name("hooked_assets")
CALLS: list[tuple[Any, ...]] = []
#: Set by the translations test to a folder of compiled catalogs.
TRANSLATIONS_DIR: Path | None = None


class Settings(BaseModel):
    low: int = 1
    high: int = 10


manifest = PluginManifest(
    name="hooked", version="1.0.0", title="Hooked", description="Implements many hooks for the SDK tests.",
    category=Category.other, api=">=1.0,<2", settings=Settings,
)


@hookimpl
def praxis_startup(app_name: str) -> None:
    CALLS.append(("startup", app_name))


@hookimpl
def praxis_plugin_enabled(ctx: Any) -> None:
    CALLS.append(("enabled", ctx.clinic.id, ctx.plugin))


@hookimpl
def praxis_plugin_disabled(ctx: Any) -> None:
    CALLS.append(("disabled", ctx.clinic.id, ctx.plugin))


router = APIRouter()


@router.get("/hello")
def hello(clinic_id: int) -> dict[str, Any]:
    return {"hello": "from hooked", "clinic_id": clinic_id}


@hookimpl
def praxis_routes() -> APIRouter:
    return router


@hookimpl
def praxis_templates_dir() -> Path:
    return ASSETS / "templates"


@hookimpl
def praxis_static_dir() -> Path:
    return ASSETS / "static"


@hookimpl
def praxis_translations_dir() -> Path | None:
    return TRANSLATIONS_DIR


@hookimpl
def praxis_permissions() -> list[PermissionSpec]:
    return [PermissionSpec(code="hooked.export", title="Export hooked data"),
            PermissionSpec(code="other.stolen", title="Outside the plugin's prefix")]


@hookimpl
def praxis_validate_appointment(ctx: Any, appointment: dict[str, Any], is_new: bool) -> list[FieldError]:
    CALLS.append(("validate_appointment", ctx.clinic.id, is_new))
    if appointment.get("room") == "closed":
        return [FieldError("room", "the room is closed for renovation", "room_closed")]
    return []


@hookimpl
def praxis_validate_settings(ctx: Any, settings: Settings) -> list[FieldError]:
    if settings.low > settings.high:
        return [FieldError("low", "must not be above 'high'", "range")]
    return []


class Messenger(MessagingProvider):
    channel = "email"

    def send(self, ctx: Any, message: OutgoingMessage) -> SendResult:
        return SendResult(DeliveryStatus.sent, vendor_message_id=f"m-{message.idempotency_key}")


class Signer(SigningProvider):
    def sign(self, ctx: Any, signer_id: int, documents: list[bytes]) -> list[SignatureResult]:
        return [SignatureResult(d[::-1], datetime.now(UTC), f"user {signer_id}") for d in documents]

    def verify(self, ctx: Any, document: bytes, signature: bytes) -> VerificationReport:
        ok = document[::-1] == signature
        return VerificationReport(ok, (VerificationCheck("reversed", ok, "matches" if ok else "differs"),))


class Lab(LabConnector):
    def send_order(self, ctx: Any, order: LabOrder) -> str:
        return f"ack-{order.placer_order_number}"

    def fetch_results(self, ctx: Any) -> list[LabResult]:
        return []


class BookingChannel:
    name = "hooked-portal"


@hookimpl
def praxis_messaging_providers() -> list[MessagingProvider]:
    return [Messenger()]


@hookimpl
def praxis_signing_providers() -> list[SigningProvider]:
    return [Signer()]


@hookimpl
def praxis_lab_connectors() -> list[LabConnector]:
    return [Lab()]


@hookimpl
def praxis_booking_channels() -> list[Any]:
    return [BookingChannel()]
