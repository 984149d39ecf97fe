"""Test plugin that only listens to domain events."""

from plugin_sdk import Category, PluginManifest, hookimpl

manifest = PluginManifest(name="listener", version="1.0.0", title="Listener", description="Records events.",
                          category=Category.other, api=">=1.0,<2")

EVENTS: list[tuple[int, str, str]] = []  # (clinic id, event name, event id)


@hookimpl
def praxis_on_event(ctx, event):
    EVENTS.append((ctx.clinic.id, event.name, str(event.id)))
