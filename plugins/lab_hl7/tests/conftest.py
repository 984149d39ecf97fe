"""Shared fixtures: one fake LIS and one Praxis app (clinic in HU, plugin enabled) per test module.

``module_plugin_app`` and ``praxis_clock`` come from Praxis's pytest plugin (``plugin_sdk.testing``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from praxis_lab_hl7 import plugin
from praxis_lab_hl7.fake_lab import FakeLis
from praxis_lab_hl7.listener import LISTENERS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def fake_lis() -> Iterator[FakeLis]:
    with FakeLis() as fake:
        yield fake


@pytest.fixture(scope="module")
def hl7_app(module_plugin_app: Any, fake_lis: FakeLis) -> Iterator[Any]:
    port = free_port()
    app = module_plugin_app(plugin, settings=fake_lis.plugin_settings(listener_host="127.0.0.1",
                                                                       listener_port=port))
    yield app
    LISTENERS.stop(app.clinic_id)
