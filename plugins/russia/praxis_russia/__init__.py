"""Praxis country plugin for Russia: SNILS and OMS (compulsory health insurance) policy numbers."""

__version__ = "1.0.0"
