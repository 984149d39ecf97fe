"""The SDK's contract for messaging vendors, against a real SMTP server on loopback.

SMTP can neither deduplicate nor be asked what became of a message, so the two contract tests that require
``query_status`` to find a message are replaced by tests of what the plugin does instead: a lost final reply is an
``UnknownOutcomeError`` and ``query_status`` answers None ("cannot tell"), so the outbox leaves it to a person.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from praxis_email_smtp import plugin

from plugin_sdk import UnknownOutcomeError
from plugin_sdk.providers import OutgoingMessage
from plugin_sdk.testing import MessagingProviderContract

NO_STATUS_QUERY = "SMTP has no status query: query_status() cannot tell and returns None (tested below)"


class TestSmtpContract(MessagingProviderContract):
    valid_recipient = "patient@example.com"
    invalid_recipient = "nobody@invalid.example"

    @pytest.fixture
    def fake_vendor(self, fake_smtp: Any) -> Any:
        return fake_smtp

    @pytest.fixture
    def provider_ctx(self, smtp_app: Any) -> Any:
        return smtp_app.ctx

    @pytest.fixture
    def provider(self) -> Any:
        return plugin.PROVIDER

    @pytest.mark.skip(reason=NO_STATUS_QUERY)
    def test_the_same_idempotency_key_is_not_delivered_twice(self) -> None: ...

    @pytest.mark.skip(reason=NO_STATUS_QUERY)
    def test_a_lost_answer_never_leads_to_a_second_delivery(self) -> None: ...

    def test_a_lost_answer_is_left_to_a_person(self, provider: Any, provider_ctx: Any, fake_vendor: Any) -> None:
        message = OutgoingMessage(channel="email", to=self.valid_recipient, body=self.body, subject="Reminder",
                                  idempotency_key=str(uuid.uuid4()))
        fake_vendor.hang_next(1, seconds=8, after=True)
        with pytest.raises(UnknownOutcomeError):
            provider.send(provider_ctx, message)
        fake_vendor.release()
        assert provider.deduplicates is False and provider.query_status(provider_ctx, message) is None
        assert len(fake_vendor.effects) == 1
