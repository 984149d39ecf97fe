"""One fake Aliyun and one Praxis app (clinic in CN) per test module; faults and records reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from praxis_sms_aliyun import plugin
from praxis_sms_aliyun.fake_server import FakeAliyunSms

TOKEN = "push-token-0123456789abcdef"


@pytest.fixture(scope="module")
def fake_aliyun() -> Iterator[FakeAliyunSms]:
    with FakeAliyunSms() as fake:
        yield fake


@pytest.fixture(scope="module")
def aliyun_app(module_plugin_app: Any, fake_aliyun: FakeAliyunSms) -> Any:
    return module_plugin_app(plugin, settings=fake_aliyun.plugin_settings(callback_token=TOKEN), country="CN")


@pytest.fixture
def aliyun(aliyun_app: Any, fake_aliyun: FakeAliyunSms) -> Iterator[Any]:
    fake_aliyun.start()
    fake_aliyun.reset()
    aliyun_app.configure(fake_aliyun.plugin_settings(callback_token=TOKEN))
    yield aliyun_app
    fake_aliyun.release()
