"""Praxis messaging plugin: SMS to patients through QuickTelecom (Russia)."""

__version__ = "1.0.0"
