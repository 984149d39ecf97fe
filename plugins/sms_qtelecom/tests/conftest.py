"""One fake QuickTelecom and one Praxis app (clinic in RU) per test module; reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from praxis_sms_qtelecom import plugin
from praxis_sms_qtelecom.fake_server import FakeQtelecom


@pytest.fixture(scope="module")
def fake_qtelecom() -> Iterator[FakeQtelecom]:
    with FakeQtelecom() as fake:
        yield fake


@pytest.fixture(scope="module")
def qtelecom_app(module_plugin_app: Any, fake_qtelecom: FakeQtelecom) -> Any:
    return module_plugin_app(plugin, settings=fake_qtelecom.plugin_settings(), country="RU")


@pytest.fixture
def qtelecom(qtelecom_app: Any, fake_qtelecom: FakeQtelecom) -> Iterator[Any]:
    fake_qtelecom.start()
    fake_qtelecom.reset()
    qtelecom_app.configure(fake_qtelecom.plugin_settings())
    yield qtelecom_app
    fake_qtelecom.release()
