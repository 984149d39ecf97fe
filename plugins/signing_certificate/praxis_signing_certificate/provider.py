"""The ``SigningProvider``: each doctor signs with their own certificate, every signature time-stamped by a TSA.

No intent check: holding the login and the uploaded certificate is the signer's control (the OneClick/KICA flow),
so ``begin`` answers ``none`` (the SDK default) and signing happens in ``complete``.

Signature format: DER CMS SignedData, detached, SHA-256, the signer's certificate and chain included, and the
RFC 3161 token over the signature value embedded as the unsigned attribute ``signatureTimeStampToken``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlmodel import col, select

from plugin_sdk import PermanentError, PluginContext
from plugin_sdk.errors import FieldError, ValidationFailed
from plugin_sdk.providers import (
    EnrollmentStep,
    SignatureResult,
    SignerEnrollment,
    SigningProvider,
    VerificationCheck,
    VerificationReport,
)
from praxis_signing_certificate import cms, keystore, tsa
from praxis_signing_certificate.models import SigningKey
from praxis_signing_certificate.settings import Settings

STEP = "certificate"


def _settings(ctx: PluginContext) -> Settings:
    settings = ctx.settings
    if not isinstance(settings, Settings):
        raise PermanentError("certificate signing is not configured in this clinic", code="not_configured")
    return settings


def _missing_settings(settings: Settings) -> list[str]:
    missing = []
    if not settings.tsa_url:
        missing.append("tsa_url")
    if not settings.trusted_roots_pem.strip():
        missing.append("trusted_roots_pem")
    if settings.key_encryption_secret is None or not settings.key_encryption_secret.get_secret_value():
        missing.append("key_encryption_secret")
    return missing


def _der(cert: x509.Certificate) -> ax509.Certificate:
    return ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def chain_problem(cert: x509.Certificate, chain: list[x509.Certificate], roots: list[ax509.Certificate],
                  at: datetime) -> str | None:
    """Why the certificate does not chain to a trusted root at ``at`` (None when it does)."""
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

    context = ValidationContext(trust_roots=roots, moment=at, allow_fetching=False)
    validator = CertificateValidator(_der(cert), [_der(c) for c in chain], validation_context=context)
    try:
        cms.run_sync(validator.async_validate_usage({"digital_signature"}))
    except PathBuildingError:
        return "it is not issued by a trusted certificate authority (no path to the configured roots)"
    except PathValidationError as exc:
        return f"its certificate path is not valid: {exc}"
    except Exception as exc:  # InvalidCertificateError (key usage) and friends
        return f"it cannot be used for signing: {exc}"
    return None


class CertificateSigningProvider(SigningProvider):
    # --- enrollment -----------------------------------------------------------------------------------

    def _active(self, ctx: PluginContext, signer_id: int) -> SigningKey | None:
        with ctx.session() as session:
            return session.exec(select(SigningKey).where(
                SigningKey.clinic_id == ctx.clinic.id, SigningKey.user_id == signer_id,
                col(SigningKey.active).is_(True)).order_by(col(SigningKey.id).desc())).first()

    def enrollment(self, ctx: PluginContext, signer_id: int) -> SignerEnrollment:
        settings = _settings(ctx)
        missing = _missing_settings(settings)
        steps = [EnrollmentStep("configuration", not missing,
                                "the clinic's TSA and trusted roots are set" if not missing else
                                f"an administrator sets {', '.join(missing)} in the plugin settings")]
        row = self._active(ctx, signer_id)
        if row is None:
            steps.append(EnrollmentStep(STEP, False, "upload your certificate (PKCS#12 file and its password)"))
            return SignerEnrollment(False, tuple(steps))
        problem = None
        at = ctx.now()
        if at < row.not_before:
            problem = f"your certificate is not valid before {row.not_before:%Y-%m-%d}"
        elif at > row.not_after:
            problem = f"your certificate expired on {row.not_after:%Y-%m-%d}; upload the renewed one"
        steps.append(EnrollmentStep(STEP, problem is None, problem or
                                    f"{row.subject}, serial {row.serial}, valid until {row.not_after:%Y-%m-%d}"))
        return SignerEnrollment(not missing and problem is None, tuple(steps), {
            "subject": row.subject, "serial": row.serial, "not_after": row.not_after.isoformat(),
            "certificate_sha256": row.certificate_sha256})

    def enroll(self, ctx: PluginContext, signer_id: int, step: str, data: Mapping[str, Any]) -> SignerEnrollment:
        if step != STEP:
            raise ValidationFailed([FieldError("step", f"unknown step {step!r}; the only step is {STEP!r}",
                                               "unknown_step")])
        settings = _settings(ctx)
        missing = [m for m in _missing_settings(settings) if m != "tsa_url"]
        if missing:
            raise PermanentError(f"an administrator must first set {', '.join(missing)} in the plugin settings",
                                 code="not_configured")
        upload = keystore.read_pkcs12(data.get("pkcs12"), data.get("password"))
        at = ctx.now()
        problem = keystore.validity_problem(upload.certificate, at)
        if problem is not None:
            raise ValidationFailed([FieldError("pkcs12", problem[1], problem[0])])
        roots = cms.load_roots(settings.trusted_roots_pem)
        why = chain_problem(upload.certificate, upload.chain, roots, at)
        if why is not None:
            raise ValidationFailed([FieldError("pkcs12", f"the certificate is refused: {why}", "untrusted")])
        secret = settings.key_encryption_secret
        assert secret is not None
        digest = keystore.fingerprint(upload.certificate)
        salt, nonce, encrypted = keystore.encrypt(secret.get_secret_value(), upload.key_der,
                                                  keystore.aad(ctx.clinic.id, signer_id, digest))
        cert = upload.certificate
        with ctx.session() as session:
            for old in session.exec(select(SigningKey).where(
                    SigningKey.clinic_id == ctx.clinic.id, SigningKey.user_id == signer_id,
                    col(SigningKey.active).is_(True))).all():
                old.active = False
                old.replaced_at = at
                session.add(old)
            row = SigningKey(
                clinic_id=ctx.clinic.id, user_id=signer_id, certificate=cert.public_bytes(serialization.Encoding.DER),
                chain=[base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in upload.chain],
                certificate_sha256=digest, subject=keystore.subject_name(cert)[:500], serial=f"{cert.serial_number:x}",
                not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, key_salt=salt,
                key_nonce=nonce, encrypted_key=encrypted, active=True, uploaded_at=at,
            )
            session.add(row)
            session.flush()
            ctx.audit("certificate_uploaded", target=f"user:{signer_id}", session=session, data={
                "subject": row.subject, "serial": row.serial, "not_after": row.not_after.isoformat(),
                "certificate_sha256": digest})
        ctx.log.info("certificate %s uploaded for user %s", row.serial, signer_id)
        return self.enrollment(ctx, signer_id)

    # --- signing --------------------------------------------------------------------------------------

    def sign(self, ctx: PluginContext, signer_id: int, documents: list[bytes]) -> list[SignatureResult]:
        settings = _settings(ctx)
        missing = _missing_settings(settings)
        if missing:
            raise PermanentError(f"certificate signing is not configured: set {', '.join(missing)}",
                                 code="not_configured")
        row = self._active(ctx, signer_id)
        if row is None:
            raise PermanentError("no certificate is uploaded for this signer", code="not_enrolled")
        cert = x509.load_der_x509_certificate(row.certificate)
        problem = keystore.validity_problem(cert, ctx.now())
        if problem is not None:
            raise PermanentError(f"signing refused: {problem[1]}", code=problem[0])
        secret = settings.key_encryption_secret
        assert secret is not None
        key = keystore.decrypt(secret.get_secret_value(), row.key_salt, row.key_nonce, row.encrypted_key,
                               keystore.aad(ctx.clinic.id, signer_id, row.certificate_sha256))
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in row.chain]
        results = []
        with httpx.Client(timeout=settings.tsa_timeout_seconds) as client:
            for document in documents:
                signature = cms.sign(document, cert, key, chain)
                stamp = tsa.stamp(settings.tsa_url, cms.signature_value(signature),
                                  timeout=settings.tsa_timeout_seconds, policy=settings.tsa_policy, client=client)
                problem = keystore.validity_problem(cert, stamp.gen_time)
                if problem is not None:
                    raise PermanentError(f"signing refused at the time-stamped time: {problem[1]}", code=problem[0])
                results.append(SignatureResult(
                    signature=cms.embed_timestamp(signature, stamp.token), signed_at=stamp.gen_time,
                    signer=row.subject, certificate_serial=row.serial, expires_at=row.not_after,
                    details={"certificate_subject": cert.subject.rfc4514_string(),
                             "certificate_sha256": row.certificate_sha256, "timestamped_at": stamp.gen_time.isoformat(),
                             "tsa": stamp.tsa_subject, "tsa_serial": str(stamp.serial), "tsa_policy": stamp.policy,
                             "format": "CMS detached, SHA-256, RFC 3161 signature time-stamp"},
                ))
        ctx.log.info("signed %d document(s) for user %s with certificate %s", len(results), signer_id, row.serial)
        return results

    def verify(self, ctx: PluginContext, document: bytes, signature: bytes) -> VerificationReport:
        try:
            settings = _settings(ctx)
            roots = cms.load_roots(settings.trusted_roots_pem)
            tsa_roots = cms.load_roots(settings.tsa_roots_pem) if settings.tsa_roots_pem.strip() else roots
        except (PermanentError, ValueError) as exc:
            return VerificationReport(False, (VerificationCheck("configuration", False, str(exc)),))
        if not roots:
            return VerificationReport(False, (VerificationCheck(
                "configuration", False, "no trusted roots are configured (trusted_roots_pem)"),))
        checks = tuple(VerificationCheck(c.name, c.passed, c.message)
                       for c in cms.verify(document, signature, roots, tsa_roots, now=ctx.now()))
        return VerificationReport(all(c.passed for c in checks), checks)
