"""Praxis country plugin for China: resident identity numbers and pinyin name search."""

__version__ = "1.0.0"
