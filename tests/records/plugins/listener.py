"""A fixture plugin that subscribes to domain events, so the records' events are queued for someone."""

from plugin_sdk import Category, PluginManifest, hookimpl

manifest = PluginManifest(name="records_listener", version="1.0.0", title="Listener", description="Hears events.",
                          category=Category.other, api=">=1.0,<2")
SEEN: list[str] = []


@hookimpl
def praxis_on_event(ctx, event):  # type: ignore[no-untyped-def]
    SEEN.append(event.name)
