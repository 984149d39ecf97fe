"""Praxis core: clinics, users, patients and appointments, and the runtime plugins plug into."""

__version__ = "0.1.0"
