"""Praxis messaging plugin: SMS and LMS to patients through NHN Cloud (Korea)."""

__version__ = "1.0.0"
