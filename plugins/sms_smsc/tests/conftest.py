"""Shared fixtures: one fake SMSC and one Praxis app (clinic in RU, plugin enabled) per test module.

``module_plugin_app`` and ``praxis_clock`` come from Praxis's pytest plugin (``plugin_sdk.testing``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from praxis_sms_smsc import plugin
from praxis_sms_smsc.fake_server import FakeSmsc


@pytest.fixture(scope="module")
def fake_smsc() -> Iterator[FakeSmsc]:
    with FakeSmsc(undeliverable=("+79990000008",)) as fake:
        yield fake


@pytest.fixture(scope="module")
def smsc_app(module_plugin_app: Any, fake_smsc: FakeSmsc) -> Any:
    return module_plugin_app(plugin, settings=fake_smsc.plugin_settings(), country="RU")


@pytest.fixture
def smsc(smsc_app: Any, fake_smsc: FakeSmsc) -> Iterator[Any]:
    """The app with the fake running, its faults and records cleared, and the saved settings restored."""
    fake_smsc.start()
    fake_smsc.reset()
    smsc_app.configure(fake_smsc.plugin_settings())
    yield smsc_app
    fake_smsc.release()
