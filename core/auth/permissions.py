"""The permission catalog (core plus plugins), the built-in roles' grants, and effective permissions.

A person's permissions in a clinic are their role's grants there, plus the permissions an override
grants them and minus those an override withholds. An API token with scopes is further limited to them.
Built-in roles' grants are defined here, not in the database, so a plugin's new permissions reach the
administrator role without a data migration; clinics tailor access with custom roles and overrides.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.models.auth import Role, RolePermission
from core.plugins.runtime import PluginRuntime
from plugin_sdk import N_
from plugin_sdk.manifest import PERMISSION_CODE, PermissionSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PermissionInfo:
    code: str
    title: str  # translatable msgid
    plugin: str | None = None  # None for core permissions


CORE_PERMISSIONS: tuple[PermissionInfo, ...] = tuple(PermissionInfo(code, title) for code, title in [
    ("clinics.view", N_("See the clinic's details")),
    ("clinics.manage", N_("Create clinics and change their details")),
    ("users.manage", N_("Manage staff accounts, their roles and permissions")),
    ("roles.manage", N_("Create and change custom roles")),
    ("audit.view", N_("Read the audit journal and the patient access log")),
    ("plugins.view", N_("See plugins and their state")),
    ("plugins.manage", N_("Enable, disable and configure plugins")),
    ("outbox.view", N_("See outgoing messages and background work")),
    ("outbox.manage", N_("Retry or discard outgoing messages and background work")),
    ("patients.view", N_("Open patient records")),
    ("patients.edit", N_("Register patients and change their records")),
    ("patients.delete", N_("Move patients to the trash and restore them")),
    ("patients.merge", N_("Merge duplicate patients")),
    ("patients.view_identifiers", N_("See national identifiers unmasked")),
    ("appointments.view", N_("See the appointment book")),
    ("appointments.edit", N_("Book, move and cancel appointments")),
    ("appointments.overbook", N_("Book over an existing appointment (overbooking)")),
    ("schedules.manage", N_("Change working schedules, rooms and days off")),
    ("records.view", N_("Read clinical records and export them as PDF")),
    ("records.edit", N_("Write clinical records, sign your own and amend signed ones")),
    ("records.sign", N_("Sign records with full authority (records of authors without it need a countersignature)")),
    ("records.countersign", N_("Countersign trainees' records as their supervisor")),
    ("records.verify", N_("Verify record signatures")),
    ("messaging.view", N_("See messages to patients, their statuses and replies")),
    ("messaging.send", N_("Send messages to patients, retry or resolve failed ones, record opt-outs")),
    ("messaging.manage", N_("Change reminder rules, message templates, quiet hours and reply settings")),
    ("labs.view", N_("See lab orders, results and dental lab cases")),
    ("labs.order", N_("Order lab tests, print specimen labels and track dental lab cases")),
    ("labs.manage", N_("Set up labs, their test catalogues and the mapping to services")),
])
CORE_CODES = frozenset(p.code for p in CORE_PERMISSIONS)

ADMIN = "admin"


@dataclass(frozen=True)
class BuiltinRole:
    code: str
    title: str
    grants: frozenset[str] | None  # None: every permission in the catalog, plugins' included


BUILTIN_ROLES: dict[str, BuiltinRole] = {r.code: r for r in [
    BuiltinRole(ADMIN, N_("Administrator"), None),
    BuiltinRole("doctor", N_("Doctor"), frozenset({
        "clinics.view", "patients.view", "patients.edit", "patients.view_identifiers",
        "appointments.view", "appointments.edit", "appointments.overbook", "messaging.view",
        "records.view", "records.edit", "records.sign", "records.countersign", "records.verify",
        "labs.view", "labs.order",
    })),
    BuiltinRole("assistant", N_("Assistant"), frozenset({
        "clinics.view", "patients.view", "patients.edit", "appointments.view", "appointments.edit",
        "records.view",
        "messaging.view", "labs.view", "labs.order",
    })),
    BuiltinRole("receptionist", N_("Receptionist"), frozenset({
        "clinics.view", "patients.view", "patients.edit", "patients.view_identifiers",
        "appointments.view", "appointments.edit", "messaging.view", "messaging.send",
    })),
]}


class Catalog:
    """Every permission this process knows: the core's and those of each loaded plugin."""

    def __init__(self, permissions: Iterable[PermissionInfo]) -> None:
        self.by_code: dict[str, PermissionInfo] = {}
        for perm in permissions:
            self.by_code.setdefault(perm.code, perm)
        self.codes = frozenset(self.by_code)

    def __contains__(self, code: object) -> bool:
        return code in self.by_code

    def all(self) -> list[PermissionInfo]:
        return sorted(self.by_code.values(), key=lambda p: (p.plugin is not None, p.plugin or "", p.code))

    def builtin_grants(self, role_code: str) -> frozenset[str]:
        role = BUILTIN_ROLES[role_code]
        return self.codes if role.grants is None else role.grants

    def unknown(self, codes: Iterable[str]) -> list[str]:
        return sorted({c for c in codes if c not in self.by_code})


_catalogs: weakref.WeakKeyDictionary[PluginRuntime, Catalog] = weakref.WeakKeyDictionary()


def catalog(runtime: PluginRuntime) -> Catalog:
    """The catalog of a runtime, built once: plugins' permissions are fixed when they are loaded."""
    found = _catalogs.get(runtime)
    if found is None:
        found = Catalog([*CORE_PERMISSIONS, *plugin_permissions(runtime)])
        _catalogs[runtime] = found
    return found


def plugin_permissions(runtime: PluginRuntime) -> list[PermissionInfo]:
    """Permissions from each loaded plugin's manifest and from its ``praxis_permissions`` hook."""
    found: list[PermissionInfo] = []
    available = set(runtime.available())
    for name in runtime.order:
        loaded = runtime.plugins[name]
        if name not in available or loaded.manifest is None:
            continue
        found += [PermissionInfo(p.code, p.title, name) for p in loaded.manifest.permissions]
    for result in runtime.collect("praxis_permissions"):
        for spec in result.value or []:
            if not isinstance(spec, PermissionSpec) or not PERMISSION_CODE.match(spec.code):
                log.warning("plugin %s returned an invalid permission %r; ignored", result.plugin, spec)
                continue
            if not spec.code.startswith(result.plugin + "."):
                log.warning("plugin %s returned permission %r outside its own prefix; ignored",
                            result.plugin, spec.code)
                continue
            found.append(PermissionInfo(spec.code, spec.title, result.plugin))
    return found


def effective(role_grants: Iterable[str], overrides: dict[str, bool], scopes: Iterable[str] | None = None,
              known: frozenset[str] | None = None) -> frozenset[str]:
    """Role grants, plus overrides that grant, minus overrides that withhold, limited to ``scopes``."""
    result = set(role_grants)
    for code, granted in overrides.items():
        if granted:
            result.add(code)
        else:
            result.discard(code)
    if scopes is not None:
        result &= set(scopes)
    if known is not None:
        result &= known
    return frozenset(result)


def ensure_builtin_roles(session: Session) -> dict[str, Role]:
    """Make sure the built-in roles have rows (memberships point at them); returns every role by code.

    Safe under concurrent first use: a row another transaction inserted meanwhile is picked up.
    """
    roles = {r.code: r for r in session.exec(select(Role)).all()}
    for role in BUILTIN_ROLES.values():
        if role.code in roles:
            continue
        try:
            with session.begin_nested():
                row = Role(code=role.code, title=role.title, is_builtin=True)
                session.add(row)
                session.flush()
            roles[role.code] = row
        except IntegrityError:
            found = session.exec(select(Role).where(Role.code == role.code)).one()
            roles[role.code] = found
    return roles


def role_grants(session: Session, cat: Catalog, role_ids: Iterable[int]) -> dict[int, frozenset[str]]:
    """The grants of each role id (built-in ones from code, custom ones from the database)."""
    ids = sorted(set(role_ids))
    if not ids:
        return {}
    roles = session.exec(select(Role).where(col(Role.id).in_(ids))).all()
    custom = [r.id for r in roles if not r.is_builtin]
    stored: dict[int, set[str]] = {rid: set() for rid in custom if rid is not None}
    if custom:
        for rp in session.exec(select(RolePermission).where(col(RolePermission.role_id).in_(custom))).all():
            stored[rp.role_id].add(rp.permission)
    out: dict[int, frozenset[str]] = {}
    for role in roles:
        assert role.id is not None
        if role.is_builtin and role.code in BUILTIN_ROLES:
            out[role.id] = cat.builtin_grants(role.code)
        else:
            out[role.id] = frozenset(stored.get(role.id, set()))
    return out
