"""``plugins.toml``: the install-level policy and per-plugin defaults.

Which wins: the file decides what is *allowed* (a plugin the file disallows is off in every clinic,
whatever the database says) and gives *defaults*; the database holds each clinic's own choices.
A clinic's enablement and settings are seeded from the file the first time the clinic meets a
plugin; after that the database wins, field by field, for settings an admin has saved. Secrets may
be given in the file only as references to an environment variable or a file, read at use time.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator


class PolicyError(Exception):
    """plugins.toml is invalid; the message names the line and the field."""


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of 'env' or 'file'")
        return self

    def resolve(self) -> str | None:
        if self.env is not None:
            return os.environ.get(self.env)
        assert self.file is not None
        return self.file.read_text().strip() if self.file.exists() else None


class PluginPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed: bool = True
    enable_for: list[str] = Field(
        default_factory=list,
        description="Seed: enable in new clinics of these countries ('*' for every clinic).",
    )
    settings: dict[str, Any] = Field(default_factory=dict)

    def enabled_by_default(self, country: str) -> bool:
        return "*" in self.enable_for or country.upper() in {c.upper() for c in self.enable_for}


class InstallPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(default_factory=lambda: ["*"], description="Glob patterns of allowed plugins.")
    deny: list[str] = Field(default_factory=list)


class PluginsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    install: InstallPolicy = Field(default_factory=InstallPolicy)
    plugins: dict[str, PluginPolicy] = Field(default_factory=dict)

    def is_allowed(self, name: str) -> bool:
        if any(fnmatch.fnmatch(name, pattern) for pattern in self.install.deny):
            return False
        if name in self.plugins and not self.plugins[name].allowed:
            return False
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.install.allow)

    def for_plugin(self, name: str) -> PluginPolicy:
        return self.plugins.get(name, PluginPolicy())


def load_policy(path: Path) -> PluginsFile:
    """Read and validate the file; a missing file means 'everything allowed, nothing by default'."""
    if not path.exists():
        return PluginsFile()
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    try:
        return PluginsFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_describe(path, text, exc.errors())) from exc


def validate_plugin_defaults(path: Path, policy: PluginsFile, schemas: dict[str, type[BaseModel] | None]) -> None:
    """Check each plugin's [plugins.X.settings] against the plugin's settings schema, field by field."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    errors: list[dict[str, Any]] = []
    for name, plugin_policy in policy.plugins.items():
        if name not in schemas or not plugin_policy.settings:
            continue
        schema = schemas[name]
        for key, value in plugin_policy.settings.items():
            loc = ("plugins", name, "settings", key)
            if schema is None or key not in schema.model_fields:
                errors.append({"loc": loc, "msg": f"plugin {name!r} has no setting {key!r}"})
                continue
            if isinstance(value, dict) and set(value) <= {"env", "file"}:
                try:
                    SecretRef.model_validate(value)
                except ValidationError as exc:
                    errors.extend({"loc": loc, "msg": e["msg"]} for e in exc.errors())
                continue
            try:
                TypeAdapter(schema.model_fields[key].annotation).validate_python(value)
            except ValidationError as exc:
                errors.extend({"loc": loc, "msg": e["msg"]} for e in exc.errors())
    if errors:
        raise PolicyError(_describe(path, text, errors))


def _describe(path: Path, text: str, errors: list[dict[str, Any]]) -> str:
    lines = []
    for error in errors:
        loc = tuple(str(p) for p in error["loc"])
        line = _line_of(text, loc)
        where = f"{path}:{line}" if line else str(path)
        lines.append(f"{where}: field '{'.'.join(loc)}': {error['msg']}")
    return "invalid plugins file:\n  " + "\n  ".join(lines)


_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"']+)\s*=")


def _line_of(text: str, loc: tuple[str, ...]) -> int | None:
    """Best line for a field path: the key's own line, else its table's header."""
    best, best_len, table = None, 0, ()
    for number, raw in enumerate(text.splitlines(), start=1):
        if match := _HEADER.match(raw):
            table = tuple(part.strip().strip("\"'") for part in match.group(1).split("."))
            path = table
        elif match := _KEY.match(raw):
            path = table + tuple(part.strip().strip("\"'") for part in match.group(1).split("."))
        else:
            continue
        common = 0
        for a, b in zip(path, loc, strict=False):
            if a != b:
                break
            common += 1
        if common == len(path) and common > best_len:
            best, best_len = number, common
    return best
