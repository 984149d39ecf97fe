"""Praxis core: clinics, users, patients and appointments, and the runtime plugins plug into."""

from core import startup

__version__ = "0.1.0"

startup.hold()  # garbage collections wait until the first bootstrap() is done (see core.startup)
startup.import_fastapi()  # with the OpenAPI document's models built when first needed
