"""One fake Imobis and one Praxis app (clinic in RU) per test module; reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from praxis_sms_imobis import plugin
from praxis_sms_imobis.fake_server import FakeImobis


@pytest.fixture(scope="module")
def fake_imobis() -> Iterator[FakeImobis]:
    with FakeImobis() as fake:
        yield fake


@pytest.fixture(scope="module")
def imobis_app(module_plugin_app: Any, fake_imobis: FakeImobis) -> Any:
    return module_plugin_app(plugin, settings=fake_imobis.plugin_settings(), country="RU")


@pytest.fixture
def imobis(imobis_app: Any, fake_imobis: FakeImobis) -> Iterator[Any]:
    fake_imobis.start()
    fake_imobis.reset()
    imobis_app.configure(fake_imobis.plugin_settings())
    yield imobis_app
    fake_imobis.release()
