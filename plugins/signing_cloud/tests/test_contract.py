"""The signing contract every signing provider must pass, against the fake vendor.

The contract signs with ``sign()``; a cloud provider refuses that without an intent check, so ``_sign`` is
overridden to do what the core does: ``begin`` a session, answer the SMS code the fake vendor sent, then
``sign_in_session``. Every assertion of the contract about the results still applies.
"""

from __future__ import annotations

from typing import Any

import pytest
from praxis_signing_cloud import plugin

from plugin_sdk.providers import ChallengeStatus, SignatureResult, SigningProvider
from plugin_sdk.testing import SigningProviderContract


@pytest.fixture(scope="module")
def contract_app(module_plugin_app: Any, fake_vendor: Any, enroll: Any) -> Any:
    app = module_plugin_app(plugin, settings=fake_vendor.plugin_settings(), country="CN")
    enroll(app.ctx, SigningProviderContract.signer_id)
    return app


class TestCloudSigningContract(SigningProviderContract):
    @pytest.fixture(autouse=True)
    def _vendor(self, fake_vendor: Any) -> None:
        self.fake_vendor = fake_vendor

    @pytest.fixture
    def provider_ctx(self, contract_app: Any) -> Any:
        return contract_app.ctx

    @pytest.fixture
    def provider(self) -> Any:
        return plugin.PROVIDER

    def _sign(self, provider: SigningProvider, ctx: Any, documents: list[bytes]) -> list[SignatureResult]:
        challenge = provider.begin(ctx, self.signer_id, len(documents))
        outcome = provider.complete(ctx, challenge.session_id, self.fake_vendor.last_code())
        assert outcome.status == ChallengeStatus.passed
        results = provider.sign_in_session(ctx, challenge.session_id, self.signer_id, documents)
        assert isinstance(results, list) and len(results) == len(documents)
        return results
