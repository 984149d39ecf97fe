"""Placeholders plugins add to message templates (``praxis_placeholders``), and the set usable in a clinic.

Plugins' placeholders are collected once per runtime. A name the core or an earlier plugin (install order) has
already taken is refused, and so is a contribution that is not a ``plugin_sdk.contributions.Placeholder``;
each refusal is logged naming the plugin and kept in ``Catalog.refused``. In a clinic, a plugin's
placeholders are usable only while the plugin is enabled there: elsewhere their names are "unavailable",
which refuses templates using them when they are saved and fails a message using them when it is written.

A plugin's resolver runs isolated like any hook call: an exception is counted against the plugin (its
circuit opens after repeated failures) and becomes a ``RenderError`` naming the plugin, so the message fails
with a readable reason instead of taking the sending down; ``RetryableError`` or an open circuit make the
message wait instead. ``None`` from a resolver means "no value": a failure too, never a blank.
"""

from __future__ import annotations

import copy
import logging
import time
import weakref
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from core.clock import now
from core.messaging import templates as tpl
from plugin_sdk.context import MessageView
from plugin_sdk.contributions import Placeholder as SdkPlaceholder
from plugin_sdk.errors import RetryableError

if TYPE_CHECKING:
    from core.plugins.runtime import PluginRuntime

log = logging.getLogger(__name__)
NEEDS = {False: tpl.ANY, True: tpl.APPOINTMENT}


@dataclass
class Catalog:
    """Every plugin's placeholders (as core ``Placeholder``s whose ``source`` is the plugin)."""

    by_name: dict[str, tpl.Placeholder] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


_catalogs: weakref.WeakKeyDictionary[Any, Catalog] = weakref.WeakKeyDictionary()


def catalog(runtime: PluginRuntime) -> Catalog:
    found = _catalogs.get(runtime)
    if found is None:
        found = _catalogs[runtime] = _collect(runtime)
    return found


def _collect(runtime: PluginRuntime) -> Catalog:
    result = Catalog()
    core = tpl.placeholders()
    order = {name: i for i, name in enumerate(runtime.order)}
    for answer in sorted(runtime.collect("praxis_placeholders"), key=lambda a: order.get(a.plugin, len(order))):
        plugin = answer.plugin
        for item in answer.value or []:
            if not isinstance(item, SdkPlaceholder):
                _refuse(result, f"plugin {plugin} returned {item!r} from praxis_placeholders, not a "
                                "plugin_sdk.contributions.Placeholder; ignored")
                continue
            taken = core.get(item.name) or result.by_name.get(item.name)
            if taken is not None:
                owner = "the core" if taken.source == "core" else f"plugin {taken.source}"
                _refuse(result, f"plugin {plugin}: placeholder {{{item.name}}} is already defined by {owner}; "
                                f"{plugin}'s is ignored (rename it, e.g. {{{plugin}_{item.name}}})")
                continue
            result.by_name[item.name] = _wrap(runtime, plugin, item)
    return result


def _refuse(result: Catalog, problem: str) -> None:
    log.error("%s", problem)
    result.refused.append(problem)


def _wrap(runtime: PluginRuntime, plugin: str, item: SdkPlaceholder) -> tpl.Placeholder:
    sample = item.sample or f"[{item.name}]"
    return tpl.Placeholder(item.name, item.description, item.type, NEEDS[item.needs_appointment],
                           lambda ctx: resolve(runtime, plugin, item, ctx), lambda ctx: sample, source=plugin)


def for_clinic(runtime: PluginRuntime, clinic_id: int) -> tpl.PlaceholderSet:
    """The core's placeholders plus those of the plugins enabled in the clinic (open circuits included:
    a paused plugin's placeholders are still valid, its messages wait)."""
    found = catalog(runtime)
    known = tpl.placeholders()
    if not found.by_name:
        return tpl.PlaceholderSet(known)
    enabled = set(runtime.enabled(clinic_id, include_open_circuits=True))
    unavailable = {}
    for name, placeholder in found.by_name.items():
        if placeholder.source in enabled:
            known[name] = placeholder
        else:
            unavailable[name] = (f"{{{name}}} comes from the plugin {runtime.title(placeholder.source)} "
                                 f"({placeholder.source}), which is not enabled in this clinic")
    return tpl.PlaceholderSet(known, unavailable)


def plugins_in(runtime: PluginRuntime, clinic_id: int) -> bool:
    """Whether a plugin enabled in the clinic adds placeholders (a message's text may then need a plugin)."""
    found = catalog(runtime)
    if not found.by_name:
        return False
    enabled = set(runtime.enabled(clinic_id, include_open_circuits=True))
    return any(p.source in enabled for p in found.by_name.values())


def view(ctx: tpl.RenderContext, *, sample: bool = False) -> MessageView:
    return MessageView(
        clinic_id=ctx.clinic_id, language=ctx.language, channel=ctx.channel, kind=ctx.kind,
        recipient_kind=ctx.recipient_kind, recipient_name=ctx.recipient_name, patient_id=ctx.patient_id,
        appointment_id=ctx.appointment_id, appointment_start=ctx.appointment_start, doctor_name=ctx.doctor_name,
        event=ctx.event, data=MappingProxyType(copy.deepcopy(ctx.data)), sample=sample)


def resolve(runtime: PluginRuntime, plugin: str, item: SdkPlaceholder, ctx: tpl.RenderContext) -> str:
    """Call a plugin's resolver for one message, isolated (see the module's docstring)."""
    title = runtime.title(plugin)
    clinic_id = ctx.clinic_id
    snap = runtime.snapshot()
    at = now()
    if snap.circuit_open(clinic_id, plugin, runtime.circuit_cooldown, at):
        health = snap.health.get((clinic_id, plugin))
        until = (health.opened_at + runtime.circuit_cooldown) if health and health.opened_at else \
            at + runtime.circuit_cooldown
        raise tpl.RenderError("placeholder_paused", f"waiting: {title} is paused after repeated failures, so "
                              f"{{{item.name}}} cannot be filled yet", plugin=plugin, retry_at=until)
    started = time.monotonic()
    try:
        value = item.resolve(runtime.context(plugin, clinic_id), view(ctx))
    except RetryableError as exc:
        runtime.health.defer_failure(clinic_id, plugin, f"placeholder {{{item.name}}}: {exc}")
        raise tpl.RenderError("placeholder_retry", f"{title} cannot fill {{{item.name}}} now: {exc}", plugin=plugin,
                              retry_after=exc.retry_after) from exc
    except Exception as exc:
        error = f"placeholder {{{item.name}}}: {type(exc).__name__}: {exc}"
        runtime.health.defer_failure(clinic_id, plugin, error)
        raise tpl.RenderError("placeholder_failed", f"{title} could not fill {{{item.name}}}: "
                              f"{type(exc).__name__}: {exc}", plugin=plugin) from exc
    elapsed = time.monotonic() - started
    if elapsed > runtime.hook_timeout:
        runtime.health.defer_failure(clinic_id, plugin, f"placeholder {{{item.name}}}: took {elapsed:.1f} s, over "
                                                        f"the {runtime.hook_timeout:g} s budget")
    elif runtime.health.failing:
        runtime.health.defer_success(clinic_id, plugin)
    if value is None:
        raise tpl.RenderError("placeholder_empty", f"{title} has no value for {{{item.name}}} for this message",
                              plugin=plugin)
    return str(value)


def retry_delay(error: tpl.RenderError, attempts: int) -> timedelta | None:
    """How long a message waits after ``error``; None if it will not work later."""
    from core.outbox.worker import backoff

    if error.retry_at is not None:
        return max(error.retry_at - now(), timedelta(seconds=1))
    if error.code == "placeholder_retry":
        return timedelta(seconds=backoff(attempts, error.retry_after))
    return None
