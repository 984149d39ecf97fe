"""Bring the database schema up to date: the core's tables and each plugin's own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import core.models  # noqa: F401  (registers the core tables)

if TYPE_CHECKING:
    from core.plugins.runtime import PluginRuntime


def upgrade_core(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


def upgrade_plugin(runtime: PluginRuntime, name: str) -> None:
    SQLModel.metadata.create_all(runtime.engine)
