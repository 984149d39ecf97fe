"""Plugin settings per clinic: merged from plugins.toml defaults and the database, secrets decrypted.

Secrets are stored only as AES-GCM ciphertext bound to (clinic, plugin, field), and leave this
module only inside the settings object handed to the plugin's own code.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from core.crypto import Keyring
from core.models.plugin import PluginState
from core.plugins.policy import PluginPolicy, SecretRef
from plugin_sdk.errors import FieldError
from plugin_sdk.manifest import PluginManifest


class SettingsInvalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


def secret_aad(clinic_id: int, plugin: str, field: str) -> str:
    return f"core_plugin_state:{clinic_id}:{plugin}:{field}"


def merged_values(
    manifest: PluginManifest, policy: PluginPolicy, row: PluginState | None, keyring: Keyring, clinic_id: int
) -> dict[str, Any]:
    """The raw values the settings model is built from: file defaults, then the clinic's saved ones."""
    secret_names = set(manifest.secret_fields())
    values: dict[str, Any] = {}
    for key, value in policy.settings.items():
        if isinstance(value, dict) and set(value) <= {"env", "file"}:
            resolved = SecretRef.model_validate(value).resolve()
            if resolved is not None:
                values[key] = resolved
        else:
            values[key] = value
    if row is not None:
        values.update({k: v for k, v in row.settings.items() if k not in secret_names})
        for key, token in row.secrets.items():
            values[key] = keyring.decrypt(token, secret_aad(clinic_id, manifest.name, key))
    return values


def build(manifest: PluginManifest, values: dict[str, Any]) -> BaseModel | None:
    if manifest.settings is None:
        return None
    try:
        return manifest.settings.model_validate(values)
    except ValidationError as exc:
        raise SettingsInvalid(field_errors(exc)) from exc


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "__all__"
        errors.append(FieldError(prefix + field, error["msg"], error["type"]))
    return errors


def public_view(manifest: PluginManifest, values: dict[str, Any]) -> dict[str, Any]:
    """What an admin may see: plain values, and for each secret only whether it is set."""
    secret_names = set(manifest.secret_fields())
    view: dict[str, Any] = {}
    fields = manifest.settings.model_fields if manifest.settings else {}
    for name in fields:
        if name in secret_names:
            view[name] = {"set": bool(values.get(name))}
        elif name in values:
            view[name] = values[name]
    return view


def split_for_storage(
    manifest: PluginManifest, model: BaseModel, keyring: Keyring, clinic_id: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """Plain values as JSON, and secrets encrypted, ready for a PluginState row."""
    plain: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    secret_names = set(manifest.secret_fields())
    dumped = model.model_dump(mode="json")
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name in secret_names:
            if isinstance(value, SecretStr) and value.get_secret_value():
                secrets[name] = keyring.encrypt(
                    value.get_secret_value(), secret_aad(clinic_id, manifest.name, name)
                )
        else:
            plain[name] = dumped[name]
    return plain, secrets
