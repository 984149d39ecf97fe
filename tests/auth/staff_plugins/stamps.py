"""Fixture plugin: a staff identifier type (a five-digit stamp number) and a patient type that must not
apply to staff."""

import re

from plugin_sdk import Category, IdentifierType, PluginManifest, hookimpl

manifest = PluginManifest(name="stamps", version="1.0.0", title="Stamps", description="Fixture.",
                          category=Category.country, api=">=1.0,<2")


def normalize_stamp(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{5}", digits):
        raise ValueError("a stamp number has 5 digits")
    return digits


@hookimpl
def praxis_identifier_types():
    return [IdentifierType("xx.stamp", "Stamp number", "XX", "staff", normalize_stamp, str),
            IdentifierType("xx.pid", "Patient ID", "XX", "patient", str.strip, str)]
