"""Every hook a Praxis plugin can implement, in one place.

Implement a hook by writing a module-level function of the same name decorated with
``@hookimpl`` in the module your ``praxis.plugins`` entry point names. Take only the arguments you
need: pluggy passes arguments by name.

Kinds of hook:

* **Contributions** (``praxis_routes`` ... ``praxis_outbox_handlers``) are collected once per
  process. Contributed routes, menu items and the like answer only in clinics where the plugin is
  enabled; the core filters them per request.
* **Per-clinic calls** (validation, events, jobs, connection checks) reach only the plugins enabled
  for that clinic, one implementation at a time: an exception or a timeout in one plugin is counted
  against that plugin (and opens its circuit after repeated failures) and never stops the others
  or the core request.
* **Validation hooks** are vetoes and fail closed: if an implementation raises, the write is refused
  with an error that names the plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fastapi import APIRouter

    from plugin_sdk.context import PluginContext
    from plugin_sdk.contributions import (
        ConnectionCheck,
        IdentifierType,
        MenuItem,
        Panel,
        PeriodicJob,
        Placeholder,
    )
    from plugin_sdk.errors import FieldError
    from plugin_sdk.events import DomainEvent, EventType
    from plugin_sdk.manifest import PermissionSpec
    from plugin_sdk.providers import LabConnector, MessagingProvider, SigningProvider

PROJECT = "praxis"
hookspec = pluggy.HookspecMarker(PROJECT)


# --- Lifecycle -------------------------------------------------------------------------------------


@hookspec
def praxis_startup(app_name: str) -> None:
    """Called once per process after every plugin is loaded and before any request or job is served.

    Use it for process-wide setup such as warming a cache. Do not call vendors here: the app must start
    while vendors are down. Returns nothing.
    """


@hookspec
def praxis_plugin_enabled(ctx: PluginContext) -> None:
    """Called after the plugin was enabled for ``ctx.clinic`` and the change was committed.

    The plugin's migrations have already been applied. Returns nothing.
    """


@hookspec
def praxis_plugin_disabled(ctx: PluginContext) -> None:
    """Called after the plugin was disabled for ``ctx.clinic`` and the change was committed.

    The plugin's data stays; only an explicit ``praxis plugins purge`` removes it. Returns nothing.
    """


# --- Contributions ---------------------------------------------------------------------------------


@hookspec
def praxis_routes() -> APIRouter | None:
    """Called once at start-up. Return a FastAPI ``APIRouter``; the core mounts it under
    ``/api/clinics/{clinic_id}/x/<plugin>`` and answers 404 there in clinics where the plugin is disabled.
    """


@hookspec
def praxis_templates_dir() -> Path | None:
    """Called once at start-up. Return a folder of Jinja2 templates, looked up as ``<plugin>/<name>``."""


@hookspec
def praxis_static_dir() -> Path | None:
    """Called once at start-up. Return a folder served at ``/static/plugins/<plugin>/``."""


@hookspec
def praxis_menu_items(ctx: PluginContext) -> list[MenuItem]:
    """Called when the UI builds the menu for a clinic where the plugin is enabled.
    Return the plugin's menu entries; entries whose permission the user lacks are hidden."""


@hookspec
def praxis_panels(ctx: PluginContext, where: str) -> list[Panel]:
    """Called when the UI builds the patient card (``where="patient"``) or the appointment dialog
    (``where="visit"``) in a clinic where the plugin is enabled. Return the panels to show there; panels whose
    permission the user lacks are hidden, and a disabled plugin's panels disappear at once."""


@hookspec
def praxis_permissions() -> list[PermissionSpec]:
    """Called once at start-up. Return permissions beyond those in the manifest (rarely needed)."""


@hookspec
def praxis_identifier_types() -> list[IdentifierType]:
    """Called once at start-up. Return identifier types (national IDs, professional numbers) the
    plugin contributes; they are usable in clinics where the plugin is enabled."""


@hookspec
def praxis_migrations_dir() -> Path | None:
    """Called by ``praxis db upgrade`` and when the plugin is first enabled. Return the folder of the
    plugin's Alembic revisions: a branch labelled with the plugin name, revision ids prefixed with
    ``<plugin>_``, tables prefixed with ``<plugin>_``, foreign keys only to core tables."""


@hookspec
def praxis_translations_dir() -> Path | None:
    """Called once at start-up. Return the folder holding ``<locale>/LC_MESSAGES/<domain>.mo`` files."""


@hookspec
def praxis_name_search_keys(text: str) -> list[str]:
    """Called when a patient's name is saved. Return extra search keys for the name, such as pinyin
    or Korean initial consonants; the patient is then found by a prefix of any of them."""


@hookspec
def praxis_placeholders() -> list[Placeholder]:
    """Called once per process, when messaging first needs the placeholders. Return the ``Placeholder``s the
    plugin adds to message templates; they are usable only in clinics where the plugin is enabled. A name
    already taken (by the core or a plugin earlier in install order) is refused, with an error in the log
    naming your plugin. ``resolve`` is called when a message is written, outside any transaction."""


@hookspec
def praxis_event_types() -> list[EventType]:
    """Called once per process, when messaging first needs the event kinds. Return the ``EventType``s the
    plugin reports with ``ctx.emit_event``; the rules editor lists them in clinics where the plugin is enabled.
    Names must start with ``<plugin>.``; others are refused, with an error in the log."""


# --- Validation (veto) -----------------------------------------------------------------------------


@hookspec
def praxis_validate_patient(ctx: PluginContext, patient: dict[str, Any], is_new: bool) -> list[FieldError]:
    """Called inside the transaction of every patient create or update, before it is committed.

    ``patient`` holds the fields as they will be saved (identifiers as ``{type_code: value}`` under
    ``identifiers``). Return field errors to refuse the write (an empty list accepts it). Raising
    refuses the write too, with an error naming the plugin.
    """


@hookspec
def praxis_validate_appointment(
    ctx: PluginContext, appointment: dict[str, Any], is_new: bool
) -> list[FieldError]:
    """Called inside the transaction of every appointment create or change, before commit. Return
    field errors to refuse the write; raising refuses it with an error naming the plugin."""


@hookspec
def praxis_validate_settings(ctx: PluginContext, settings: Any) -> list[FieldError]:
    """Called before the plugin's own settings are saved, after they passed the schema. Return field
    errors for rules the schema cannot express (e.g. two fields that must agree)."""


@hookspec
def praxis_test_connection(ctx: PluginContext, settings: Any) -> ConnectionCheck:
    """Called when an admin presses "test connection" with settings not yet saved. Reach the vendor
    with ``settings`` (not ``ctx.settings``) and return a ``ConnectionCheck``. Runs with a timeout."""


# --- Domain events ---------------------------------------------------------------------------------


@hookspec
def praxis_on_event(ctx: PluginContext, event: DomainEvent) -> None:
    """Called by the outbox worker, after commit, for each domain event of a clinic where the plugin is
    enabled; at least once, so be idempotent on ``event.id``. Raise ``RetryableError`` to be called
    again later; any other exception is retried too and counted against the plugin. Returns nothing."""


# --- Providers -------------------------------------------------------------------------------------


@hookspec
def praxis_messaging_providers() -> list[MessagingProvider]:
    """Called once at start-up. Return the SMS or e-mail vendors the plugin provides."""


@hookspec
def praxis_signing_providers() -> list[SigningProvider]:
    """Called once at start-up. Return the signing providers the plugin provides."""


@hookspec
def praxis_lab_connectors() -> list[LabConnector]:
    """Called once at start-up. Return the lab connectors the plugin provides."""


@hookspec
def praxis_booking_channels() -> list[Any]:
    """Called once at start-up. Return online-booking channels (patient portals) the plugin provides."""


# --- Background work -------------------------------------------------------------------------------


@hookspec
def praxis_outbox_handlers() -> dict[str, Any]:
    """Called once at start-up. Return ``{topic: handler}`` for the work this plugin queues with
    ``ctx.enqueue(topic, ...)``. A handler is ``handler(ctx, message: OutboxMessage)``; raise
    ``RetryableError``, ``PermanentError`` or ``UnknownOutcomeError`` to steer the outbox."""


@hookspec
def praxis_periodic_jobs() -> list[PeriodicJob]:
    """Called once at start-up. Return jobs the worker runs on a schedule for every clinic where the
    plugin is enabled; each due run happens once, whatever the number of workers."""
