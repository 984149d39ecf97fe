"""The typed manifest every plugin module exposes as ``manifest``.

The runtime validates it when the plugin is loaded; a manifest that does not validate quarantines
the plugin with the validation message as the reason.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
PERMISSION_CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class Category(StrEnum):
    country = "country"
    signing = "signing"
    messaging = "messaging"
    lab = "lab"
    booking = "booking"
    other = "other"


class PermissionSpec(BaseModel):
    """A permission a plugin adds; roles can be granted it like any core permission."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Dotted code, prefixed with the plugin name, e.g. 'eeszt.break_glass'.")
    title: str = Field(description="Translatable msgid shown in the roles editor.")

    @field_validator("code")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not PERMISSION_CODE.match(value):
            raise ValueError("must be dotted lower-case words, e.g. 'eeszt.break_glass'")
        return value


class PluginManifest(BaseModel):
    """What the runtime needs to know about a plugin before it runs any of its code."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str = Field(description="Unique plugin name; equals the entry-point name.")
    version: str = Field(description="The plugin's own version (PEP 440).")
    title: str = Field(description="Translatable msgid of the plugin's display name.")
    description: str = Field(description="Translatable msgid of a one-paragraph description.")
    category: Category
    countries: tuple[str, ...] = Field(default=(), description="ISO 3166 alpha-2 codes; empty means any.")
    requires: dict[str, str] = Field(
        default_factory=dict, description="Other plugins this one needs: name -> PEP 440 range."
    )
    api: str = Field(description="The plugin_sdk API range this plugin supports, e.g. '>=1.0,<2'.")
    permissions: tuple[PermissionSpec, ...] = ()
    settings: type[BaseModel] | None = Field(
        default=None, description="Pydantic model of the per-clinic settings; SecretStr fields are secrets."
    )
    handles_patient_data: bool = False
    translations_domain: str | None = Field(
        default=None, description="gettext domain of the plugin's catalog (defaults to praxis_<name>)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PLUGIN_NAME.match(value):
            raise ValueError("must be 2-41 characters: lower-case letters, digits and '_', starting with a letter")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        try:
            Version(value)
        except InvalidVersion as exc:
            raise ValueError(f"not a PEP 440 version: {value!r}") from exc
        return value

    @field_validator("api")
    @classmethod
    def _api(cls, value: str) -> str:
        _specifier(value)
        return value

    @field_validator("requires")
    @classmethod
    def _requires(cls, value: dict[str, str]) -> dict[str, str]:
        for name, spec in value.items():
            if not PLUGIN_NAME.match(name):
                raise ValueError(f"dependency {name!r} is not a plugin name")
            _specifier(spec)
        return value

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for code in value:
            if not re.fullmatch(r"[A-Z]{2}", code):
                raise ValueError(f"country {code!r} is not an ISO 3166 alpha-2 code such as 'HU'")
        return value

    @field_validator("permissions")
    @classmethod
    def _own_permissions(cls, value: tuple[PermissionSpec, ...], info: Any) -> tuple[PermissionSpec, ...]:
        name = info.data.get("name")
        for perm in value:
            if name and not perm.code.startswith(name + "."):
                raise ValueError(f"permission {perm.code!r} must start with '{name}.'")
        return value

    @property
    def domain(self) -> str:
        return self.translations_domain or f"praxis_{self.name}"

    def secret_fields(self) -> list[str]:
        """Names of the settings fields that hold secrets (typed ``SecretStr``)."""
        if self.settings is None:
            return []
        return [name for name, field in self.settings.model_fields.items() if _is_secret(field.annotation)]

    def requirement(self, name: str) -> SpecifierSet:
        return SpecifierSet(self.requires[name])


def _specifier(value: str) -> SpecifierSet:
    try:
        return SpecifierSet(value)
    except InvalidSpecifier as exc:
        raise ValueError(f"not a PEP 440 version range: {value!r}") from exc


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(arg is SecretStr for arg in getattr(annotation, "__args__", ()))
