"""Raises in its event and validation-free hooks: used to test isolation and the circuit breaker."""

from plugin_sdk import Category, PluginManifest, hookimpl

manifest = PluginManifest(name="flaky", version="1.0.0", title="Flaky", description="Always fails",
                          category=Category.other, api=">=1.0,<2")


@hookimpl
def praxis_on_event(ctx, event):
    raise RuntimeError("vendor exploded")


@hookimpl
def praxis_menu_items(ctx):
    raise RuntimeError("menu exploded")
