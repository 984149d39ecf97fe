"""The SDK's contract for messaging vendors, against the fake NHN Cloud (Korean numbers and text)."""

from __future__ import annotations

from typing import Any

import pytest
from praxis_sms_nhn import plugin

from plugin_sdk.testing import MessagingProviderContract


class TestNhnContract(MessagingProviderContract):
    valid_recipient = "+821012345678"
    invalid_recipient = "+8210"
    body = "[Praxis] 내일 오전 10시 김민지 원장님 진료 예약이 있습니다."

    @pytest.fixture
    def fake_vendor(self, fake_nhn: Any) -> Any:
        return fake_nhn

    @pytest.fixture
    def provider_ctx(self, nhn_app: Any) -> Any:
        return nhn_app.ctx

    @pytest.fixture
    def provider(self) -> Any:
        return plugin.PROVIDER
