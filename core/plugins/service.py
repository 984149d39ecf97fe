"""What admins do with plugins in a clinic: list, enable, disable, configure, test, reset.

Each change is one transaction that also writes the audit entry and bumps the state generation, so
every process sees it within ``state_refresh_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from core import audit, schema
from core.clock import now
from core.db import transaction
from core.models.clinic import Clinic
from core.models.plugin import PluginState
from core.plugins import settings as plugin_settings
from core.plugins.runtime import PluginRuntime
from core.plugins.state import bump_generation
from plugin_sdk.contributions import ConnectionCheck
from plugin_sdk.errors import FieldError


class PluginOperationError(Exception):
    """A refused operation; ``code`` is stable for API clients, ``details`` lists names involved."""

    def __init__(self, code: str, message: str, details: list[str] | None = None, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or []
        self.status = status


@dataclass
class PluginStatus:
    name: str
    title: str
    description: str
    version: str | None
    category: str | None
    countries: list[str]
    requires: dict[str, str]
    state: str  # enabled, disabled, quarantined, unhealthy, not_allowed
    reason: str | None = None
    last_error: str | None = None
    failures: int = 0
    has_settings: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


class PluginService:
    def __init__(self, runtime: PluginRuntime) -> None:
        self.runtime = runtime

    # --- reading -----------------------------------------------------------------------------------

    def clinic(self, session: Session, clinic_id: int) -> Clinic:
        clinic = session.get(Clinic, clinic_id)
        if clinic is None:
            raise PluginOperationError("unknown_clinic", f"there is no clinic {clinic_id}", status=404)
        return clinic

    def plugin(self, name: str) -> Any:
        loaded = self.runtime.get(name)
        if loaded is None:
            known = ", ".join(sorted(self.runtime.plugins)) or "none"
            raise PluginOperationError("unknown_plugin", f"no plugin named {name!r} is installed (installed: {known})",
                                       status=404)
        return loaded

    def statuses(self, clinic_id: int) -> list[PluginStatus]:
        self.runtime.health.flush()
        snap = self.runtime.snapshot()
        enabled = set(self.runtime.enabled(clinic_id, include_open_circuits=True))
        out = []
        for name in sorted(self.runtime.plugins):
            loaded = self.runtime.plugins[name]
            manifest = loaded.manifest
            health = snap.health.get((clinic_id, name))
            status = PluginStatus(
                name=name,
                title=manifest.title if manifest else name,
                description=manifest.description if manifest else "",
                version=manifest.version if manifest else None,
                category=manifest.category.value if manifest else None,
                countries=list(manifest.countries) if manifest else [],
                requires=dict(manifest.requires) if manifest else {},
                state="disabled",
                last_error=health.last_error if health else None,
                failures=health.consecutive_failures if health else 0,
                has_settings=bool(manifest and manifest.settings),
            )
            if loaded.quarantined:
                status.state, status.reason = "quarantined", loaded.quarantine_reason
            elif not self.runtime.policy.is_allowed(name):
                status.state, status.reason = "not_allowed", "disallowed by plugins.toml"
            elif name in enabled:
                status.state = "unhealthy" if health and health.circuit_open else "enabled"
            if manifest and manifest.settings and not loaded.quarantined:
                try:
                    values = plugin_settings.merged_values(
                        manifest, self.runtime.policy.for_plugin(name), snap.rows.get((clinic_id, name)),
                        self.runtime.keyring, clinic_id,
                    )
                    status.settings = plugin_settings.public_view(manifest, values)
                except Exception as exc:
                    status.settings = {}
                    status.reason = status.reason or f"settings unreadable: {type(exc).__name__}"
            out.append(status)
        return out

    # --- enabling ----------------------------------------------------------------------------------

    def enable(self, clinic_id: int, name: str, actor: audit.Actor, *, with_dependencies: bool = False) -> list[str]:
        """Enable a plugin (and, if asked, the plugins it needs). Returns the names newly enabled."""
        self._usable(name)
        order = self._closure(name)
        with transaction(self.runtime.engine) as session:
            self.clinic(session, clinic_id)
            rows = self._rows(session, clinic_id)
            missing = [n for n in order if n != name and not (rows.get(n) and rows[n].enabled)]
            if missing and not with_dependencies:
                raise PluginOperationError(
                    "dependencies_disabled",
                    f"{name} needs {', '.join(missing)} enabled first; enable them too?",
                    missing,
                )
            newly = [n for n in order if not (rows.get(n) and rows[n].enabled)]
        for plugin in newly:
            schema.upgrade_plugin(self.runtime, plugin)
        with transaction(self.runtime.engine) as session:
            rows = self._rows(session, clinic_id)
            for plugin in newly:
                row = rows.get(plugin) or PluginState(clinic_id=clinic_id, plugin=plugin)
                row.enabled, row.updated_at, row.updated_by = True, now(), actor.id
                session.add(row)
                audit.record(session, actor, "plugin.enabled", clinic_id=clinic_id, target=f"plugin:{plugin}",
                             data={"dependency_of": name} if plugin != name else {})
            if newly:
                bump_generation(session)
        self.runtime.state.invalidate()
        for plugin in newly:
            self.runtime.call("praxis_plugin_enabled", clinic_id, only=[plugin])
        return newly

    def disable(self, clinic_id: int, name: str, actor: audit.Actor) -> bool:
        self.plugin(name)
        with transaction(self.runtime.engine) as session:
            self.clinic(session, clinic_id)
            rows = self._rows(session, clinic_id)
            row = rows.get(name)
            if row is None or not row.enabled:
                return False
            dependants = sorted(
                other for other, r in rows.items()
                if r.enabled and other != name and self._needs(other, name)
            )
            if dependants:
                raise PluginOperationError(
                    "has_dependants", f"{', '.join(dependants)} need {name}; disable them first", dependants
                )
            row.enabled, row.updated_at, row.updated_by = False, now(), actor.id
            session.add(row)
            audit.record(session, actor, "plugin.disabled", clinic_id=clinic_id, target=f"plugin:{name}")
            bump_generation(session)
        self.runtime.state.invalidate()
        self._notify_disabled(clinic_id, name)
        return True

    def _notify_disabled(self, clinic_id: int, name: str) -> None:
        # runtime.call reaches enabled plugins only, and this one no longer is.
        for plugin, impl in self.runtime.implementations("praxis_plugin_disabled", [name]):
            try:
                impl.function(self.runtime.context(plugin, clinic_id))
            except Exception as exc:
                self.runtime.health.defer_failure(clinic_id, plugin, f"praxis_plugin_disabled: {exc}")

    # --- settings ----------------------------------------------------------------------------------

    def validate_settings(self, clinic_id: int, name: str, submitted: dict[str, Any]) -> Any:
        """Build the settings object an admin submitted, keeping stored secrets left blank.

        Raises ``SettingsInvalid`` with per-field errors.
        """
        loaded = self._usable(name)
        manifest = loaded.manifest
        if manifest.settings is None:
            raise PluginOperationError("no_settings", f"{name} has no settings", status=422)
        known = set(manifest.settings.model_fields)
        unknown = [k for k in submitted if k not in known]
        if unknown:
            raise plugin_settings.SettingsInvalid(
                [FieldError(k, f"{name} has no setting {k!r}", "unknown_field") for k in unknown]
            )
        snap = self.runtime.snapshot()
        values = plugin_settings.merged_values(
            manifest, self.runtime.policy.for_plugin(name), snap.rows.get((clinic_id, name)),
            self.runtime.keyring, clinic_id,
        )
        secret_names = set(manifest.secret_fields())
        for key, value in submitted.items():
            if key in secret_names and value in (None, ""):
                continue  # a blank secret field means "keep the stored one"
            values[key] = value
        try:
            model = manifest.settings.model_validate(values)
        except ValidationError as exc:
            raise plugin_settings.SettingsInvalid(plugin_settings.field_errors(exc)) from exc
        extra: list[FieldError] = []
        # Settings are checked whether or not the plugin is enabled yet: admins configure before enabling.
        for plugin, impl in self.runtime.implementations("praxis_validate_settings", [name]):
            given = {"ctx": self.runtime.context(plugin, clinic_id), "settings": model}
            try:
                extra.extend(impl.function(*[given[a] for a in impl.argnames]) or [])
            except Exception as exc:
                extra.append(FieldError("__all__", f"{self.runtime.title(plugin)} could not check the settings: "
                                                   f"{type(exc).__name__}: {exc}", "plugin_failed"))
        if extra:
            raise plugin_settings.SettingsInvalid(extra)
        return model

    def configure(self, clinic_id: int, name: str, submitted: dict[str, Any], actor: audit.Actor) -> dict[str, Any]:
        model = self.validate_settings(clinic_id, name, submitted)
        manifest = self.runtime.plugins[name].manifest
        plain, secrets = plugin_settings.split_for_storage(manifest, model, self.runtime.keyring, clinic_id)
        with transaction(self.runtime.engine) as session:
            self.clinic(session, clinic_id)
            row = self._rows(session, clinic_id).get(name) or PluginState(clinic_id=clinic_id, plugin=name)
            changed = sorted(k for k in set(plain) | set(row.settings) if plain.get(k) != row.settings.get(k))
            changed += sorted(k for k in submitted if k in secrets)  # names only, never values
            row.settings, row.secrets = plain, {**row.secrets, **secrets}
            row.updated_at, row.updated_by = now(), actor.id
            session.add(row)
            audit.record(session, actor, "plugin.settings_changed", clinic_id=clinic_id, target=f"plugin:{name}",
                         data={"fields": changed})
            bump_generation(session)
        self.runtime.state.invalidate()
        values = {**plain, **{k: "set" for k in secrets}}
        return plugin_settings.public_view(manifest, values)

    def test_connection(self, clinic_id: int, name: str, submitted: dict[str, Any]) -> ConnectionCheck:
        model = self.validate_settings(clinic_id, name, submitted)
        implementations = self.runtime.implementations("praxis_test_connection", [name])
        if not implementations:
            raise PluginOperationError("no_connection_test", f"{name} offers no connection test", status=422)
        _, impl = implementations[0]
        ctx = self.runtime.context(name, clinic_id)
        future = self.runtime._pool.submit(impl.function, *[{"ctx": ctx, "settings": model}[a] for a in impl.argnames])
        try:
            return future.result(timeout=self.runtime.hook_timeout)
        except TimeoutError:
            return ConnectionCheck(False, f"no answer within {self.runtime.hook_timeout:g} s")
        except Exception as exc:
            return ConnectionCheck(False, f"{type(exc).__name__}: {exc}")

    def reset_health(self, clinic_id: int, name: str, actor: audit.Actor) -> None:
        self.plugin(name)
        self.runtime.health.reset(clinic_id, name)
        with transaction(self.runtime.engine) as session:
            audit.record(session, actor, "plugin.health_reset", clinic_id=clinic_id, target=f"plugin:{name}")
        self.runtime.state.invalidate()

    # --- seeding from plugins.toml -----------------------------------------------------------------

    def seed(self, session: Session, clinic: Clinic) -> list[str]:
        """Give a clinic its first state row for every plugin it has none for, from plugins.toml."""
        assert clinic.id is not None
        rows = self._rows(session, clinic.id)
        enabled = []
        for name in self.runtime.available():
            if name in rows:
                continue
            on = self.runtime.policy.for_plugin(name).enabled_by_default(clinic.country)
            session.add(PluginState(clinic_id=clinic.id, plugin=name, enabled=on))
            if on:
                enabled.append(name)
                audit.record(session, audit.Actor.system("plugins.toml"), "plugin.enabled", clinic_id=clinic.id,
                             target=f"plugin:{name}", data={"seeded": True})
        bump_generation(session)
        return enabled

    def seed_all(self) -> None:
        for name in self.runtime.available():
            if self.runtime.policy.for_plugin(name).enable_for:
                schema.upgrade_plugin(self.runtime, name)
        with transaction(self.runtime.engine) as session:
            for clinic in session.exec(select(Clinic)).all():
                self.seed(session, clinic)
        self.runtime.state.invalidate()

    # --- helpers -----------------------------------------------------------------------------------

    def _usable(self, name: str) -> Any:
        loaded = self.plugin(name)
        if loaded.quarantined:
            raise PluginOperationError("quarantined", f"{name} is quarantined: {loaded.quarantine_reason}")
        if not self.runtime.policy.is_allowed(name):
            raise PluginOperationError("not_allowed", f"{name} is not allowed by plugins.toml")
        return loaded

    def _closure(self, name: str) -> list[str]:
        """The plugin and everything it needs, dependencies first."""
        seen: list[str] = []

        def visit(n: str) -> None:
            for dep in self._usable(n).manifest.requires:
                if dep not in seen:
                    visit(dep)
            if n not in seen:
                seen.append(n)

        visit(name)
        return seen

    def _needs(self, plugin: str, dependency: str) -> bool:
        loaded = self.runtime.get(plugin)
        if loaded is None or loaded.manifest is None:
            return False
        return dependency in loaded.manifest.requires or any(
            self._needs(d, dependency) for d in loaded.manifest.requires
        )

    @staticmethod
    def _rows(session: Session, clinic_id: int) -> dict[str, PluginState]:
        return {r.plugin: r for r in session.exec(
            select(PluginState).where(PluginState.clinic_id == clinic_id).with_for_update()
        ).all()}
