"""Praxis country plugin for Korea: resident registration numbers and initial-consonant name search."""

__version__ = "1.0.0"
