"""The SDK's contract for lab connectors, run against the fake FHIR lab over loopback."""

from __future__ import annotations

from typing import Any

import pytest
from praxis_lab_fhir import plugin

from plugin_sdk.providers import LabOrder
from plugin_sdk.testing import LabConnectorContract


class TestFhirContract(LabConnectorContract):
    @pytest.fixture
    def fake_vendor(self, fake_fhir: Any) -> Any:
        return fake_fhir

    @pytest.fixture
    def provider_ctx(self, fhir_app: Any) -> Any:
        return fhir_app.ctx

    @pytest.fixture
    def connector(self) -> Any:
        return plugin.CONNECTOR

    def publish_result(self, fake_vendor: Any, order: LabOrder) -> None:  # type: ignore[override]
        fake_vendor.report(order.placer_order_number, [{"code": order.tests[0]["code"], "value": 5.4,
                                                        "units": "mmol/L", "low": 3.9, "high": 5.6}])
