"""Re-encrypt stored values under the current master key after a key rotation.

Each encrypted column registers a re-encryptor here; ``rotate`` runs them all, each batch in its own
transaction, so a rotation can be interrupted and run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.crypto import Keyring
from core.db import transaction
from core.models.plugin import PluginState
from core.plugins.settings import secret_aad


@dataclass
class RotationReport:
    column: str
    checked: int = 0
    rotated: int = 0


Reencryptor = Callable[[Engine, Keyring], Iterator[RotationReport]]
REENCRYPTORS: list[Reencryptor] = []


def reencryptor(func: Reencryptor) -> Reencryptor:
    REENCRYPTORS.append(func)
    return func


@reencryptor
def plugin_secrets(engine: Engine, keyring: Keyring) -> Iterator[RotationReport]:
    report = RotationReport("core_plugin_state.secrets")
    with Session(engine) as session:
        ids = list(session.exec(select(PluginState.id)).all())
    for row_id in ids:
        with transaction(engine) as session:
            row = session.exec(select(PluginState).where(PluginState.id == row_id).with_for_update()).one()
            updated = dict(row.secrets)
            for field, token in row.secrets.items():
                report.checked += 1
                if keyring.needs_rotation(token):
                    aad = secret_aad(row.clinic_id, row.plugin, field)
                    updated[field] = keyring.encrypt(keyring.decrypt(token, aad), aad)
                    report.rotated += 1
            if updated != row.secrets:
                row.secrets = updated
                session.add(row)
    yield report


def rotate(engine: Engine, keyring: Keyring) -> list[RotationReport]:
    reports: list[RotationReport] = []
    for func in REENCRYPTORS:
        reports.extend(func(engine, keyring))
    return reports
