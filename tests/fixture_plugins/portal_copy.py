"""Installed after ``portal``: its placeholder of the same name is refused, naming this plugin."""

from plugin_sdk import N_, Category, PluginManifest, hookimpl
from plugin_sdk.contributions import Placeholder

manifest = PluginManifest(name="portal_copy", version="1.0.0", title="Portal Copy", description="Clashes.",
                          category=Category.other, api=">=1.0,<2")


@hookimpl
def praxis_placeholders():
    return [Placeholder("portal_code", N_("Another portal code"), lambda ctx, message: "X")]
