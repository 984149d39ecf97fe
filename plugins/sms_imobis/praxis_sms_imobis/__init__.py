"""Praxis messaging plugin: SMS to patients through Imobis (Russia)."""

__version__ = "1.0.0"
