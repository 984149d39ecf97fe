"""Cloud e-signature: the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

from pathlib import Path

from plugin_sdk import N_, Category, ConnectionCheck, PluginContext, PluginError, PluginManifest, hookimpl
from plugin_sdk.providers import SigningProvider
from praxis_signing_cloud import __version__
from praxis_signing_cloud.client import CloudClient
from praxis_signing_cloud.provider import CloudSigningProvider
from praxis_signing_cloud.settings import Settings

manifest = PluginManifest(
    name="signing_cloud",
    version=__version__,
    title=N_("Cloud e-signature with intent check"),
    description=N_("Doctors verify their identity once and upload a personal seal; every signing of one record or "
                   "a batch is confirmed by an SMS code or a face check, then signed by the e-signature service "
                   "(e签宝-style Open API)."),
    category=Category.signing,
    countries=("CN",),
    api=">=1.0,<2",
    settings=Settings,
    handles_patient_data=False,
)

PROVIDER = CloudSigningProvider()


@hookimpl
def praxis_signing_providers() -> list[SigningProvider]:
    return [PROVIDER]


@hookimpl
def praxis_migrations_dir() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def praxis_test_connection(ctx: PluginContext, settings: Settings) -> ConnectionCheck:
    """A signed request the vendor must authenticate: an unknown intent check answers with the vendor's own
    "not found" code, which proves the address, app id and secret are right."""
    if not settings.app_id or settings.app_secret is None:
        return ConnectionCheck(False, "set app_id and app_secret", {"code": "not_configured"})
    client = CloudClient(settings.base_url, settings.app_id, settings.app_secret.get_secret_value(),
                         timeout=settings.timeout_seconds, clock_ms=lambda: int(ctx.now().timestamp() * 1000))
    try:
        with client:
            client.willingness("connection-test")
    except PluginError as exc:
        code = getattr(exc, "code", None)
        if code == "1435010":
            return ConnectionCheck(True, "the e-signature service accepted the signed request", {"code": code})
        return ConnectionCheck(False, str(exc), {"code": code})
    return ConnectionCheck(True, "the e-signature service accepted the signed request")
