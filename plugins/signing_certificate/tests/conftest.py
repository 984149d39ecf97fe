"""Fixtures: a throw-away PKI (root CA, doctors, a TSA certificate), the fake TSA on loopback, and a Praxis
with the plugin enabled and configured. ``plugin_app`` and ``praxis_clock`` come from Praxis's pytest plugin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from praxis_signing_certificate import plugin
from praxis_signing_certificate.fake_tsa import FakeTSA
from praxis_signing_certificate.testing import Issued, TestPKI

PASSWORD = "p12-Passw0rd!"
SECRET = "a-long-key-encryption-secret-for-tests-0123456789"


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    return TestPKI()


@pytest.fixture(scope="session")
def doctor(pki: TestPKI) -> Issued:
    return pki.doctor("Dr. Kim Minji")


@pytest.fixture(scope="module")
def fake_tsa(pki: TestPKI) -> Iterator[FakeTSA]:
    with FakeTSA(pki.tsa()) as tsa:
        yield tsa


@pytest.fixture(autouse=True)
def _fresh_tsa(request: pytest.FixtureRequest) -> Iterator[None]:
    if "fake_tsa" not in request.fixturenames:
        yield
        return
    tsa: FakeTSA = request.getfixturevalue("fake_tsa")
    tsa.start()
    tsa.reset()
    yield
    tsa.release()


def _settings_for(pki: TestPKI, tsa: FakeTSA, **overrides: Any) -> dict[str, Any]:
    return {"tsa_url": tsa.url, "tsa_timeout_seconds": 2.0, "trusted_roots_pem": pki.pem,
            "key_encryption_secret": SECRET, **overrides}


def _enroll(app_or_ctx: Any, signer_id: int, issued: Issued, password: str = PASSWORD) -> Any:
    ctx = getattr(app_or_ctx, "ctx", app_or_ctx)
    return plugin.PROVIDER.enroll(ctx, signer_id, "certificate",
                                  {"pkcs12": issued.pkcs12_b64(password), "password": password})


@pytest.fixture(scope="session")
def settings_for() -> Any:
    """``settings_for(pki, fake_tsa, **overrides)``: the plugin settings pointing at the fake TSA."""
    return _settings_for


@pytest.fixture(scope="session")
def enroll() -> Any:
    """``enroll(app_or_ctx, signer_id, issued, password=PASSWORD)``: upload a certificate for a signer."""
    return _enroll


@pytest.fixture
def app(plugin_app: Any, pki: TestPKI, fake_tsa: FakeTSA) -> Any:
    return plugin_app(plugin, settings=_settings_for(pki, fake_tsa), country="KR")
