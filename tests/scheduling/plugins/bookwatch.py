"""Fixture plugin: listens to appointment events and vetoes appointments whose notes say "VETO"."""

from plugin_sdk import Category, FieldError, PluginManifest, hookimpl

manifest = PluginManifest(name="bookwatch", version="1.0.0", title="Book watch", description="Fixture.",
                          category=Category.other, api=">=1.0,<2")
VETO_CALLS: list = []


@hookimpl
def praxis_validate_appointment(ctx, appointment, is_new):
    VETO_CALLS.append((is_new, dict(appointment)))
    if "VETO" in (appointment.get("notes") or ""):
        return [FieldError("notes", "bookwatch refuses this appointment", "refused")]
    return []


@hookimpl
def praxis_on_event(ctx, event):
    return None
