"""Provider hooks, collected once per process through runtime.collect."""

from __future__ import annotations

from typing import Any

from plugin_sdk.providers import LabConnector, MessagingProvider, OutgoingMessage, SigningProvider

HOOKED = "hooked = tests.sdk.plugins.hooked"


def _only(app: Any, hook: str) -> list[Any]:
    results = [r for r in app.praxis.runtime.collect(hook) if r.plugin == "hooked"]
    assert len(results) == 1 and results[0].ok
    return results[0].value


def test_praxis_messaging_providers(plugin_app: Any) -> None:
    app = plugin_app(HOOKED)
    (provider,) = _only(app, "praxis_messaging_providers")
    assert isinstance(provider, MessagingProvider) and provider.channel == "email"
    result = provider.send(app.ctx, OutgoingMessage("email", "a@b.hu", "hi", idempotency_key="k1"))
    assert result.vendor_message_id == "m-k1"


def test_praxis_signing_providers(plugin_app: Any) -> None:
    app = plugin_app(HOOKED)
    (provider,) = _only(app, "praxis_signing_providers")
    assert isinstance(provider, SigningProvider)
    (signature,) = provider.sign(app.ctx, 3, [b"abc"])
    assert provider.verify(app.ctx, b"abc", signature.signature).valid


def test_praxis_lab_connectors(plugin_app: Any) -> None:
    app = plugin_app(HOOKED)
    (connector,) = _only(app, "praxis_lab_connectors")
    assert isinstance(connector, LabConnector) and connector.fetch_results(app.ctx) == []


def test_praxis_booking_channels(plugin_app: Any) -> None:
    app = plugin_app(HOOKED)
    (channel,) = _only(app, "praxis_booking_channels")
    assert channel.name == "hooked-portal"
