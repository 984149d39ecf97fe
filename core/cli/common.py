"""Helpers shared by CLI commands: bootstrapping with readable errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from core.app_context import Praxis, bootstrap
from core.crypto import MasterKeyError
from core.plugins.policy import PolicyError
from core.plugins.service import PluginOperationError
from core.plugins.settings import SettingsInvalid


def load(migrate: bool = True) -> Praxis:
    from core.schema import SchemaError

    try:
        return bootstrap(migrate=migrate)
    except (PolicyError, MasterKeyError, SchemaError) as exc:
        raise click.ClickException(str(exc)) from exc


def readable_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors into one readable line and exit code 1, instead of a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PluginOperationError as exc:
            raise click.ClickException(str(exc)) from exc
        except SettingsInvalid as exc:
            lines = "\n".join(f"  {e.field}: {e.message}" for e in exc.errors)
            raise click.ClickException(f"invalid settings:\n{lines}") from exc

    return wrapper
