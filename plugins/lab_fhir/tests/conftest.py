"""Shared fixtures: one fake FHIR lab and one Praxis app (plugin enabled) per test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from praxis_lab_fhir import plugin
from praxis_lab_fhir.fake_server import FakeFhirLab


@pytest.fixture(scope="module")
def fake_fhir() -> Iterator[FakeFhirLab]:
    with FakeFhirLab() as fake:
        yield fake


@pytest.fixture(scope="module")
def fhir_app(module_plugin_app: Any, fake_fhir: FakeFhirLab) -> Any:
    return module_plugin_app(plugin, settings=fake_fhir.plugin_settings())
