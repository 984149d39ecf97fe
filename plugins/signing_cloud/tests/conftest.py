"""Fixtures: the fake e-signature vendor on loopback and a Praxis with the plugin enabled and configured.
``plugin_app`` and ``praxis_clock`` come from Praxis's pytest plugin."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from praxis_signing_cloud import plugin
from praxis_signing_cloud.fake_vendor import FakeCloudVendor

DOCTOR = {"name": "王莉", "id_type": "CRED_PSN_CH_IDCARD", "id_number": "11010519491231002X", "phone": "13812345678"}
# A 1x1 PNG stands in for the seal photo.
SEAL_PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()


@pytest.fixture(scope="module")
def fake_vendor() -> Iterator[FakeCloudVendor]:
    with FakeCloudVendor() as vendor:
        vendor.register_person(DOCTOR["name"], DOCTOR["id_number"], DOCTOR["phone"])
        yield vendor


@pytest.fixture(autouse=True)
def _fresh_vendor(request: pytest.FixtureRequest) -> Iterator[None]:
    if "fake_vendor" not in request.fixturenames:
        yield
        return
    vendor: FakeCloudVendor = request.getfixturevalue("fake_vendor")
    vendor.start()
    vendor.reset()
    yield
    vendor.release()


def _enroll(ctx: Any, signer_id: int) -> Any:
    plugin.PROVIDER.enroll(ctx, signer_id, "identity", DOCTOR)
    return plugin.PROVIDER.enroll(ctx, signer_id, "seal", {"image": SEAL_PNG})


@pytest.fixture(scope="session")
def enroll() -> Any:
    """``enroll(ctx, signer_id)``: the one-time real-name check and seal for the test doctor."""
    return _enroll


@pytest.fixture
def app(plugin_app: Any, fake_vendor: FakeCloudVendor) -> Any:
    return plugin_app(plugin, settings=fake_vendor.plugin_settings(), country="CN")
