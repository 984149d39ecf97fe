"""Certificate signing: the plugin module Praxis loads through the ``praxis.plugins`` entry point."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from plugin_sdk import N_, Category, ConnectionCheck, PluginContext, PluginError, PluginManifest, hookimpl
from plugin_sdk.providers import SigningProvider
from praxis_signing_certificate import __version__, cms, tsa
from praxis_signing_certificate.provider import CertificateSigningProvider
from praxis_signing_certificate.settings import Settings

manifest = PluginManifest(
    name="signing_certificate",
    version=__version__,
    title=N_("Certificate signing with time-stamps"),
    description=N_("Doctors sign clinical records with their own certificate (a PKCS#12 file, e.g. from KICA): "
                   "CMS signatures with an RFC 3161 time-stamp, verified against the clinic's trusted roots."),
    category=Category.signing,
    api=">=1.0,<2",
    settings=Settings,
)

PROVIDER = CertificateSigningProvider()


@hookimpl
def praxis_signing_providers() -> list[SigningProvider]:
    return [PROVIDER]


@hookimpl
def praxis_migrations_dir() -> Path:
    return Path(__file__).parent / "migrations" / "versions"


@hookimpl
def praxis_test_connection(ctx: PluginContext, settings: Settings) -> ConnectionCheck:
    """Ask the TSA for a time-stamp over random bytes and check the answer; read the trusted roots."""
    if not settings.tsa_url:
        return ConnectionCheck(False, "set the time-stamp authority's address (tsa_url)", {"code": "not_configured"})
    try:
        roots = cms.load_roots(settings.trusted_roots_pem)
        stamp = tsa.stamp(settings.tsa_url, hashlib.sha256(os.urandom(16)).digest(),
                          timeout=settings.tsa_timeout_seconds, policy=settings.tsa_policy)
    except (PluginError, ValueError) as exc:
        return ConnectionCheck(False, str(exc), {"code": getattr(exc, "code", None)})
    return ConnectionCheck(True, f"the TSA answered: time-stamp {stamp.gen_time:%Y-%m-%d %H:%M:%S} UTC by "
                                 f"{stamp.tsa_subject}", {"trusted_roots": len(roots), "tsa": stamp.tsa_subject,
                                                          "policy": stamp.policy})
