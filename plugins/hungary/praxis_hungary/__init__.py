"""Praxis country plugin for Hungary: TAJ numbers of patients and stamp numbers of doctors."""

__version__ = "1.0.0"
