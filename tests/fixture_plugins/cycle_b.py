from plugin_sdk import Category, PluginManifest

manifest = PluginManifest(name="cycle_b", version="1.0.0", title="B", description="", category=Category.other,
                          api=">=1.0", requires={"cycle_a": ">=0"})
