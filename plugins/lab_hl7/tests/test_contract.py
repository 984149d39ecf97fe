"""The SDK's contract for lab connectors, run against the fake LIS over loopback (MLLP)."""

from __future__ import annotations

from typing import Any

import pytest
from praxis_lab_hl7 import plugin

from plugin_sdk.providers import LabOrder
from plugin_sdk.testing import LabConnectorContract


class TestHl7Contract(LabConnectorContract):
    @pytest.fixture
    def fake_vendor(self, fake_lis: Any) -> Any:
        fake_lis.push_to = None  # results wait at the lab for the connector's query
        return fake_lis

    @pytest.fixture
    def provider_ctx(self, hl7_app: Any) -> Any:
        return hl7_app.ctx

    @pytest.fixture
    def connector(self) -> Any:
        return plugin.CONNECTOR

    def publish_result(self, fake_vendor: Any, order: LabOrder) -> None:  # type: ignore[override]
        fake_vendor.report(order.placer_order_number, [{"code": order.tests[0]["code"], "value": "5.4",
                                                        "units": "mmol/L", "range": "3.9-5.6"}])
