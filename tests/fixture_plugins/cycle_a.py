from plugin_sdk import Category, PluginManifest

manifest = PluginManifest(name="cycle_a", version="1.0.0", title="A", description="", category=Category.other,
                          api=">=1.0", requires={"cycle_b": ">=0"})
