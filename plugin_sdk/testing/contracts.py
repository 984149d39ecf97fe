"""Contract tests: what every connector of a kind must do, checked against its fake vendor over loopback.

Subclass the contract in your test module under a name starting with ``Test`` and provide the fixtures
listed in its docstring. Everything else (the tests) is inherited::

    class TestAcmeSmsContract(MessagingProviderContract):
        @pytest.fixture
        def fake_vendor(self):
            with AcmeFake() as fake:
                yield fake

        @pytest.fixture
        def provider_ctx(self, plugin_app, fake_vendor):
            return plugin_app(plugin, settings={"endpoint": fake_vendor.base_url, "timeout_seconds": 0.5}).ctx

        @pytest.fixture
        def provider(self):
            return AcmeSmsProvider()

The fake vendor must call ``FakeServer.record_effect`` whenever the vendor acts (a message accepted for
delivery, an order stored), so the contract can count side effects rather than requests.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from plugin_sdk.errors import PermanentError, RetryableError, UnknownOutcomeError, ValidationFailed
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
    VerificationReport,
)
from plugin_sdk.testing.fake_server import FakeServer

#: Connector calls in contract tests must give up well before this; a fake "hang" lasts this long at most,
#: so a client without a timeout fails the test instead of blocking the suite.
HANG_SECONDS = 8.0


def _aware(value: datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() is not None


class _Faults:
    #: Faults are injected this many times in a row, so a connector that retries internally a few times
    #: still sees the failure (connectors should leave retrying to the outbox).
    fault_burst: ClassVar[int] = 3

    @pytest.fixture(autouse=True)
    def _fresh_fake_vendor(self, fake_vendor: FakeServer) -> Any:
        # The fake may be shared by the whole module (one app per module is much faster): every test starts
        # with it running, without faults, requests or effects, and leaves nothing hanging.
        fake_vendor.start()
        fake_vendor.reset()
        yield
        fake_vendor.release()


# --- Messaging -----------------------------------------------------------------------------------------


class MessagingProviderContract(_Faults):
    """Every SMS or e-mail vendor connector.

    Fixtures to provide:

    * ``provider``: the ``MessagingProvider`` under test.
    * ``provider_ctx``: a ``PluginContext`` whose settings point the provider at ``fake_vendor`` with a client
      timeout of at most a couple of seconds (``plugin_app(...).ctx``).
    * ``fake_vendor``: a running ``FakeServer`` speaking the vendor's protocol; it records one effect per
      message it accepts for delivery.

    Override ``valid_recipient`` / ``invalid_recipient`` for e-mail providers (or other number rules).
    """

    valid_recipient: ClassVar[str] = "+36201234567"
    invalid_recipient: ClassVar[str] = "+3612"
    body: ClassVar[str] = "Emlékeztető: holnap 10:00, Dr. Kovács. 내일 오전 10시 예약."

    def message(self, provider: MessagingProvider, **overrides: Any) -> OutgoingMessage:
        values: dict[str, Any] = {
            "channel": provider.channel,
            "to": self.valid_recipient,
            "body": self.body,
            "idempotency_key": str(uuid.uuid4()),
            "subject": "Appointment reminder" if provider.channel == "email" else None,
        }
        values.update(overrides)
        return OutgoingMessage(**values)

    def test_provider_declares_its_channel(self, provider: MessagingProvider) -> None:
        assert isinstance(provider, MessagingProvider)
        assert provider.channel in {"sms", "email"}, f"channel must be 'sms' or 'email', not {provider.channel!r}"

    def test_send_returns_a_result_with_the_vendor_message_id(
        self, provider: MessagingProvider, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        result = provider.send(provider_ctx, self.message(provider))
        assert isinstance(result, SendResult), f"send() must return a SendResult, not {type(result).__name__}"
        assert result.vendor_message_id, "send() must return the vendor's message id"
        assert result.status in {DeliveryStatus.queued, DeliveryStatus.sent, DeliveryStatus.delivered}
        assert len(fake_vendor.effects) == 1

    def test_the_same_idempotency_key_is_not_delivered_twice(
        self, provider: MessagingProvider, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        message = self.message(provider)
        first = provider.send(provider_ctx, message)
        if provider.deduplicates:
            second = provider.send(provider_ctx, message)
            assert second.vendor_message_id == first.vendor_message_id
            assert len(fake_vendor.effects) == 1, "a resend with the same idempotency key reached the patient twice"
        else:
            status = provider.query_status(provider_ctx, message)
            assert status is not None, (
                "a provider that does not deduplicate must implement query_status(), so the outbox can ask "
                "before sending again"
            )
            assert status.vendor_message_id == first.vendor_message_id
            assert len(fake_vendor.effects) == 1

    def test_a_lost_answer_never_leads_to_a_second_delivery(
        self, provider: MessagingProvider, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        message = self.message(provider)
        fake_vendor.hang_next(1, seconds=HANG_SECONDS, after=True)  # the vendor sends, the answer is lost
        expected = RetryableError if provider.deduplicates else UnknownOutcomeError
        with pytest.raises(expected):
            provider.send(provider_ctx, message)
        fake_vendor.release()
        if provider.deduplicates:
            result = provider.send(provider_ctx, message)
            assert result.vendor_message_id
        else:
            status = provider.query_status(provider_ctx, message)
            assert status is not None and status.vendor_message_id
        assert len(fake_vendor.effects) == 1

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_a_server_error_is_retryable(
        self, provider: MessagingProvider, provider_ctx: Any, fake_vendor: FakeServer, status: int
    ) -> None:
        fake_vendor.fail_next(self.fault_burst, status=status)
        with pytest.raises(RetryableError):
            provider.send(provider_ctx, self.message(provider))
        assert fake_vendor.effects == []

    def test_rate_limiting_is_retryable_after_the_vendors_delay(
        self, provider: MessagingProvider, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        fake_vendor.rate_limit_next(self.fault_burst, retry_after=7)
        with pytest.raises(RetryableError) as raised:
            provider.send(provider_ctx, self.message(provider))
        assert raised.value.retry_after == 7, "pass the vendor's Retry-After on as RetryableError(retry_after=...)"

    def test_a_timeout_is_retryable_or_an_unknown_outcome(
        self, provider: MessagingProvider, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        fake_vendor.hang_next(self.fault_burst, seconds=HANG_SECONDS)
        expected = RetryableError if provider.deduplicates else UnknownOutcomeError
        started = time.monotonic()
        with pytest.raises(expected):
            provider.send(provider_ctx, self.message(provider))
        assert time.monotonic() - started < HANG_SECONDS, "the client waited for the hanging vendor: set a timeout"

    def test_an_unreachable_vendor_is_retryable(
        self, provider: MessagingProvider, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        fake_vendor.stop()
        with pytest.raises(RetryableError):
            provider.send(provider_ctx, self.message(provider))

    def test_an_invalid_recipient_is_a_permanent_error_with_a_code(
        self, provider: MessagingProvider, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        with pytest.raises(PermanentError) as raised:
            provider.send(provider_ctx, self.message(provider, to=self.invalid_recipient))
        assert raised.value.code, "PermanentError must carry the vendor's error code for the admin"
        assert str(raised.value), "PermanentError needs a readable message"
        assert fake_vendor.effects == []


# --- Signing -------------------------------------------------------------------------------------------


class SigningProviderContract:
    """Every signing provider.

    Fixtures to provide:

    * ``provider``: the ``SigningProvider`` under test.
    * ``provider_ctx``: a ``PluginContext`` whose settings hold what the provider needs (keys, endpoint).
    """

    signer_id: ClassVar[int] = 1
    documents: ClassVar[tuple[bytes, ...]] = (
        b'{"record":1,"text":"Tooth 36: composite filling"}',
        "Kezelés: 36-os fog tömése. 치료: 36번 치아 충전. Лечение: пломба.".encode(),
    )

    def _sign(self, provider: SigningProvider, ctx: Any, documents: list[bytes]) -> list[SignatureResult]:
        results = provider.sign(ctx, self.signer_id, documents)
        assert isinstance(results, list) and len(results) == len(documents), (
            "sign() must return one SignatureResult per document, in order"
        )
        return results

    def _verify(self, provider: SigningProvider, ctx: Any, document: bytes, signature: bytes) -> VerificationReport:
        report = provider.verify(ctx, document, signature)
        assert isinstance(report, VerificationReport), "verify() must return a VerificationReport, not raise"
        assert report.checks, "verify() must report the checks it made"
        assert all(check.name for check in report.checks), "every check needs a name"
        return report

    def test_sign_returns_one_signature_per_document(self, provider: SigningProvider, provider_ctx: Any) -> None:
        assert isinstance(provider, SigningProvider)
        results = self._sign(provider, provider_ctx, list(self.documents))
        for result in results:
            assert isinstance(result, SignatureResult)
            assert isinstance(result.signature, bytes) and result.signature
            assert _aware(result.signed_at), "signed_at must be timezone-aware"
            assert result.signer, "name who signed"
        assert results[0].signature != results[1].signature

    def test_a_signature_verifies(self, provider: SigningProvider, provider_ctx: Any) -> None:
        for document, result in zip(self.documents, self._sign(provider, provider_ctx, list(self.documents)),
                                    strict=True):
            report = self._verify(provider, provider_ctx, document, result.signature)
            failed = [f"{c.name}: {c.message}" for c in report.checks if not c.passed]
            assert report.valid and not failed, f"a fresh signature did not verify: {failed}"

    def test_one_changed_byte_fails_verification_naming_the_check(
        self, provider: SigningProvider, provider_ctx: Any
    ) -> None:
        document = self.documents[0]
        (result,) = self._sign(provider, provider_ctx, [document])
        tampered = bytearray(document)
        tampered[len(tampered) // 2] ^= 0x01
        report = self._verify(provider, provider_ctx, bytes(tampered), result.signature)
        assert not report.valid
        failed = [c for c in report.checks if not c.passed]
        assert failed, "an invalid report must name the check that failed"
        assert all(c.message for c in failed), "a failed check needs a readable message"

    def test_a_damaged_signature_fails_verification(self, provider: SigningProvider, provider_ctx: Any) -> None:
        document = self.documents[0]
        (result,) = self._sign(provider, provider_ctx, [document])
        damaged = bytearray(result.signature)
        damaged[-1] ^= 0xFF
        assert not self._verify(provider, provider_ctx, document, bytes(damaged)).valid
        assert not self._verify(provider, provider_ctx, document, b"").valid

    def test_a_signature_of_another_document_fails(self, provider: SigningProvider, provider_ctx: Any) -> None:
        first, second = self._sign(provider, provider_ctx, list(self.documents))
        assert not self._verify(provider, provider_ctx, self.documents[0], second.signature).valid
        assert self._verify(provider, provider_ctx, self.documents[0], first.signature).valid


# --- Lab -----------------------------------------------------------------------------------------------


class LabConnectorContract(_Faults):
    """Every lab connector.

    Fixtures to provide:

    * ``connector``: the ``LabConnector`` under test.
    * ``provider_ctx``: a ``PluginContext`` whose settings point the connector at ``fake_vendor`` with a short
      client timeout.
    * ``fake_vendor``: a running ``FakeServer`` of the lab; it records one effect per order it stores.

    And implement ``publish_result(fake_vendor, order)``: make the fake lab report a result for ``order``.
    """

    def publish_result(self, fake_vendor: FakeServer, order: LabOrder) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement publish_result(fake_vendor, order)")

    def order(self, **overrides: Any) -> LabOrder:
        number = overrides.pop("placer_order_number", f"ORD-{uuid.uuid4().hex[:10].upper()}")
        values: dict[str, Any] = {
            "placer_order_number": number,
            "patient": {"id": "42", "family_name": "Nagy", "given_name": "Éva", "birth_date": "1980-02-29",
                        "sex": "female"},
            "tests": ({"code": "2345-7", "name": "Glucose [Mass/volume] in Serum or Plasma"},),
            "ordered_at": datetime(2026, 1, 5, 8, 30, tzinfo=UTC),
            "idempotency_key": str(uuid.uuid4()),
            "ordering_provider": {"id": "7", "name": "Dr. Kovács Anna"},
        }
        values.update(overrides)
        return LabOrder(**values)

    def test_send_order_is_acknowledged(self, connector: LabConnector, provider_ctx: Any,
                                        fake_vendor: FakeServer) -> None:
        assert isinstance(connector, LabConnector)
        ack = connector.send_order(provider_ctx, self.order())
        assert isinstance(ack, str) and ack, "send_order() must return the lab's acknowledgement id"
        assert len(fake_vendor.effects) == 1

    def test_the_same_order_twice_is_not_duplicated_at_the_lab(
        self, connector: LabConnector, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        order = self.order()
        first = connector.send_order(provider_ctx, order)
        second = connector.send_order(provider_ctx, order)
        assert first == second
        assert len(fake_vendor.effects) == 1

    def test_a_lost_answer_then_a_resend_stores_the_order_once(
        self, connector: LabConnector, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        order = self.order()
        fake_vendor.hang_next(1, seconds=HANG_SECONDS, after=True)
        started = time.monotonic()
        with pytest.raises(RetryableError):
            connector.send_order(provider_ctx, order)
        assert time.monotonic() - started < HANG_SECONDS, "the client waited for the hanging lab: set a timeout"
        fake_vendor.release()
        assert connector.send_order(provider_ctx, order)
        assert len(fake_vendor.effects) == 1

    @pytest.mark.parametrize("status", [500, 503])
    def test_a_lab_server_error_is_retryable(
        self, connector: LabConnector, provider_ctx: Any, fake_vendor: FakeServer, status: int
    ) -> None:
        fake_vendor.fail_next(self.fault_burst, status=status)
        with pytest.raises(RetryableError):
            connector.send_order(provider_ctx, self.order())
        assert fake_vendor.effects == []

    def test_a_lab_that_is_down_is_retryable(
        self, connector: LabConnector, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        fake_vendor.stop()
        with pytest.raises(RetryableError):
            connector.send_order(provider_ctx, self.order())
        with pytest.raises(RetryableError):
            connector.fetch_results(provider_ctx)

    def test_fetch_results_returns_typed_results_once(
        self, connector: LabConnector, provider_ctx: Any, fake_vendor: FakeServer
    ) -> None:
        order = self.order()
        connector.send_order(provider_ctx, order)
        self.publish_result(fake_vendor, order)
        results = connector.fetch_results(provider_ctx)
        assert isinstance(results, list) and results, "fetch_results() returned nothing after the lab reported"
        for result in results:
            assert isinstance(result, LabResult), f"fetch_results() must return LabResult, not {type(result)}"
            assert result.status in {"preliminary", "final", "corrected"}
            assert result.test_code and isinstance(result.value, str)
            assert result.observed_at is None or _aware(result.observed_at)
        assert order.placer_order_number in {r.placer_order_number for r in results}
        again = connector.fetch_results(provider_ctx)
        assert order.placer_order_number not in {r.placer_order_number for r in again}, (
            "fetch_results() must return only results that arrived since the last call"
        )


# --- Country -------------------------------------------------------------------------------------------


_SEPARATORS = re.compile(r"[\s\-./]")


class CountryPluginContract:
    """Every country plugin.

    Class attributes to set:

    * ``plugin``: the plugin module (or its entry point, or ``"name = package.module"``).
    * ``country``: the ISO code of the clinic the plugin is tested in.
    * ``valid_samples``: ``{identifier_code: [(as_typed, normalised), ...]}``, for every identifier type.
    * ``invalid_samples``: ``{identifier_code: [as_typed, ...]}``, for every identifier type.
    * ``required_identifier``: the identifier ``praxis_validate_patient`` requires (with ``required_settings``),
      or None if the plugin never requires one.
    """

    plugin: ClassVar[Any] = None
    country: ClassVar[str] = "HU"
    valid_samples: ClassVar[Mapping[str, list[tuple[str, str]]]] = {}
    invalid_samples: ClassVar[Mapping[str, list[str]]] = {}
    required_identifier: ClassVar[str | None] = None
    required_settings: ClassVar[Mapping[str, Any]] = {}
    sample_patient: ClassVar[Mapping[str, Any]] = {
        "family_name": "Teszt", "given_name": "Elek", "birth_date": "1980-02-29", "sex": "male",
    }

    @pytest.fixture(scope="class")
    @classmethod
    def country_app(cls, module_plugin_app: Any) -> Any:
        """One app per contract class, with ``required_settings`` saved."""
        if cls.plugin is None:
            raise TypeError(f"{cls.__name__}: set the class attribute 'plugin' to the plugin module")
        return module_plugin_app(cls.plugin, settings=dict(cls.required_settings) or None, country=cls.country)

    @pytest.fixture(scope="class")
    @classmethod
    def identifier_types(cls, country_app: Any) -> dict[str, Any]:
        types: dict[str, Any] = {}
        for contributed in country_app.collect("praxis_identifier_types"):
            for identifier in contributed:
                assert identifier.code not in types, f"identifier type {identifier.code!r} is contributed twice"
                types[identifier.code] = identifier
        return types

    def test_every_identifier_type_has_samples(self, identifier_types: dict[str, Any]) -> None:
        missing = sorted(code for code in identifier_types
                         if not self.valid_samples.get(code) or not self.invalid_samples.get(code))
        assert not missing, f"add valid_samples and invalid_samples for: {', '.join(missing)}"
        unknown = sorted(set(self.valid_samples) - set(identifier_types))
        assert not unknown, f"samples given for identifier types the plugin does not contribute: {unknown}"

    def test_identifier_types_are_described(self, identifier_types: dict[str, Any]) -> None:
        for code, identifier in identifier_types.items():
            assert identifier.title, f"{code} needs a title"
            assert identifier.applies_to in {"patient", "staff"}, f"{code}: applies_to must be patient or staff"
            assert re.fullmatch(r"[A-Z]{2}", identifier.country), f"{code}: country must be an ISO code"

    def test_valid_samples_normalise(self, identifier_types: dict[str, Any]) -> None:
        for code, samples in self.valid_samples.items():
            normalize = identifier_types[code].normalize
            for typed, expected in samples:
                assert normalize(typed) == expected, f"{code}: {typed!r} should normalise to {expected!r}"
                assert normalize(expected) == expected, f"{code}: normalising {expected!r} again changed it"

    def test_invalid_samples_are_refused_with_a_readable_reason(self, identifier_types: dict[str, Any]) -> None:
        for code, samples in self.invalid_samples.items():
            normalize = identifier_types[code].normalize
            for typed in samples:
                with pytest.raises(ValueError) as raised:
                    normalize(typed)
                reason = str(raised.value)
                assert len(reason) >= 10 and any(c.isalpha() for c in reason), (
                    f"{code}: refusing {typed!r} needs a readable reason, got {reason!r}"
                )

    def test_mask_hides_all_but_the_last_three_characters(self, identifier_types: dict[str, Any]) -> None:
        for code, samples in self.valid_samples.items():
            mask = identifier_types[code].mask
            for _, normalised in samples:
                shown = _SEPARATORS.sub("", mask(normalised))
                value = _SEPARATORS.sub("", normalised)
                assert shown[-3:] == value[-3:], f"{code}: mask({normalised!r}) must end with {value[-3:]!r}"
                hidden = shown[:-3]
                assert hidden and not any(ch.isalnum() for ch in hidden), (
                    f"{code}: mask({normalised!r}) = {mask(normalised)!r} shows more than the last 3 characters"
                )

    def test_a_patient_without_the_required_identifier_is_refused(self, country_app: Any) -> None:
        if self.required_identifier is None:
            pytest.skip("this country plugin never requires an identifier")
        assert self.required_identifier in self.valid_samples, "give valid_samples for the required identifier"
        patient = {**self.sample_patient, "identifiers": {}}
        with pytest.raises(ValidationFailed) as refused:
            country_app.veto("praxis_validate_patient", patient=patient, is_new=True)
        fields = [error.field for error in refused.value.errors]
        assert any(self.required_identifier in field for field in fields), (
            f"the refusal should name {self.required_identifier!r}, named {fields}"
        )
        assert refused.value.plugin == country_app.plugin

    def test_a_patient_with_a_valid_identifier_is_accepted(self, country_app: Any) -> None:
        if self.required_identifier is None:
            pytest.skip("this country plugin never requires an identifier")
        _, normalised = self.valid_samples[self.required_identifier][0]
        patient = {**self.sample_patient, "identifiers": {self.required_identifier: normalised}}
        country_app.veto("praxis_validate_patient", patient=patient, is_new=True)
