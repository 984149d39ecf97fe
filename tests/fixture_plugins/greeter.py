"""A well-behaved plugin: settings with a secret, a veto hook, an event hook, a menu item."""

from pydantic import BaseModel, Field, SecretStr

from plugin_sdk import Category, ConnectionCheck, FieldError, MenuItem, Panel, PluginManifest, hookimpl

EVENTS: list = []


class Settings(BaseModel):
    endpoint: str = Field("https://greeter.example/api", pattern=r"^https?://")
    retries: int = Field(3, ge=0, le=10)
    api_key: SecretStr | None = None


manifest = PluginManifest(
    name="greeter", version="1.2.0", title="Greeter", description="Says hello.",
    category=Category.messaging, countries=("HU",), api=">=1.0,<2", settings=Settings,
)


@hookimpl
def praxis_validate_patient(ctx, patient, is_new):
    if patient.get("family_name") == "Forbidden":
        return [FieldError("family_name", "greeter refuses this name")]
    return []


@hookimpl
def praxis_on_event(ctx, event):
    EVENTS.append((ctx.clinic.id, event.name))


@hookimpl
def praxis_menu_items(ctx):
    return [MenuItem(title="Greetings", url="/greeter")]


@hookimpl
def praxis_test_connection(ctx, settings):
    return ConnectionCheck(settings.endpoint.startswith("https://"), f"reached {settings.endpoint}")


@hookimpl
def praxis_panels(ctx, where):
    return [Panel(title="Greetings sent", url="/patients/{patient_id}/greetings")] if where == "patient" else []
