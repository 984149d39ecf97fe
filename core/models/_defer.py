"""Imported first by ``core.models``: SQLModel classes defined from now on build their pydantic schema on
first use (see the ``core.models`` docstring)."""

from sqlmodel import SQLModel

SQLModel.model_config["defer_build"] = True
