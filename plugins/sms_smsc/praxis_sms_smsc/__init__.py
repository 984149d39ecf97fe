"""Praxis messaging plugin: SMS to patients through SMSC.ru."""

__version__ = "1.0.0"
