"""Build everything a Praxis process needs, once: settings, database, keys, plugins."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from core import schema, startup
from core.config import Settings, get_settings
from core.crypto import Keyring, load_keyring
from core.db import make_engine
from core.plugins.policy import load_policy, validate_plugin_defaults
from core.plugins.runtime import PluginRuntime
from core.plugins.service import PluginService

log = logging.getLogger(__name__)


@dataclass
class Praxis:
    settings: Settings
    engine: Engine
    keyring: Keyring
    runtime: PluginRuntime
    plugins: PluginService

    def close(self) -> None:
        self.runtime.close()
        self.engine.dispose()


def bootstrap(
    settings: Settings | None = None,
    *,
    entry_points: Iterable[Any] | None = None,
    migrate: bool = True,
    engine: Engine | None = None,
) -> Praxis:
    """Load policy, keys and plugins, and (unless ``migrate=False``) bring the schema up to date.

    Raises ``PolicyError`` for an invalid plugins.toml and ``MasterKeyError`` for missing keys.
    """
    settings = settings or get_settings()
    policy = load_policy(settings.plugins_file)
    keyring: Keyring = load_keyring(
        settings.master_key, settings.key_file, settings.data_dir, create=settings.is_sqlite
    )
    engine = engine or make_engine(settings.url)
    runtime = PluginRuntime(
        engine, keyring, policy,
        entry_points=entry_points,
        refresh_seconds=settings.state_refresh_seconds,
        circuit_threshold=settings.circuit_threshold,
        circuit_cooldown=timedelta(minutes=5),
        hook_timeout=settings.hook_timeout_seconds,
    )
    validate_plugin_defaults(
        settings.plugins_file, policy,
        {n: p.manifest.settings for n, p in runtime.plugins.items() if p.manifest is not None},
    )
    praxis = Praxis(settings, engine, keyring, runtime, PluginService(runtime))
    if migrate:
        schema.upgrade_core(engine, runtime)
        praxis.plugins.seed_all()
    runtime.collect("praxis_startup", app_name="praxis")
    startup.release()
    return praxis
