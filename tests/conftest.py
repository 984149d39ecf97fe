"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when
PRAXIS_TEST_DATABASE_URL points at a server (each test gets its own fresh database)."""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from core.app_context import Praxis, bootstrap
from core.config import Settings
from core.models.clinic import Clinic

PG_ADMIN_URL = os.environ.get("PRAXIS_TEST_DATABASE_URL")


def fixture_plugin(name: str, module: str | None = None) -> EntryPoint:
    """An entry point for a plugin module under tests/fixture_plugins, as if installed."""
    return EntryPoint(name=name, value=f"tests.fixture_plugins.{module or name}", group="praxis.plugins")


@pytest.fixture
def fresh_db_url(tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables), for tests of migrating from scratch."""
    if not PG_ADMIN_URL:
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"praxis_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A database with the core schema already migrated: a copy of a template migrated once per process
    (the SDK's TestDatabase), which is what a fresh migration gives, at a fraction of the cost."""
    from plugin_sdk.testing.app import TestDatabase

    database = TestDatabase(tmp_path, PG_ADMIN_URL or "")
    yield database.url
    database.drop()


@pytest.fixture
def master_key() -> str:
    return f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}"


@pytest.fixture
def make_settings(tmp_path: Path, db_url: str, master_key: str) -> Callable[..., Settings]:
    def make(plugins_toml: str | None = None, **overrides: Any) -> Settings:
        plugins_file = tmp_path / "plugins.toml"
        if plugins_toml is not None:
            plugins_file.write_text(plugins_toml, encoding="utf-8")
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": db_url,
            "plugins_file": plugins_file,
            "master_key": master_key,
            "state_refresh_seconds": 0.0,
            "embedded_worker": False,
            "circuit_threshold": 3,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_praxis(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Praxis]]:
    """Build a Praxis with exactly the given fixture plugins installed (none by default)."""
    made: list[Praxis] = []

    def make(entry_points: list[EntryPoint] | None = None, plugins_toml: str | None = None,
             installed: bool = False, **overrides: Any) -> Praxis:
        """``installed=True`` loads the plugins installed in this environment instead of ``entry_points``."""
        eps = None if installed else (entry_points or [])
        praxis = bootstrap(make_settings(plugins_toml, **overrides), entry_points=eps)
        made.append(praxis)
        return praxis

    yield make
    for praxis in made:
        praxis.close()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Praxis], None]:
    """Point the ``praxis`` CLI (run in-process with click's CliRunner) at a test Praxis's database."""
    from core.config import get_settings

    def point(praxis: Praxis) -> None:
        s = praxis.settings
        for key, value in {"PRAXIS_DATA_DIR": str(s.data_dir), "DATABASE_URL": s.url,
                           "PRAXIS_MASTER_KEY": s.master_key or "", "PRAXIS_PLUGINS_FILE": str(s.plugins_file),
                           "PRAXIS_STATE_REFRESH_SECONDS": "0"}.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield point
    get_settings.cache_clear()


def add_clinic(praxis: Praxis, name: str = "Budapest", country: str = "HU",
               timezone: str = "Europe/Budapest", locale: str = "hu") -> int:
    from core.db import transaction

    with transaction(praxis.engine) as session:
        clinic = Clinic(name=name, country=country, timezone=timezone, locale=locale)
        session.add(clinic)
        session.flush()
        praxis.plugins.seed(session, clinic)
        assert clinic.id is not None
        clinic_id = clinic.id
    praxis.runtime.state.invalidate()
    return clinic_id
