from plugin_sdk import PluginManifest  # noqa: F401

manifest = {"name": "bad_manifest", "version": "not a version", "title": "Bad", "description": "",
            "category": "nonsense", "api": ">=1.0"}
