"""A real Praxis (database, plugin runtime, outbox) with one clinic and the plugin under test enabled.

Built by the ``plugin_app`` fixture; usable directly as ``build_plugin_app(...)`` in scripts. Nothing here is
a mock: the plugin is discovered, its manifest validated, its settings saved encrypted and read back, and its
hooks called through the same runtime the app uses.
"""

from __future__ import annotations

import atexit
import base64
import importlib
import importlib.metadata
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from plugin_sdk.events import DomainEvent

if TYPE_CHECKING:
    from core.app_context import Praxis
    from core.models.outbox import OutboxItem
    from core.plugins.runtime import HookResult

ENTRY_POINT_GROUP = "praxis.plugins"
#: Set to a PostgreSQL server URL (``postgresql://user@host:port/db``) to run plugin tests on PostgreSQL: each
#: app gets a fresh database there, dropped afterwards. The core's own suite reads the same variable.
DATABASE_ENV = "PRAXIS_TEST_DATABASE_URL"
TEST_ACTOR_NAME = "plugin test"

PluginTarget = EntryPoint | ModuleType | str


def resolve_entry_point(target: PluginTarget) -> EntryPoint:
    """Turn what a test names into a ``praxis.plugins`` entry point.

    Accepts an ``EntryPoint``; a plugin module (its manifest names the plugin); an installed plugin's name;
    ``"name = package.module"``; or a dotted module path.
    """
    if isinstance(target, EntryPoint):
        return target
    if isinstance(target, ModuleType):
        return EntryPoint(name=_manifest_name(target), value=target.__name__, group=ENTRY_POINT_GROUP)
    if not isinstance(target, str) or not target.strip():
        raise TypeError(f"plugin_app() needs an entry point, a module or a name, got {target!r}")
    text = target.strip()
    if "=" in text:
        name, value = (part.strip() for part in text.split("=", 1))
        return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
    installed = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if text in installed:
        return installed[text]
    try:
        module = importlib.import_module(text)
    except ImportError as exc:
        known = ", ".join(sorted(installed)) or "none"
        raise LookupError(
            f"{text!r} is neither an installed plugin (installed: {known}) nor an importable module: {exc}"
        ) from exc
    return EntryPoint(name=_manifest_name(module), value=module.__name__, group=ENTRY_POINT_GROUP)


def _manifest_name(module: ModuleType) -> str:
    manifest = getattr(module, "manifest", None)
    name = getattr(manifest, "name", None) or (manifest.get("name") if isinstance(manifest, dict) else None)
    if not name:
        raise LookupError(f"module {module.__name__} has no 'manifest' with a name; is it a Praxis plugin module?")
    return str(name)


def clinic_defaults(country: str) -> tuple[str, str]:
    """A plausible time zone and locale for a country (from CLDR data), e.g. HU -> Europe/Budapest, hu."""
    from babel.core import get_global

    zones = get_global("territory_zones").get(country.upper(), [])
    languages = get_global("territory_languages").get(country.upper(), {})
    official = [code for code, info in languages.items() if info.get("official_status") == "official"]
    timezone = zones[0] if len(zones) == 1 else "UTC"
    locale = (official or list(languages) or ["en"])[0]
    return timezone, locale


class TestDatabase:
    """A throw-away database: a SQLite file in ``workdir``, or a fresh PostgreSQL database when
    ``PRAXIS_TEST_DATABASE_URL`` is set.

    Migrating the core schema is the slow part of building an app, so it happens once per process into a
    template (a SQLite file, or a PostgreSQL template database) that each test database is copied from.
    The copy is exactly what a fresh migration would give; start-up still checks it is at head.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, workdir: Path, admin_url: str | None = None) -> None:
        self.admin_url = admin_url if admin_url is not None else os.environ.get(DATABASE_ENV)
        self._name: str | None = None
        if not self.admin_url:
            path = workdir / "praxis.db"
            shutil.copyfile(_sqlite_template(), path)
            self.url = f"sqlite:///{path}"
            return
        self._name = _pg_copies(self.admin_url).take()
        self.url = _database_url(self.admin_url, self._name)

    def drop(self) -> None:
        if self._name is None or self.admin_url is None:
            return
        _pg_copies(self.admin_url).discard(self._name)
        self._name = None


_templates: dict[str, str] = {}
_templates_lock = threading.Lock()


def _migrate(url: str) -> None:
    from core import schema
    from core.db import make_engine

    engine = make_engine(url)
    try:
        schema.upgrade_core(engine)
    finally:
        engine.dispose()


def _sqlite_template() -> str:
    with _templates_lock:
        if "sqlite" not in _templates:
            folder = tempfile.mkdtemp(prefix="praxis-test-template-")
            atexit.register(shutil.rmtree, folder, True)
            path = os.path.join(folder, "template.db")
            _migrate(f"sqlite:///{path}")
            with closing(sqlite3.connect(path)) as connection:  # fold the WAL in: the copy must be one file
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                connection.execute("PRAGMA journal_mode=DELETE")
            _templates["sqlite"] = path
        return _templates["sqlite"]


def _pg_template(admin_url: str) -> str:
    from sqlalchemy import text

    with _templates_lock:
        if admin_url not in _templates:
            name = f"praxis_tpl_{uuid.uuid4().hex[:12]}"
            engine = _admin_engine(admin_url)
            try:
                with engine.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
            finally:
                engine.dispose()
            try:
                _migrate(_database_url(admin_url, name))
            except BaseException:
                _drop_pg(admin_url, name)
                raise
            atexit.register(_drop_pg, admin_url, name)
            _templates[admin_url] = name
        return _templates[admin_url]


class _PgCopies:
    """Copies of the migrated template, made ahead of need and dropped behind, by one background thread.

    Copying a database with many tables and dropping it costs PostgreSQL a few hundred milliseconds, which
    would otherwise be spent between every two tests; done by the server while the next test runs, on the
    other core, it mostly disappears. Every copy is made from the same, never-changing template, so a test
    cannot tell whether its database was made before or after it asked.
    """

    READY = 2

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.template = _pg_template(admin_url)
        self._ready: list[str] = []
        self._doomed: list[str] = []
        self._error: BaseException | None = None
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="praxis-test-databases", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def take(self) -> str:
        with self._changed:
            while not self._ready and self._error is None:
                self._changed.notify_all()
                self._changed.wait()
            if not self._ready:
                raise RuntimeError("could not copy the test database template") from self._error
            name = self._ready.pop(0)
            self._changed.notify_all()
            return name

    def discard(self, name: str) -> None:
        with self._changed:
            self._doomed.append(name)
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout=60)
        for name in self._ready + self._doomed:
            _drop_pg(self.admin_url, name)
        self._ready.clear()
        self._doomed.clear()

    def _work(self) -> None:
        from sqlalchemy import text

        engine = _admin_engine(self.admin_url)
        try:
            while True:
                with self._changed:
                    while not self._closed and not self._doomed and len(self._ready) >= self.READY:
                        self._changed.wait()
                    if self._closed:
                        return
                    doomed = self._doomed.pop(0) if len(self._ready) >= 1 and self._doomed else None
                with engine.connect() as connection:
                    if doomed is not None:
                        connection.execute(text(f'DROP DATABASE IF EXISTS "{doomed}" WITH (FORCE)'))
                        continue
                    name = f"praxis_p_{uuid.uuid4().hex[:12]}"
                    connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
                with self._changed:
                    self._ready.append(name)
                    self._changed.notify_all()
        except BaseException as error:  # noqa: BLE001 - handed to the test waiting in take()
            with self._changed:
                self._error = error
                self._changed.notify_all()
        finally:
            engine.dispose()


_copies: dict[str, _PgCopies] = {}


def _pg_copies(admin_url: str) -> _PgCopies:
    with _templates_lock:
        copies = _copies.get(admin_url)
    if copies is None:
        made = _PgCopies(admin_url)
        with _templates_lock:
            copies = _copies.setdefault(admin_url, made)
        if copies is not made:
            made.close()
    return copies


def _admin_engine(admin_url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(_psycopg(admin_url), isolation_level="AUTOCOMMIT")


def _database_url(admin_url: str, name: str) -> str:
    return _psycopg(f"{admin_url.rsplit('/', 1)[0]}/{name}")


def _drop_pg(admin_url: str, name: str) -> None:
    from sqlalchemy import text

    engine = _admin_engine(admin_url)
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _psycopg(url: str) -> str:
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


@dataclass
class OutboxInspector:
    """Look at and run the outbox of a test app."""

    praxis: Praxis
    plugin: str

    def items(self, status: str | None = None, topic: str | None = None, *, plugin: str | None = "",
              clinic_id: int | None = None) -> list[OutboxItem]:
        """Outbox items, oldest first. By default only the plugin under test's; ``plugin=None`` for all."""
        from sqlmodel import Session, col, select

        from core.models.outbox import OutboxItem

        query = select(OutboxItem)
        owner = self.plugin if plugin == "" else plugin
        if owner is not None:
            query = query.where(OutboxItem.plugin == owner)
        if status is not None:
            query = query.where(OutboxItem.status == str(status))
        if topic is not None:
            query = query.where(OutboxItem.topic == topic)
        if clinic_id is not None:
            query = query.where(OutboxItem.clinic_id == clinic_id)
        with Session(self.praxis.engine) as session:
            return list(session.exec(query.order_by(col(OutboxItem.created_at), col(OutboxItem.id))).all())

    def run(self, *, max_rounds: int = 100) -> int:
        """Let a worker process everything due now, round after round, until nothing due is left. Each round
        also runs the periodic jobs due at the current (test) time.

        Items waiting for a later retry stay pending: move ``praxis_clock`` forward and call ``run`` again.
        Returns how many items were processed.
        """
        from core.outbox.worker import Worker

        worker = Worker(self.praxis, name="plugin-test")
        total = 0
        for _ in range(max_rounds):
            processed = worker.run_once()
            if not processed:
                return total
            total += processed
        raise RuntimeError(
            f"the outbox still had due items after {max_rounds} rounds; does a handler keep re-queueing work?"
        )


@dataclass
class EventHelper:
    """Emit domain events the way the core does (through the outbox) and read back those queued."""

    praxis: Praxis
    plugin: str
    clinic_id: int

    def emit(self, name: str, *, subject_type: str, subject_id: str | int, data: dict[str, Any] | None = None,
             clinic_id: int | None = None, actor_id: int | None = None) -> DomainEvent:
        """Queue ``name`` for every plugin enabled in the clinic that implements ``praxis_on_event``; deliver
        it with ``app.outbox.run()``."""
        from core import events
        from core.audit import Actor
        from core.db import transaction

        with transaction(self.praxis.engine) as session:
            return events.emit(
                session, self.praxis.runtime, name, clinic_id=clinic_id or self.clinic_id,
                subject_type=subject_type, subject_id=subject_id, data=data,
                actor=Actor(actor_id, TEST_ACTOR_NAME) if actor_id is not None else None,
            )

    def queued(self, status: str | None = None) -> list[DomainEvent]:
        """Events queued for the plugin under test (optionally only those in ``status``), oldest first."""
        from core.events import EVENT_TOPIC

        inspector = OutboxInspector(self.praxis, self.plugin)
        return [DomainEvent.model_validate(item.payload) for item in inspector.items(status, EVENT_TOPIC)]


@dataclass
class PluginApp:
    """What ``plugin_app(...)`` returns."""

    praxis: Praxis
    plugin: str
    clinic_id: int
    outbox: OutboxInspector
    events: EventHelper
    database: TestDatabase
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _client: Any = field(default=None, repr=False)
    _user_id: int | None = field(default=None, repr=False)

    @property
    def client(self) -> Any:
        """A ``TestClient`` of the full app (plugin routes mounted), authenticated by an API token of a user
        with the ``admin`` role in the clinic. Created on first use."""
        if self._client is None:
            self._client, self._user_id = _admin_client(self.praxis, self.clinic_id)
            self._closers.append(self._client.close)
        return self._client

    @property
    def user_id(self) -> int:
        """The id of the admin user behind ``client``."""
        self.client  # noqa: B018  (creates the user)
        assert self._user_id is not None
        return self._user_id

    @property
    def ctx(self) -> Any:
        """A fresh ``PluginContext`` for the plugin in its clinic (it sees the settings saved last)."""
        return self.praxis.runtime.context(self.plugin, self.clinic_id)

    def context(self, clinic_id: int | None = None, plugin: str | None = None) -> Any:
        return self.praxis.runtime.context(plugin or self.plugin, clinic_id or self.clinic_id)

    @property
    def actor(self) -> Any:
        from core.audit import Actor

        return Actor(None, TEST_ACTOR_NAME)

    def configure(self, settings: dict[str, Any], clinic_id: int | None = None) -> dict[str, Any]:
        """Save settings as an admin would (validated, secrets encrypted); returns the public view."""
        return self.praxis.plugins.configure(clinic_id or self.clinic_id, self.plugin, settings, self.actor)

    def enable(self, clinic_id: int | None = None) -> list[str]:
        return self.praxis.plugins.enable(clinic_id or self.clinic_id, self.plugin, self.actor,
                                          with_dependencies=True)

    def disable(self, clinic_id: int | None = None) -> bool:
        return self.praxis.plugins.disable(clinic_id or self.clinic_id, self.plugin, self.actor)

    def add_clinic(self, name: str = "Second clinic", country: str = "HU", *, timezone: str | None = None,
                   locale: str | None = None, enable: bool = False) -> int:
        """Another clinic (the plugin is off there unless ``enable``)."""
        clinic_id = _add_clinic(self.praxis, name, country, timezone, locale)
        if enable:
            self.enable(clinic_id)
        return clinic_id

    def call(self, hook: str, clinic_id: int | None = None, **kwargs: Any) -> list[HookResult]:
        """Call a per-clinic hook on the plugin under test through the runtime (isolated, counted)."""
        return self.praxis.runtime.call(hook, clinic_id or self.clinic_id, only=[self.plugin], **kwargs)

    def veto(self, hook: str, clinic_id: int | None = None, **kwargs: Any) -> None:
        """Run a validation hook as the core does; raises ``ValidationFailed`` if any enabled plugin refuses."""
        self.praxis.runtime.veto(hook, clinic_id or self.clinic_id, **kwargs)

    def collect(self, hook: str, **kwargs: Any) -> list[Any]:
        """The values the plugin under test returns from a contribution hook (errors re-raised)."""
        values = []
        for result in self.praxis.runtime.collect(hook, **kwargs):
            if result.plugin != self.plugin:
                continue
            if result.error is not None:
                raise AssertionError(f"{self.plugin}.{hook} failed: {result.error}")
            values.append(result.value)
        return values

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()


def _admin_client(praxis: Praxis, clinic_id: int) -> tuple[Any, int]:
    from fastapi.testclient import TestClient

    from core.api.app import create_app
    from core.audit import Actor
    from core.auth.permissions import ADMIN, catalog
    from core.auth.sessions import create_token
    from core.auth.users import MembershipSpec, create_user
    from core.db import transaction

    with transaction(praxis.engine) as session:
        user = create_user(
            session, catalog(praxis.runtime), Actor(None, TEST_ACTOR_NAME),
            login=f"plugin-test-{secrets.token_hex(4)}", name="Plugin Test Admin", password=None,
            memberships=[MembershipSpec(clinic_id, ADMIN)],
        )
        assert user.id is not None
        token = create_token(session, user.id, "plugin test").secret
        user_id = user.id
    client = TestClient(create_app(praxis, start_worker=False))
    client.headers["Authorization"] = f"Bearer {token}"
    return client, user_id


def _add_clinic(praxis: Praxis, name: str, country: str, timezone: str | None, locale: str | None) -> int:
    from core.db import transaction
    from core.models.clinic import Clinic

    default_tz, default_locale = clinic_defaults(country)
    with transaction(praxis.engine) as session:
        clinic = Clinic(name=name, country=country.upper(), timezone=timezone or default_tz,
                        locale=locale or default_locale)
        session.add(clinic)
        session.flush()
        praxis.plugins.seed(session, clinic)
        assert clinic.id is not None
        clinic_id = clinic.id
    praxis.runtime.state.invalidate()
    return clinic_id


def build_plugin_app(
    target: PluginTarget,
    *,
    workdir: Path,
    settings: dict[str, Any] | None = None,
    country: str = "HU",
    clinic_name: str = "Test clinic",
    timezone: str | None = None,
    locale: str | None = None,
    also: Iterable[PluginTarget] = (),
    enable: bool = True,
    plugins_toml: str | None = None,
    database_url: str | None = None,
) -> PluginApp:
    """Build the app. ``also`` installs more plugins (e.g. ones the plugin requires); they are enabled with
    it when it needs them. Call ``close()`` when done (the fixture does)."""
    from core.app_context import bootstrap
    from core.config import Settings

    entry_point = resolve_entry_point(target)
    entry_points = [entry_point, *[resolve_entry_point(t) for t in also]]
    workdir.mkdir(parents=True, exist_ok=True)
    plugins_file = workdir / "plugins.toml"
    if plugins_toml is not None:
        plugins_file.write_text(plugins_toml, encoding="utf-8")
    database = TestDatabase(workdir, database_url)
    closers: list[Callable[[], None]] = [database.drop]
    try:
        praxis = bootstrap(
            Settings(
                data_dir=workdir / "data",
                database_url=database.url,
                plugins_file=plugins_file,
                master_key=f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
                state_refresh_seconds=0.0,
                embedded_worker=False,
            ),
            entry_points=entry_points,
        )
    except BaseException:
        database.drop()
        raise
    closers.append(praxis.close)
    name = entry_point.name
    try:
        loaded = praxis.runtime.get(name)
        if loaded is None or loaded.quarantined:
            reason = loaded.quarantine_reason if loaded else "not found"
            raise AssertionError(f"plugin {name!r} did not load: {reason}")
        clinic_id = _add_clinic(praxis, clinic_name, country, timezone, locale)
        app = PluginApp(praxis, name, clinic_id, OutboxInspector(praxis, name), EventHelper(praxis, name, clinic_id),
                        database, closers)
        if enable:
            app.enable()
        if settings:
            app.configure(settings)
    except BaseException:
        for close in reversed(closers):
            close()
        raise
    return app
