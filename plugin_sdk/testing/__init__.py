"""Testing tools for Praxis plugins: fixtures, a loopback fake-vendor server and contract tests.

The pytest fixtures (``praxis_clock``, ``plugin_app``) load automatically once Praxis is installed. Import the
rest from here::

    from plugin_sdk.testing import FakeServer, MessagingProviderContract

Contract tests: subclass the contract of your connector's kind in a class named ``Test...`` and provide the
fixtures its docstring lists; every connector of a kind must pass the same tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plugin_sdk.testing.clock import PraxisClock
from plugin_sdk.testing.fake_server import FakeServer, RecordedRequest

if TYPE_CHECKING:
    from plugin_sdk.testing.app import PluginApp, build_plugin_app
    from plugin_sdk.testing.contracts import (
        CountryPluginContract,
        LabConnectorContract,
        MessagingProviderContract,
        SigningProviderContract,
    )

_LAZY = {
    "PluginApp": "plugin_sdk.testing.app",
    "build_plugin_app": "plugin_sdk.testing.app",
    "CountryPluginContract": "plugin_sdk.testing.contracts",
    "LabConnectorContract": "plugin_sdk.testing.contracts",
    "MessagingProviderContract": "plugin_sdk.testing.contracts",
    "SigningProviderContract": "plugin_sdk.testing.contracts",
}


def __getattr__(name: str) -> Any:
    # Contracts import pytest and the app builder imports the core: load them only when asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'plugin_sdk.testing' has no attribute {name!r}")


__all__ = [
    "CountryPluginContract",
    "FakeServer",
    "LabConnectorContract",
    "MessagingProviderContract",
    "PluginApp",
    "PraxisClock",
    "RecordedRequest",
    "SigningProviderContract",
    "build_plugin_app",
]
