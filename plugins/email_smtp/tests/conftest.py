"""A real aiosmtpd server on loopback (plain, per module) and one Praxis app configured for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from praxis_email_smtp import plugin
from praxis_email_smtp.fake_server import FakeSmtp


@pytest.fixture(scope="module")
def fake_smtp() -> Iterator[FakeSmtp]:
    with FakeSmtp() as fake:
        yield fake


@pytest.fixture(scope="module")
def smtp_app(module_plugin_app: Any, fake_smtp: FakeSmtp) -> Any:
    return module_plugin_app(plugin, settings=fake_smtp.plugin_settings())


@pytest.fixture
def smtp(smtp_app: Any, fake_smtp: FakeSmtp) -> Iterator[Any]:
    fake_smtp.start()
    fake_smtp.reset()
    fake_smtp.messages.clear()
    smtp_app.configure(fake_smtp.plugin_settings())
    yield smtp_app
    fake_smtp.release()
