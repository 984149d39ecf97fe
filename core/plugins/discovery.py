"""Find plugins through entry points, validate their manifests, and resolve dependencies.

Nothing here raises for a bad plugin: it is quarantined with a readable reason and the app starts.
"""

from __future__ import annotations

import graphlib
import importlib.metadata
import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pydantic import ValidationError

from plugin_sdk import API_VERSION
from plugin_sdk.manifest import PluginManifest

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "praxis.plugins"


@dataclass
class LoadedPlugin:
    name: str
    module: ModuleType | None
    manifest: PluginManifest | None
    distribution: str | None = None
    quarantine_reason: str | None = None
    dependants: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> bool:
        return self.quarantine_reason is not None


def installed_entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def discover(entry_points: Iterable[Any] | None = None) -> tuple[dict[str, LoadedPlugin], list[str]]:
    """Load every plugin. Returns all plugins by name and the install order of the healthy ones."""
    plugins: dict[str, LoadedPlugin] = {}
    for ep in installed_entry_points() if entry_points is None else entry_points:
        loaded = _load(ep)
        if loaded.name in plugins:
            loaded.quarantine_reason = f"two installed plugins are named {loaded.name!r}"
            plugins[loaded.name].quarantine_reason = loaded.quarantine_reason
            continue
        plugins[loaded.name] = loaded
    order = _resolve(plugins)
    for plugin in plugins.values():
        if plugin.quarantined:
            log.error("plugin %s quarantined: %s", plugin.name, plugin.quarantine_reason)
    return plugins, order


def _load(ep: Any) -> LoadedPlugin:
    dist = getattr(getattr(ep, "dist", None), "name", None)
    try:
        module = ep.load()
    except Exception as exc:  # a plugin's import error must not stop the app
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" ({last.filename}:{last.lineno})" if last else ""
        return LoadedPlugin(ep.name, None, None, dist, f"failed to import: {type(exc).__name__}: {exc}{where}")
    raw = getattr(module, "manifest", None)
    if raw is None:
        return LoadedPlugin(ep.name, module, None, dist, "has no 'manifest' in its module")
    try:
        manifest = raw if isinstance(raw, PluginManifest) else PluginManifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return LoadedPlugin(ep.name, module, None, dist, f"invalid manifest: {problems}")
    if manifest.name != ep.name:
        return LoadedPlugin(
            ep.name, module, manifest, dist,
            f"manifest name {manifest.name!r} differs from entry-point name {ep.name!r}",
        )
    if Version(API_VERSION) not in SpecifierSet(manifest.api):
        return LoadedPlugin(
            ep.name, module, manifest, dist,
            f"supports plugin API {manifest.api}, this Praxis provides {API_VERSION}",
        )
    return LoadedPlugin(ep.name, module, manifest, dist)


def _resolve(plugins: dict[str, LoadedPlugin]) -> list[str]:
    """Quarantine plugins with missing, incompatible or cyclic dependencies; return install order."""
    changed = True
    while changed:  # a dependency's quarantine spreads to its dependants
        changed = False
        for plugin in plugins.values():
            if plugin.quarantined or plugin.manifest is None:
                continue
            for dep, spec in plugin.manifest.requires.items():
                reason = _dependency_problem(plugins.get(dep), dep, spec)
                if reason:
                    plugin.quarantine_reason = reason
                    changed = True
                    break
    graph = {
        p.name: set(p.manifest.requires) for p in plugins.values() if not p.quarantined and p.manifest
    }
    for name, deps in graph.items():
        for dep in deps:
            plugins[dep].dependants.append(name)
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = list(dict.fromkeys(exc.args[1]))
        for name in cycle:
            plugins[name].quarantine_reason = "dependency cycle: " + " -> ".join([*cycle, cycle[0]])
        return _resolve(plugins)


def _dependency_problem(dep: LoadedPlugin | None, name: str, spec: str) -> str | None:
    if dep is None:
        return f"requires plugin {name!r} ({spec or 'any version'}), which is not installed"
    if dep.quarantined or dep.manifest is None:
        return f"requires plugin {name!r}, which is quarantined"
    if Version(dep.manifest.version) not in SpecifierSet(spec):
        return f"requires plugin {name!r} {spec}, but {dep.manifest.version} is installed"
    return None
