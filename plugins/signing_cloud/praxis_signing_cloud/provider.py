"""The ``SigningProvider`` of the cloud e-signature vendor (the Dr. Xiaomei flow).

Once per doctor: a real-name check (name, ID type and number, the phone registered to that ID) and a personal
seal image. Then every signing session needs an intent check before anything is signed: a code the vendor sends
by SMS to the verified phone, or a QR code the doctor scans for a face check. One check covers the whole batch
(at most the number of documents announced in ``begin``). Wrong codes are refused and counted here as well as at
the vendor; ``max_attempts`` (5) wrong codes lock the session for good.

The documents never leave the clinic: the vendor gets their SHA-256 and returns detached CMS signatures made with
the doctor's certificate, which ``verify`` checks locally against the vendor's root.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from plugin_sdk import PermanentError, PluginContext
from plugin_sdk.errors import FieldError, ValidationFailed
from plugin_sdk.providers import (
    ChallengeKind,
    ChallengeStatus,
    EnrollmentStep,
    SignatureResult,
    SignerEnrollment,
    SigningChallenge,
    SigningProvider,
    VerificationCheck,
    VerificationReport,
)
from praxis_signing_cloud import auth, cms
from praxis_signing_cloud.client import CODE_LOCKED, EXPIRED, WRONG_CODE, CloudClient
from praxis_signing_cloud.models import CloudSession, CloudSigner
from praxis_signing_cloud.settings import Settings

ID_TYPES = {"CRED_PSN_CH_IDCARD": "Chinese resident identity card", "CRED_PSN_PASSPORT": "passport",
            "CRED_PSN_CH_HONGKONG": "Hong Kong and Macao permit", "CRED_PSN_CH_TWCARD": "Taiwan permit"}
AUTH_TYPES = {ChallengeKind.sms_code: "SMS", ChallengeKind.qr_face: "FACE"}
MAX_SEAL_BYTES = 512 * 1024
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def resident_id_problem(number: str) -> str | None:
    """GB 11643-1999: 17 digits and a check character (ISO 7064 MOD 11-2)."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return "must be 18 characters: 17 digits and a digit or X"
    expected = _CHECK[sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True)) % 11]
    if number[17] != expected:
        return "the check character does not match (a typing error?)"
    return None


def normalise_mobile(value: str) -> str:
    digits = re.sub(r"[\s\-()]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not re.fullmatch(r"1[3-9]\d{9}", digits):
        raise ValueError("must be a mainland China mobile number, e.g. 13812345678")
    return digits


def mask(value: str, keep_start: int, keep_end: int) -> str:
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def _settings(ctx: PluginContext) -> Settings:
    settings = ctx.settings
    if not isinstance(settings, Settings) or not settings.app_id or settings.app_secret is None \
            or not settings.app_secret.get_secret_value():
        raise PermanentError("the e-signature service is not configured: set app_id and app_secret",
                             code="not_configured")
    return settings


def _client(ctx: PluginContext, settings: Settings) -> CloudClient:
    assert settings.app_secret is not None
    return CloudClient(settings.base_url, settings.app_id, settings.app_secret.get_secret_value(),
                       timeout=settings.timeout_seconds, clock_ms=lambda: int(ctx.now().timestamp() * 1000))


def _from_ms(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


class CloudSigningProvider(SigningProvider):
    intent_methods = (ChallengeKind.sms_code, ChallengeKind.qr_face)

    # --- enrollment -------------------------------------------------------------------------------------

    def _signer(self, ctx: PluginContext, signer_id: int) -> CloudSigner | None:
        with ctx.session() as session:
            return session.exec(select(CloudSigner).where(
                CloudSigner.clinic_id == ctx.clinic.id, CloudSigner.user_id == signer_id,
                col(CloudSigner.active).is_(True)).order_by(col(CloudSigner.id).desc())).first()

    def enrollment(self, ctx: PluginContext, signer_id: int) -> SignerEnrollment:
        signer = self._signer(ctx, signer_id)
        identity = signer is not None
        seal = signer is not None and signer.seal_id is not None
        steps = (
            EnrollmentStep("identity", identity, f"verified: {signer.name}, {signer.id_number_masked}, phone "
                                                 f"{signer.mobile_masked}" if signer else
                           "verify your identity once: name, ID type and number, and the phone registered to it"),
            EnrollmentStep("seal", seal, "personal seal uploaded" if seal else
                           "upload an image of your personal seal or handwritten name (PNG or JPEG)"),
        )
        details = {"psn_id": signer.psn_id, "mobile": signer.mobile_masked} if signer else {}
        return SignerEnrollment(identity and seal, steps, details)

    def enroll(self, ctx: PluginContext, signer_id: int, step: str, data: Mapping[str, Any]) -> SignerEnrollment:
        if step == "identity":
            return self._enroll_identity(ctx, signer_id, data)
        if step == "seal":
            return self._enroll_seal(ctx, signer_id, data)
        raise ValidationFailed([FieldError("step", f"unknown step {step!r}: 'identity' or 'seal'", "unknown_step")])

    def _enroll_identity(self, ctx: PluginContext, signer_id: int, data: Mapping[str, Any]) -> SignerEnrollment:
        errors = []
        name = str(data.get("name") or "").strip()
        if not name or len(name) > 100:
            errors.append(FieldError("name", "your name as on the ID, 1 to 100 characters", "required"))
        id_type = str(data.get("id_type") or "CRED_PSN_CH_IDCARD")
        if id_type not in ID_TYPES:
            errors.append(FieldError("id_type", f"one of {', '.join(ID_TYPES)}", "invalid_choice"))
        id_number = str(data.get("id_number") or "").strip().upper()
        if not id_number:
            errors.append(FieldError("id_number", "the ID number is required", "required"))
        elif id_type == "CRED_PSN_CH_IDCARD" and (why := resident_id_problem(id_number)):
            errors.append(FieldError("id_number", why, "invalid"))
        try:
            mobile = normalise_mobile(str(data.get("phone") or ""))
        except ValueError as exc:
            errors.append(FieldError("phone", str(exc), "invalid_phone"))
        if errors:
            raise ValidationFailed(errors)
        settings = _settings(ctx)
        with _client(ctx, settings) as client:
            answer = client.verify_identity(name, id_type, id_number, mobile)
        psn_id = str(answer.get("psnId") or "")
        if not psn_id or answer.get("realnameStatus") != 1:
            raise PermanentError("the real-name check did not pass", code="realname_failed")
        at = ctx.now()
        with ctx.session() as session:
            for old in session.exec(select(CloudSigner).where(
                    CloudSigner.clinic_id == ctx.clinic.id, CloudSigner.user_id == signer_id,
                    col(CloudSigner.active).is_(True))).all():
                old.active = False
                session.add(old)
            row = CloudSigner(clinic_id=ctx.clinic.id, user_id=signer_id, psn_id=psn_id, name=name, id_type=id_type,
                              id_number_masked=mask(id_number, 3, 4), mobile_masked=mask(mobile, 3, 4),
                              verified_at=at)
            session.add(row)
            ctx.audit("identity_verified", target=f"user:{signer_id}", session=session,
                      data={"psn_id": psn_id, "id_type": id_type, "id_number": row.id_number_masked,
                            "mobile": row.mobile_masked})
        return self.enrollment(ctx, signer_id)

    def _enroll_seal(self, ctx: PluginContext, signer_id: int, data: Mapping[str, Any]) -> SignerEnrollment:
        signer = self._signer(ctx, signer_id)
        if signer is None:
            raise PermanentError("verify your identity first (step 'identity')", code="identity_first")
        raw_text = data.get("image")
        try:
            raw = base64.b64decode(str(raw_text or ""), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed([FieldError("image", "not valid base64", "invalid_base64")]) from exc
        if not raw:
            raise ValidationFailed([FieldError("image", "the seal image is required", "required")])
        if len(raw) > MAX_SEAL_BYTES:
            raise ValidationFailed([FieldError("image", f"larger than {MAX_SEAL_BYTES // 1024} KiB", "too_large")])
        if not (raw.startswith(b"\x89PNG\r\n\x1a\n") or raw.startswith(b"\xff\xd8\xff")):
            raise ValidationFailed([FieldError("image", "must be a PNG or JPEG image", "not_an_image")])
        settings = _settings(ctx)
        with _client(ctx, settings) as client:
            answer = client.upload_seal(signer.psn_id, base64.b64encode(raw).decode(),
                                        str(data.get("seal_name") or signer.name)[:50])
        seal_id = str(answer.get("sealId") or "")
        if not seal_id:
            raise PermanentError("the e-signature service did not return a seal id", code="bad_answer")
        with ctx.session() as session:
            row = session.get(CloudSigner, signer.id, with_for_update=True)
            assert row is not None
            row.seal_id = seal_id
            row.seal_sha256 = hashlib.sha256(raw).hexdigest()
            row.seal_uploaded_at = ctx.now()
            session.add(row)
            ctx.audit("seal_uploaded", target=f"user:{signer_id}", session=session,
                      data={"seal_id": seal_id, "sha256": row.seal_sha256})
        return self.enrollment(ctx, signer_id)

    # --- intent check -----------------------------------------------------------------------------------

    def begin(self, ctx: PluginContext, signer_id: int, document_count: int,
              method: str | None = None) -> SigningChallenge:
        kind = ChallengeKind(method or ChallengeKind.sms_code)
        if kind not in AUTH_TYPES:
            raise ValidationFailed([FieldError("method", "sms_code or qr_face", "unknown_method")])
        if document_count < 1:
            raise ValidationFailed([FieldError("document_count", "at least one document", "too_small")])
        signer = self._signer(ctx, signer_id)
        if signer is None or signer.seal_id is None:
            raise PermanentError("finish the one-time steps first: identity and seal", code="not_enrolled")
        settings = _settings(ctx)
        session_id = uuid.uuid4().hex
        with _client(ctx, settings) as client:
            answer = client.start_willingness(signer.psn_id, AUTH_TYPES[kind], document_count, session_id,
                                              settings.notify_url)
        willingness_id = str(answer.get("willingnessId") or "")
        if not willingness_id:
            raise PermanentError("the e-signature service did not open an intent check", code="bad_answer")
        expires = _from_ms(answer["expireTime"]) if answer.get("expireTime") else ctx.now() + timedelta(minutes=10)
        row = CloudSession(id=session_id, clinic_id=ctx.clinic.id, user_id=signer_id, psn_id=signer.psn_id,
                           seal_id=signer.seal_id, willingness_id=willingness_id, kind=kind,
                           status=ChallengeStatus.pending, document_count=document_count, expires_at=expires,
                           created_at=ctx.now())
        with ctx.session() as session:
            session.add(row)
        return SigningChallenge(
            session_id=session_id, kind=kind, status=ChallengeStatus.pending, document_count=document_count,
            expires_at=expires, attempts_left=settings.max_attempts,
            qr_url=answer.get("qrUrl") if kind == ChallengeKind.qr_face else None,
            sent_to=answer.get("mobileMasked") or signer.mobile_masked if kind == ChallengeKind.sms_code else None,
            message="enter the code sent by SMS" if kind == ChallengeKind.sms_code
            else "scan the QR code with your phone and follow the face check",
            details={"willingness_id": willingness_id},
        )

    def _load(self, ctx: PluginContext, session_id: str) -> CloudSession:
        with ctx.session() as session:
            row = session.get(CloudSession, session_id)
        if row is None or row.clinic_id != ctx.clinic.id:
            raise PermanentError(f"there is no signing session {session_id}", code="no_session")
        return row

    def _update(self, ctx: PluginContext, session_id: str, **values: Any) -> CloudSession:
        with ctx.session() as session:
            row = session.get(CloudSession, session_id, with_for_update=True)
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value(row) if callable(value) else value)
            session.add(row)
            return row

    def _challenge(self, row: CloudSession, settings: Settings, message: str = "") -> SigningChallenge:
        return SigningChallenge(session_id=row.id, kind=row.kind, status=row.status,
                                document_count=row.document_count, expires_at=row.expires_at,
                                attempts_left=max(settings.max_attempts - row.failed_attempts, 0), message=message)

    def complete(self, ctx: PluginContext, session_id: str, response: str | None) -> SigningChallenge:
        settings = _settings(ctx)
        row = self._load(ctx, session_id)
        if row.status in (ChallengeStatus.locked, ChallengeStatus.expired, ChallengeStatus.passed):
            return self._challenge(row, settings)
        if ctx.now() >= row.expires_at:
            return self._challenge(self._update(ctx, session_id, status=ChallengeStatus.expired), settings,
                                   "the intent check expired")
        with _client(ctx, settings) as client:
            if row.kind == ChallengeKind.qr_face:
                state = str(client.willingness(row.willingness_id).get("status") or "")
                return self._apply_state(ctx, row, settings, state)
            code = (response or "").strip()
            if not re.fullmatch(r"\d{6}", code):
                return self._wrong(ctx, row, settings, "the code has 6 digits")
            answer = client.verify_sms(row.willingness_id, code)
        if answer.code == 0:
            row = self._update(ctx, session_id, status=ChallengeStatus.passed, passed_at=ctx.now())
            return self._challenge(row, settings, "intent confirmed")
        if answer.code == CODE_LOCKED:
            row = self._update(ctx, session_id, status=ChallengeStatus.locked,
                               failed_attempts=lambda r: max(r.failed_attempts + 1, settings.max_attempts))
            return self._challenge(row, settings, "too many wrong codes: the session is locked")
        if answer.code == EXPIRED:
            return self._challenge(self._update(ctx, session_id, status=ChallengeStatus.expired), settings,
                                   "the code expired")
        assert answer.code == WRONG_CODE
        return self._wrong(ctx, row, settings, "wrong code")

    def _wrong(self, ctx: PluginContext, row: CloudSession, settings: Settings, message: str) -> SigningChallenge:
        def status(r: CloudSession) -> str:
            return ChallengeStatus.locked if r.failed_attempts >= settings.max_attempts else ChallengeStatus.pending

        row = self._update(ctx, row.id, failed_attempts=lambda r: r.failed_attempts + 1, status=status)
        if row.status == ChallengeStatus.locked:
            return self._challenge(row, settings, f"{message}; too many wrong codes: the session is locked")
        return replace(self._challenge(row, settings, message), status=ChallengeStatus.rejected)

    def _apply_state(self, ctx: PluginContext, row: CloudSession, settings: Settings, state: str) -> SigningChallenge:
        if state == "PASSED":
            row = self._update(ctx, row.id, status=ChallengeStatus.passed, passed_at=ctx.now())
            return self._challenge(row, settings, "face check passed")
        if state == "FAILED":
            return self._wrong(ctx, row, settings, "the face check did not match")
        if state == "EXPIRED":
            return self._challenge(self._update(ctx, row.id, status=ChallengeStatus.expired), settings,
                                   "the QR code expired")
        if state == "LOCKED":
            return self._challenge(self._update(ctx, row.id, status=ChallengeStatus.locked), settings,
                                   "the intent check is locked")
        return self._challenge(row, settings, "waiting for the face check")

    def handle_callback(self, ctx: PluginContext, headers: Mapping[str, str], query: Mapping[str, str],
                        body: bytes) -> dict[str, Any]:
        """Apply the vendor's intent-check notification after checking its signature and age (PermanentError
        with code ``forged_callback`` otherwise)."""
        settings = _settings(ctx)
        assert settings.app_secret is not None
        problem = auth.check_callback(settings.app_secret.get_secret_value(), headers, query, body,
                                      int(ctx.now().timestamp() * 1000))
        if problem is not None:
            ctx.audit("callback_refused", data={"reason": problem})
            raise PermanentError(f"callback refused: {problem}", code="forged_callback")
        try:
            event = json.loads(body)
            action, willingness_id = str(event["action"]), str(event["willingnessId"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError("callback without action and willingnessId", code="bad_callback") from exc
        with ctx.session() as session:
            row = session.exec(select(CloudSession).where(CloudSession.clinic_id == ctx.clinic.id,
                                                          CloudSession.willingness_id == willingness_id)).first()
        if row is None:
            return {"applied": False, "reason": "unknown intent check"}
        if row.status != ChallengeStatus.pending:
            return {"applied": False, "reason": f"session already {row.status}"}
        state = {"WILLINGNESS_PASSED": "PASSED", "WILLINGNESS_FAILED": "FAILED"}.get(action, "")
        if not state:
            return {"applied": False, "reason": f"action {action} is not about intent checks"}
        outcome = self._apply_state(ctx, row, settings, state)
        return {"applied": True, "session_id": row.id, "status": str(outcome.status)}

    # --- signing ----------------------------------------------------------------------------------------

    def sign(self, ctx: PluginContext, signer_id: int, documents: list[bytes]) -> list[SignatureResult]:
        raise PermanentError("cloud signing needs an intent check: begin a signing session and answer it first",
                             code="intent_required")

    def sign_in_session(self, ctx: PluginContext, session_id: str, signer_id: int,
                        documents: list[bytes]) -> list[SignatureResult]:
        settings = _settings(ctx)
        row = self._load(ctx, session_id)
        if row.user_id != signer_id:
            raise PermanentError("this signing session belongs to someone else", code="not_your_session")
        if row.status != ChallengeStatus.passed:
            raise PermanentError(f"the intent check has not passed (session {row.status})", code="intent_required")
        if ctx.now() >= row.expires_at:
            self._update(ctx, session_id, status=ChallengeStatus.expired)
            raise PermanentError("the signing session expired; begin a new one", code="session_expired")
        if row.signed_count + len(documents) > row.document_count:
            raise PermanentError(f"the intent check covers {row.document_count} document(s); "
                                 f"{row.signed_count} signed already", code="over_batch")
        docs = [{"bizNo": f"{session_id}-{row.signed_count + i}",
                 "fileHash": base64.b64encode(hashlib.sha256(d).digest()).decode(),
                 "fileName": f"record-{row.signed_count + i}.json"} for i, d in enumerate(documents)]
        with _client(ctx, settings) as client:
            signs = client.hash_sign(row.psn_id, row.seal_id, row.willingness_id, docs)
        signer = self._signer(ctx, signer_id)
        results = []
        for doc, sign in zip(docs, signs, strict=True):
            if sign.get("bizNo") != doc["bizNo"]:
                raise PermanentError("the e-signature service answered for other documents", code="bad_answer")
            try:
                signature = base64.b64decode(sign["signature"], validate=True)
                signed_at = _from_ms(sign["signTime"])
                expires = _from_ms(sign["certNotAfter"])
            except (KeyError, ValueError, TypeError, binascii.Error) as exc:
                raise PermanentError(f"malformed signature from the e-signature service ({exc})",
                                     code="bad_answer") from exc
            results.append(SignatureResult(
                signature=signature, signed_at=signed_at, signer=signer.name if signer else row.psn_id,
                certificate_serial=str(sign.get("certSn") or ""), expires_at=expires,
                details={"certificate_subject": sign.get("certSubject"), "seal_id": row.seal_id,
                         "willingness_id": row.willingness_id, "intent_check": row.kind,
                         "vendor_biz_no": doc["bizNo"], "format": "CMS detached over SHA-256 (cloud)"},
            ))
        self._update(ctx, session_id, signed_count=lambda r: r.signed_count + len(documents))
        ctx.log.info("signed %d document(s) in session %s", len(results), session_id)
        return results

    def verify(self, ctx: PluginContext, document: bytes, signature: bytes) -> VerificationReport:
        settings = ctx.settings
        pem = getattr(settings, "vendor_roots_pem", "") or ""
        try:
            roots = cms.load_roots(pem)
        except ValueError as exc:
            return VerificationReport(False, (VerificationCheck("configuration", False, str(exc)),))
        if not roots:
            return VerificationReport(False, (VerificationCheck("configuration", False,
                                                                "the vendor's root certificate is not configured "
                                                                "(vendor_roots_pem)"),))
        checks = tuple(VerificationCheck(c.name, c.passed, c.message) for c in cms.verify(document, signature, roots))
        return VerificationReport(all(c.passed for c in checks), checks)
