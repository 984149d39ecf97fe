from plugin_sdk import Category, PluginManifest, hookimpl

manifest = PluginManifest(
    name="needs_greeter", version="0.1.0", title="Needs greeter", description="Depends on greeter.",
    category=Category.other, api=">=1.0,<2", requires={"greeter": ">=1.0"},
)


@hookimpl
def praxis_menu_items(ctx):
    return []
