"""A fixture signing plugin for the records screens: HMAC signatures, an intent check by SMS code (the code is
always 246810, three tries) or a QR code for a face check (passed once ``FACE_DONE`` holds the session), or none."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timedelta

from core.clock import now
from plugin_sdk import N_, Category, PluginManifest, hookimpl
from plugin_sdk.providers import (
    ChallengeKind,
    ChallengeStatus,
    SignatureResult,
    SigningChallenge,
    SigningProvider,
    VerificationCheck,
    VerificationReport,
)

KEY = b"ui-tests-signing-key"
CODE = "246810"
FACE_DONE: set[str] = set()

manifest = PluginManifest(name="signing_fixture", version="1.0.0", title=N_("Test signing"),
                          description=N_("Signs records with a test key."), category=Category.signing,
                          countries=("HU", "KR"), api=">=1.0,<2")


class FixtureSigner(SigningProvider):
    intent_methods = (ChallengeKind.none, ChallengeKind.sms_code, ChallengeKind.qr_face)

    def __init__(self) -> None:
        self.tries: dict[str, int] = {}
        self.kinds: dict[str, str] = {}

    def sign(self, ctx, signer_id, documents):  # type: ignore[no-untyped-def]
        at = now()
        return [SignatureResult(signature=hmac.new(KEY, d, hashlib.sha256).digest(), signed_at=at,
                                signer=f"user {signer_id}", certificate_serial="01",
                                expires_at=at + timedelta(days=365)) for d in documents]

    def verify(self, ctx, document, signature):  # type: ignore[no-untyped-def]
        ok = hmac.compare_digest(hmac.new(KEY, document, hashlib.sha256).digest(), signature)
        return VerificationReport(ok, (VerificationCheck("hmac", ok, "matches" if ok else "does not match"),))

    def begin(self, ctx, signer_id, document_count, method=None):  # type: ignore[no-untyped-def]
        session = uuid.uuid4().hex
        kind = method or ChallengeKind.none
        if kind == ChallengeKind.none:
            return SigningChallenge(session, kind, ChallengeStatus.passed, document_count)
        self.tries[session] = 3
        self.kinds[session] = kind
        return SigningChallenge(session, kind, ChallengeStatus.pending, document_count,
                                expires_at=now() + timedelta(minutes=5), attempts_left=3,
                                qr_url=f"https://face.example/check/{session}" if kind == ChallengeKind.qr_face
                                else None, sent_to="+36 30 ***4567" if kind == ChallengeKind.sms_code else None)

    def complete(self, ctx, session_id, response):  # type: ignore[no-untyped-def]
        if self.kinds.get(session_id) == ChallengeKind.qr_face:
            status = ChallengeStatus.passed if session_id in FACE_DONE else ChallengeStatus.pending
            return SigningChallenge(session_id, ChallengeKind.qr_face, status, 0)
        if response == CODE:
            return SigningChallenge(session_id, ChallengeKind.sms_code, ChallengeStatus.passed, 0)
        self.tries[session_id] -= 1
        left = self.tries[session_id]
        return SigningChallenge(session_id, ChallengeKind.sms_code,
                                ChallengeStatus.rejected if left else ChallengeStatus.locked, 0, attempts_left=left,
                                message="wrong code")


PROVIDER = FixtureSigner()


@hookimpl
def praxis_signing_providers() -> list[SigningProvider]:
    return [PROVIDER]
