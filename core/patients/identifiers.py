"""National identifiers: the types plugins contribute, and how a value is checked, stored and found.

A value is normalised by its type, encrypted with AES-GCM bound to its row
(``core_patient_identifier:<patient id>:<type>``), indexed with a keyed hash for exact search, and
shown masked. The plaintext never reaches the database, the audit journal or an event.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from core.crypto import Keyring
from plugin_sdk.contributions import IdentifierType

_types_cache: weakref.WeakKeyDictionary[Any, list[tuple[str, IdentifierType]]] = weakref.WeakKeyDictionary()


def _all_patient_types(runtime: Any) -> list[tuple[str, IdentifierType]]:
    cached = _types_cache.get(runtime)
    if cached is None:
        cached = []
        for result in runtime.collect("praxis_identifier_types"):
            for item in result.value or []:
                if isinstance(item, IdentifierType) and item.applies_to == "patient":
                    cached.append((result.plugin, item))
        _types_cache[runtime] = cached
    return cached


def types_for_clinic(runtime: Any, clinic_id: int) -> dict[str, IdentifierType]:
    """Patient identifier types of the plugins enabled in the clinic, by code."""
    enabled = set(runtime.enabled(clinic_id, include_open_circuits=True))
    return {t.code: t for plugin, t in _all_patient_types(runtime) if plugin in enabled}


def aad(patient_id: uuid.UUID, type_code: str) -> str:
    return f"core_patient_identifier:{patient_id}:{type_code}"


def blind_scope(type_code: str) -> str:
    return type_code


@dataclass(frozen=True)
class SealedIdentifier:
    type_code: str
    normalised: str
    ciphertext: str
    blind_index: str
    masked: str


def normalise(kind: IdentifierType, value: str) -> str:
    """The type's canonical form; ``ValueError`` with a readable reason when it is not valid."""
    try:
        result = kind.normalize(value)
    except ValueError:
        raise
    except Exception as exc:  # a plugin bug must not look like a valid value
        raise ValueError(f"could not be checked: {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, str) or not result:
        raise ValueError("could not be checked: the type returned no value")
    return result


def seal(keyring: Keyring, kind: IdentifierType, patient_id: uuid.UUID, normalised: str) -> SealedIdentifier:
    try:
        masked = kind.mask(normalised)
    except Exception:
        masked = "*" * max(len(normalised) - 2, 1) + normalised[-2:]
    return SealedIdentifier(
        type_code=kind.code,
        normalised=normalised,
        ciphertext=keyring.encrypt(normalised, aad(patient_id, kind.code)),
        blind_index=keyring.blind_index(blind_scope(kind.code), normalised),
        masked=str(masked)[:64],
    )


def search_index(keyring: Keyring, type_code: str, normalised: str) -> str:
    return keyring.blind_index(blind_scope(type_code), normalised)
