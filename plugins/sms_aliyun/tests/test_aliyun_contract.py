"""The SDK's contract for messaging vendors, against the fake Aliyun SMS (mainland numbers)."""

from __future__ import annotations

from typing import Any

import pytest
from praxis_sms_aliyun import plugin

from plugin_sdk.testing import MessagingProviderContract


class TestAliyunContract(MessagingProviderContract):
    valid_recipient = "+8613800138000"
    invalid_recipient = "+86138"

    @pytest.fixture
    def fake_vendor(self, fake_aliyun: Any) -> Any:
        return fake_aliyun

    @pytest.fixture
    def provider_ctx(self, aliyun_app: Any) -> Any:
        return aliyun_app.ctx

    @pytest.fixture
    def provider(self) -> Any:
        return plugin.PROVIDER
