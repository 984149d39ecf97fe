from plugin_sdk import Category, PluginManifest

manifest = PluginManifest(name="future_api", version="1.0.0", title="Future", description="Needs API 2",
                          category=Category.other, api=">=2.0")
