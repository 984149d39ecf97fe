"""The process-wide plugin runtime: a pluggy manager plus per-clinic, isolated hook calls."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pluggy
from sqlalchemy.engine import Engine

from core.clock import now
from core.crypto import Keyring
from core.plugins.discovery import LoadedPlugin, discover
from core.plugins.health import HealthTracker
from core.plugins.policy import PluginsFile
from core.plugins.state import Snapshot, StateCache
from plugin_sdk import hookspecs
from plugin_sdk.errors import FieldError, ValidationFailed

log = logging.getLogger(__name__)
_clock = time.monotonic
VETO_HOOKS = frozenset({"praxis_validate_patient", "praxis_validate_appointment", "praxis_validate_settings"})


class HookResult:
    """One plugin's answer to a hook call: ``value``, or ``error`` describing what went wrong."""

    __slots__ = ("plugin", "value", "error")

    def __init__(self, plugin: str, value: Any = None, error: str | None = None) -> None:
        self.plugin = plugin
        self.value = value
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        return f"HookResult({self.plugin!r}, value={self.value!r}, error={self.error!r})"


class PluginRuntime:
    """Owns every loaded plugin. One instance per process, shared by the app and the worker."""

    def __init__(
        self,
        engine: Engine,
        keyring: Keyring,
        policy: PluginsFile,
        *,
        entry_points: Iterable[Any] | None = None,
        refresh_seconds: float = 2.0,
        circuit_threshold: int = 5,
        circuit_cooldown: timedelta = timedelta(minutes=5),
        hook_timeout: float = 10.0,
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.policy = policy
        self.hook_timeout = hook_timeout
        self.circuit_cooldown = circuit_cooldown
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins, self.order = discover(entry_points)
        self._register()
        self.state = StateCache(engine, refresh_seconds)
        self.health = HealthTracker(engine, circuit_threshold)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="plugin-call")
        self._available: list[str] | None = None
        self._impl_cache: dict[str, list[tuple[str, Any]]] = {}
        self._enabled_cache: dict[tuple[int, int, int], list[str]] = {}

    # --- loading -----------------------------------------------------------------------------------

    def _register(self) -> None:
        known = set(self.pm.hook.__dict__)
        for name in self.order:
            plugin = self.plugins[name]
            if plugin.quarantined:
                continue
            unknown = [
                attr for attr in dir(plugin.module)
                if attr.startswith("praxis_") and attr not in known
                and hasattr(getattr(plugin.module, attr), "praxis_impl")
            ]
            if unknown:
                plugin.quarantine_reason = f"implements unknown hook(s): {', '.join(unknown)}"
                continue
            try:
                self.pm.register(plugin.module, name=name)
            except pluggy.PluginValidationError as exc:
                plugin.quarantine_reason = f"invalid hook implementation: {exc}"
        # A plugin whose dependency failed to register cannot run either.
        changed = True
        while changed:
            changed = False
            for plugin in self.plugins.values():
                if plugin.quarantined or plugin.manifest is None:
                    continue
                bad = [d for d in plugin.manifest.requires if self.plugins[d].quarantined]
                if bad:
                    plugin.quarantine_reason = f"requires plugin {bad[0]!r}, which is quarantined"
                    if self.pm.is_registered(plugin.module):
                        self.pm.unregister(plugin.module)
                    changed = True

    # --- what is available -------------------------------------------------------------------------

    def available(self) -> list[str]:
        """Plugins that loaded and that the install policy allows, in install order."""
        if self._available is None:
            self._available = [
                n for n in self.order if not self.plugins[n].quarantined and self.policy.is_allowed(n)
            ]
        return self._available

    def get(self, name: str) -> LoadedPlugin | None:
        return self.plugins.get(name)

    def snapshot(self) -> Snapshot:
        return self.state.get()

    def enabled(self, clinic_id: int, *, include_open_circuits: bool = False) -> list[str]:
        """Plugins enabled in a clinic, in install order, skipping those whose circuit is open."""
        snap = self.state.get()
        key = (snap.generation, id(snap), clinic_id)
        names = self._enabled_cache.get(key)
        if names is None:
            enabled = snap.enabled_in(clinic_id)
            names = [n for n in self.available() if n in enabled]
            if len(self._enabled_cache) > 1000:
                self._enabled_cache.clear()
            self._enabled_cache[key] = names
        if include_open_circuits or not snap.any_open:
            return names
        at = now()
        return [n for n in names if not snap.circuit_open(clinic_id, n, self.circuit_cooldown, at)]

    def is_enabled(self, clinic_id: int, name: str) -> bool:
        return name in self.enabled(clinic_id, include_open_circuits=True)

    # --- calling hooks -----------------------------------------------------------------------------

    def implementations(self, hook: str, names: Iterable[str] | None = None) -> list[tuple[str, Any]]:
        """(plugin, hookimpl) pairs for a hook, in pluggy's call order, limited to ``names``."""
        impls = self._impl_cache.get(hook)
        if impls is None:
            impls = [(impl.plugin_name, impl) for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls())]
            self._impl_cache[hook] = impls
        if names is None:
            return impls
        allowed = names if isinstance(names, (set, frozenset)) else set(names)
        return [pair for pair in impls if pair[0] in allowed]

    def collect(self, hook: str, **kwargs: Any) -> list[HookResult]:
        """Call a contribution hook on every available plugin. A failure is logged and skipped."""
        results = []
        for plugin, impl in self.implementations(hook, self.available()):
            try:
                value = impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as exc:
                log.exception("plugin %s failed in %s", plugin, hook)
                results.append(HookResult(plugin, error=f"{type(exc).__name__}: {exc}"))
                continue
            if value is not None:
                results.append(HookResult(plugin, value))
        return results

    def call(
        self,
        hook: str,
        clinic_id: int,
        *,
        only: Iterable[str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> list[HookResult]:
        """Call a hook on each plugin enabled in the clinic, one at a time, isolated from each other.

        ``ctx`` is built per plugin. With ``timeout`` the call runs in a worker thread and is abandoned
        after that many seconds; without it the call runs inline and a call slower than the hook budget
        still counts as a failure.
        """
        veto = hook in VETO_HOOKS
        names = self.enabled(clinic_id, include_open_circuits=veto)
        if only is not None:
            wanted = set(only)
            names = [n for n in names if n in wanted]
        results = []
        for plugin, impl in self.implementations(hook, names):
            results.append(self._call_one(hook, plugin, impl, clinic_id, kwargs, timeout))
        return results

    def _call_one(
        self, hook: str, plugin: str, impl: Any, clinic_id: int, kwargs: dict[str, Any], timeout: float | None
    ) -> HookResult:
        argnames = impl.argnames
        if "ctx" in argnames:
            kwargs = {**kwargs, "ctx": self.context(plugin, clinic_id)}
        call_args = [kwargs[a] for a in argnames]
        started = _clock()
        try:
            if timeout is not None:
                future = self._pool.submit(impl.function, *call_args)
                try:
                    value = future.result(timeout=timeout)
                except concurrent.futures.TimeoutError:
                    future.cancel()
                    raise TimeoutError(f"no answer within {timeout:g} s") from None
            else:
                value = impl.function(*call_args)
        except Exception as exc:
            error = f"{hook}: {type(exc).__name__}: {exc}"
            self.health.defer_failure(clinic_id, plugin, error)
            return HookResult(plugin, error=error)
        elapsed = _clock() - started
        if elapsed > self.hook_timeout:
            error = f"{hook}: took {elapsed:.1f} s, over the {self.hook_timeout:g} s budget"
            self.health.defer_failure(clinic_id, plugin, error)
            return HookResult(plugin, value, error=error)
        if self.health.failing:
            self.health.defer_success(clinic_id, plugin)
        return HookResult(plugin, value)

    def veto(self, hook: str, clinic_id: int, **kwargs: Any) -> None:
        """Run a validation hook and raise ``ValidationFailed`` if any plugin refuses or fails.

        Fails closed: a plugin that raises refuses the write, with an error naming the plugin.
        """
        errors: list[FieldError] = []
        culprit = None
        for result in self.call(hook, clinic_id, **kwargs):
            if result.error is not None and result.value is None:
                title = self.title(result.plugin)
                errors.append(FieldError("__all__", f"{title} could not check this change: {result.error}",
                                         code="plugin_failed"))
                culprit = culprit or result.plugin
            elif result.value:
                errors.extend(result.value)
                culprit = culprit or result.plugin
        if errors:
            raise ValidationFailed(errors, plugin=culprit)

    def title(self, name: str) -> str:
        plugin = self.plugins.get(name)
        return plugin.manifest.title if plugin and plugin.manifest else name

    def context(self, plugin: str, clinic_id: int) -> Any:
        from core.plugins.context import CorePluginContext

        return CorePluginContext(self, plugin, clinic_id)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
