"""The SDK's contract for messaging vendors, against the fake Imobis."""

from __future__ import annotations

from typing import Any

import pytest
from praxis_sms_imobis import plugin

from plugin_sdk.testing import MessagingProviderContract


class TestImobisContract(MessagingProviderContract):
    valid_recipient = "+79161234567"
    invalid_recipient = "+7916"

    @pytest.fixture
    def fake_vendor(self, fake_imobis: Any) -> Any:
        return fake_imobis

    @pytest.fixture
    def provider_ctx(self, imobis_app: Any) -> Any:
        return imobis_app.ctx

    @pytest.fixture
    def provider(self) -> Any:
        return plugin.PROVIDER
