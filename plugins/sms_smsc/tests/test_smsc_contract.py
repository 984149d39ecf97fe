"""The SDK's contract for messaging vendors, run against the fake SMSC over loopback."""

from __future__ import annotations

from typing import Any

import pytest
from praxis_sms_smsc import plugin

from plugin_sdk.testing import MessagingProviderContract


class TestSmscContract(MessagingProviderContract):
    valid_recipient = "+79161234567"
    invalid_recipient = "+7916"

    @pytest.fixture
    def fake_vendor(self, fake_smsc: Any) -> Any:
        return fake_smsc

    @pytest.fixture
    def provider_ctx(self, smsc_app: Any) -> Any:
        return smsc_app.ctx

    @pytest.fixture
    def provider(self) -> Any:
        return plugin.PROVIDER
