"""Praxis messaging plugin: e-mail to patients over SMTP."""

__version__ = "1.0.0"
