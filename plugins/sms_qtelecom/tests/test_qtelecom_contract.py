"""The SDK's contract for messaging vendors, against the fake QuickTelecom."""

from __future__ import annotations

from typing import Any

import pytest
from praxis_sms_qtelecom import plugin

from plugin_sdk.testing import MessagingProviderContract


class TestQtelecomContract(MessagingProviderContract):
    valid_recipient = "+79161234567"
    invalid_recipient = "+7916"

    @pytest.fixture
    def fake_vendor(self, fake_qtelecom: Any) -> Any:
        return fake_qtelecom

    @pytest.fixture
    def provider_ctx(self, qtelecom_app: Any) -> Any:
        return qtelecom_app.ctx

    @pytest.fixture
    def provider(self) -> Any:
        return plugin.PROVIDER
