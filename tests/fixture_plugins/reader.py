"""Reads core data through the SDK context (declares that it handles patient data)."""

from plugin_sdk import Category, PluginManifest

manifest = PluginManifest(name="reader", version="1.0.0", title="Reader", description="Reads patients",
                          category=Category.country, countries=("HU",), api=">=1.0,<2", handles_patient_data=True)
