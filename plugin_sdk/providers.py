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


#: Outbox topic the core queues for a lab connector plugin: the payload is ``LabOrder.to_payload()``; the plugin's
#: handler of this topic rebuilds the order with ``LabOrder.from_payload(payload, message.idempotency_key)`` and calls
#: its connector's ``send_order``.
LAB_ORDER_TOPIC = "lab.order"
#: Core outbox topic a lab plugin queues (``ctx.enqueue(LAB_POLL_TOPIC, {})``) to have the core fetch its results
#: now (after a result arrived, after an order was sent). The core calls ``fetch_results``, stores what it gets in
#: one transaction per lab message, then ``confirm_results`` with the receipts it stored or refused.
LAB_POLL_TOPIC = "core.labs.poll"


@dataclass(frozen=True)
class LabOrder:
    placer_order_number: str
    patient: Mapping[str, Any]
    tests: tuple[Mapping[str, Any], ...]
    ordered_at: datetime
    idempotency_key: str
    ordering_provider: Mapping[str, Any] = field(default_factory=dict)
    specimens: tuple[Mapping[str, Any], ...] = ()
    #: "new" (a new order) or "cancel" (withdraw an order sent before; HL7 ORC-1 CA, FHIR status revoked)
    action: str = "new"
    #: the lab's code for itself (e.g. HL7 receiving facility), from the clinic's lab provider record
    lab_code: str | None = None
    #: the visit the order belongs to (HL7 PV1-19), if any
    visit_number: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The order as JSON for an outbox item (the idempotency key is the item's own id, so it is left out)."""
        return {
            "placer_order_number": self.placer_order_number, "patient": dict(self.patient),
            "tests": [dict(t) for t in self.tests], "ordered_at": self.ordered_at.isoformat(),
            "ordering_provider": dict(self.ordering_provider), "specimens": [dict(s) for s in self.specimens],
            "action": self.action, "lab_code": self.lab_code, "visit_number": self.visit_number,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], idempotency_key: str) -> LabOrder:
        """Rebuild an order from ``to_payload()``; raises ``PermanentError`` (code ``bad_payload``) if malformed."""
        try:
            ordered_at = datetime.fromisoformat(str(payload["ordered_at"]))
            if ordered_at.tzinfo is None:
                raise ValueError("ordered_at must carry a UTC offset")
            tests = tuple(dict(t) for t in payload["tests"])
            if not tests or not all(t.get("code") for t in tests):
                raise ValueError("an order needs at least one test, each with a code")
            action = str(payload.get("action") or "new")
            if action not in {"new", "cancel"}:
                raise ValueError(f"unknown action {action!r}")
            return cls(
                placer_order_number=str(payload["placer_order_number"]), patient=dict(payload["patient"]),
                tests=tests, ordered_at=ordered_at, idempotency_key=idempotency_key,
                ordering_provider=dict(payload.get("ordering_provider") or {}),
                specimens=tuple(dict(s) for s in payload.get("specimens") or ()), action=action,
                lab_code=payload.get("lab_code"), visit_number=payload.get("visit_number"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentError(f"malformed lab order: {type(exc).__name__}: {exc}", code="bad_payload") from exc


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
    test_name: str | None = None
    #: the connector's handle of the lab message this result came in (results sharing it are stored together or
    #: not at all); pass it back to ``confirm_results``
    receipt: str | None = None
    value_type: str | None = None  # e.g. HL7 OBX-2 (NM, ST, CE, TX) or the FHIR value[x] kind
    notes: str | None = None  # comments from the lab (HL7 NTE, FHIR note)


class LabConnector(ABC):
    """Sends orders to an external lab and brings results back."""

    @abstractmethod
    def send_order(self, ctx: PluginContext, order: LabOrder) -> str:
        """Deliver the order; return the lab's acknowledgement id. Raise on rejection or failure."""

    @abstractmethod
    def fetch_results(self, ctx: PluginContext) -> list[LabResult]:
        """Return results that arrived since the last call (for connectors that poll)."""

    def confirm_results(self, ctx: PluginContext, receipts: list[str]) -> None:
        """The core has stored (or refused for good) the results with these receipts. A connector that hands
        unconfirmed results out again after a while (so none is lost if the core fails in between) forgets them
        now. The default does nothing."""
        return None
