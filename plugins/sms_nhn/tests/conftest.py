"""One fake NHN Cloud and one Praxis app (clinic in KR) per test module; ``smsc``-style reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from praxis_sms_nhn import plugin
from praxis_sms_nhn.fake_server import FakeNhn


@pytest.fixture(scope="module")
def fake_nhn() -> Iterator[FakeNhn]:
    with FakeNhn() as fake:
        yield fake


@pytest.fixture(scope="module")
def nhn_app(module_plugin_app: Any, fake_nhn: FakeNhn) -> Any:
    return module_plugin_app(plugin, settings=fake_nhn.plugin_settings(), country="KR")


@pytest.fixture
def nhn(nhn_app: Any, fake_nhn: FakeNhn) -> Iterator[Any]:
    fake_nhn.start()
    fake_nhn.reset()
    nhn_app.configure(fake_nhn.plugin_settings())
    yield nhn_app
    fake_nhn.release()
