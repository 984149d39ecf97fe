"""Base interfaces for the connector kinds. A plugin registers instances through the provider hooks.

Every method gets the ``PluginContext`` of the clinic it works for. Raise ``RetryableError``,
``PermanentError`` or ``UnknownOutcomeError`` from ``plugin_sdk.errors``; the outbox acts on them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from plugin_sdk.context import PluginContext
from plugin_sdk.errors import PermanentError


class DeliveryStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    delivered = "delivered"
    failed = "failed"
    unknown = "unknown"


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str  # "sms" or "email"
    to: str  # E.164 phone number or e-mail address
    body: str
    idempotency_key: str
    subject: str | None = None
    sender: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    status: DeliveryStatus
    vendor_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """A status update from a vendor callback or poll."""

    vendor_message_id: str
    status: DeliveryStatus
    at: datetime | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A reply from a patient, where the vendor supports two-way messaging."""

    sender: str
    body: str
    received_at: datetime
    vendor_message_id: str | None = None


class MessagingProvider(ABC):
    """An SMS or e-mail vendor."""

    #: "sms" or "email"
    channel: ClassVar[str]
    #: whether the vendor honours an idempotency key, so a resend after a timeout is harmless
    deduplicates: ClassVar[bool] = False

    @abstractmethod
    def send(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult:
        """Hand one message to the vendor. Raise UnknownOutcomeError when it may have been sent."""

    def query_status(self, ctx: PluginContext, message: OutgoingMessage) -> SendResult | None:
        """Ask the vendor what became of a message (by its idempotency key). None: cannot tell."""
        return None

    def parse_callback(
        self, ctx: PluginContext, headers: Mapping[str, str], body: bytes
    ) -> tuple[list[DeliveryReport], list[InboundMessage]]:
        """Check a vendor callback's authenticity and parse it. Raise PermanentError if forged."""
        raise PermanentError(f"{type(self).__name__} does not accept callbacks")


@dataclass(frozen=True)
class SignatureResult:
    signature: bytes
    signed_at: datetime
    signer: str
    certificate_serial: str | None = None
    expires_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VerificationCheck:
    name: str
    passed: bool
    message: str


@dataclass(frozen=True)
class VerificationReport:
    valid: bool
    checks: tuple[VerificationCheck, ...]


class ChallengeKind(StrEnum):
    """How a signer confirms the intent to sign before a signing session may sign."""

    none = "none"  # no check: the signer's login is enough (e.g. a certificate the clinic holds for them)
    sms_code = "sms_code"  # a one-time code sent by SMS to the signer's verified phone
    qr_face = "qr_face"  # a QR code the signer scans with their phone for a face check


class ChallengeStatus(StrEnum):
    pending = "pending"  # waiting for the signer's answer
    passed = "passed"  # intent confirmed: ``sign_in_session`` may sign the session's documents
    rejected = "rejected"  # a wrong answer; ``attempts_left`` more may be tried
    locked = "locked"  # too many wrong answers: the session is closed for good
    expired = "expired"  # too late: begin a new session


@dataclass(frozen=True)
class SigningChallenge:
    """A signing session and the intent check it waits for (``begin``), or the check's outcome (``complete``)."""

    session_id: str
    kind: str  # a ChallengeKind value
    status: str  # a ChallengeStatus value
    document_count: int
    expires_at: datetime | None = None
    attempts_left: int | None = None
    qr_url: str | None = None  # qr_face: the address to show as a QR code
    sent_to: str | None = None  # sms_code: where the code went, masked (e.g. "+86 138****5678")
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnrollmentStep:
    name: str
    done: bool
    message: str


@dataclass(frozen=True)
class SignerEnrollment:
    """Whether a person can sign with the provider, and the one-time steps (certificate, real-name check, seal)."""

    ready: bool
    steps: tuple[EnrollmentStep, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


class SigningProvider(ABC):
    """Signs the canonical bytes of a record and verifies such signatures later.

    The core signs in a session: ``begin`` (one intent check for a batch of documents), ``complete`` with the
    signer's answer when the challenge kind is not ``none``, then ``sign_in_session``. The defaults suit a provider
    that needs no intent check: ``begin`` returns a passed ``none`` challenge and ``sign_in_session`` calls ``sign``.
    A provider that needs a check overrides all three and refuses ``sign`` without a session.
    """

    #: the intent-check kinds the provider offers, first is the default
    intent_methods: ClassVar[tuple[str, ...]] = (ChallengeKind.none,)

    @abstractmethod
    def sign(self, ctx: PluginContext, signer_id: int, documents: list[bytes]) -> list[SignatureResult]:
        """Sign each document for the signer; one result per document, in order."""

    @abstractmethod
    def verify(self, ctx: PluginContext, document: bytes, signature: bytes) -> VerificationReport:
        """Check a signature over the document and report every check made."""

    def enrollment(self, ctx: PluginContext, signer_id: int) -> SignerEnrollment:
        """What the signer still has to do once before signing. The default: nothing."""
        return SignerEnrollment(ready=True)

    def enroll(self, ctx: PluginContext, signer_id: int, step: str, data: Mapping[str, Any]) -> SignerEnrollment:
        """Do one enrollment step with the signer's input; raise ``ValidationFailed`` naming the field for bad
        input, ``PermanentError`` for a refusal, ``RetryableError`` when the vendor is unreachable."""
        raise PermanentError(f"{type(self).__name__} has no enrollment steps", code="no_enrollment")

    def begin(self, ctx: PluginContext, signer_id: int, document_count: int,
              method: str | None = None) -> SigningChallenge:
        """Open a signing session for ``document_count`` documents and start its intent check."""
        import uuid

        return SigningChallenge(session_id=uuid.uuid4().hex, kind=ChallengeKind.none, status=ChallengeStatus.passed,
                                document_count=document_count)

    def complete(self, ctx: PluginContext, session_id: str, response: str | None) -> SigningChallenge:
        """Pass the signer's answer (an SMS code; nothing for a face check, which the vendor reports) and return
        the outcome. Wrong answers return ``rejected`` or, after too many, ``locked``."""
        raise PermanentError(f"{type(self).__name__} has no intent check to complete", code="no_challenge")

    def sign_in_session(self, ctx: PluginContext, session_id: str, signer_id: int,
                        documents: list[bytes]) -> list[SignatureResult]:
        """Sign documents in a session whose intent check passed; at most its ``document_count`` in all."""
        return self.sign(ctx, signer_id, documents)



@dataclass(frozen=True)
class LabOrder:
    placer_order_number: str
    patient: Mapping[str, Any]
    tests: tuple[Mapping[str, Any], ...]
    ordered_at: datetime
    idempotency_key: str
    ordering_provider: Mapping[str, Any] = field(default_factory=dict)
    specimens: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class LabResult:
    placer_order_number: str
    filler_order_number: str | None
    test_code: str
    value: str
    units: str | None
    reference_range: str | None
    abnormal_flag: str | None
    status: str  # "preliminary", "final" or "corrected"
    observed_at: datetime | None = None


class LabConnector(ABC):
    """Sends orders to an external lab and brings results back."""

    @abstractmethod
    def send_order(self, ctx: PluginContext, order: LabOrder) -> str:
        """Deliver the order; return the lab's acknowledgement id. Raise on rejection or failure."""

    @abstractmethod
    def fetch_results(self, ctx: PluginContext) -> list[LabResult]:
        """Return results that arrived since the last call (for connectors that poll)."""
