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


class SigningProvider(ABC):
    """Signs the canonical bytes of a record and verifies such signatures later."""

    @abstractmethod
    def sign(self, ctx: PluginContext, signer_id: int, documents: list[bytes]) -> list[SignatureResult]:
        """Sign each document for the signer; one result per document, in order."""

    @abstractmethod
    def verify(self, ctx: PluginContext, document: bytes, signature: bytes) -> VerificationReport:
        """Check a signature over the document and report every check made."""


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
