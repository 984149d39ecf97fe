"""Installed but not enabled in the test clinic: its identifier type and keys must not apply there."""

from plugin_sdk import Category, IdentifierType, PluginManifest, hookimpl

manifest = PluginManifest(name="other", version="1.0.0", title="Other", description="Fixture.",
                          category=Category.country, api=">=1.0,<2")


@hookimpl
def praxis_identifier_types():
    return [IdentifierType("yy.id", "Other ID", "YY", "patient", str.strip, str)]


@hookimpl
def praxis_name_search_keys(text):
    return ["zzz-other"]
