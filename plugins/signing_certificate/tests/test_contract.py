"""The signing contract every signing provider must pass, against the fake TSA."""

from __future__ import annotations

from typing import Any

import pytest
from praxis_signing_certificate import plugin

from plugin_sdk.testing import SigningProviderContract


@pytest.fixture(scope="module")
def contract_app(module_plugin_app: Any, pki: Any, doctor: Any, fake_tsa: Any, settings_for: Any,
                 enroll: Any) -> Any:
    app = module_plugin_app(plugin, settings=settings_for(pki, fake_tsa), country="KR")
    enroll(app, SigningProviderContract.signer_id, doctor)
    return app


class TestCertificateSigningContract(SigningProviderContract):
    @pytest.fixture
    def provider_ctx(self, contract_app: Any) -> Any:
        return contract_app.ctx

    @pytest.fixture
    def provider(self) -> Any:
        return plugin.PROVIDER
