"""Fixture plugin: another staff identifier type, enabled only in a second clinic."""

from plugin_sdk import Category, IdentifierType, PluginManifest, hookimpl

manifest = PluginManifest(name="licences", version="1.0.0", title="Licences", description="Fixture.",
                          category=Category.country, api=">=1.0,<2")


@hookimpl
def praxis_identifier_types():
    return [IdentifierType("yy.licence", "Licence", "YY", "staff", lambda v: v.strip().upper(), str)]
