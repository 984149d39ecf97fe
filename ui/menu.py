"""The main menu: the core's screens plus what enabled plugins contribute (``praxis_menu_items``).

Plugin menu items are asked for on every page, through ``runtime.call``, which reaches only the plugins
enabled in the clinic: a plugin switched off loses its items on the next page (or htmx swap). A plugin's
``MenuItem.url`` may contain ``{clinic_id}``; an item whose ``permission`` the user lacks is hidden.

Screens of the core register here with ``register`` (the desk and appointment-book modules add theirs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plugin_sdk.contributions import MenuItem
from ui import i18n
from ui.i18n import N_

if TYPE_CHECKING:
    from ui.web import Page

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoreItem:
    key: str
    title: str  # msgid of the core catalog
    path: str  # with {clinic_id}
    permission: str | None
    order: int


@dataclass(frozen=True)
class Entry:
    key: str
    title: str  # translated
    url: str
    plugin: str | None
    current: bool


CORE_ITEMS: dict[str, CoreItem] = {}


def register(item: CoreItem) -> None:
    CORE_ITEMS[item.key] = item


register(CoreItem("home", N_("Overview"), "/clinics/{clinic_id}/", None, 0))
register(CoreItem("plugins", N_("Plugins"), "/clinics/{clinic_id}/admin/plugins", "plugins.view", 900))


def _format(url: str, clinic_id: int) -> str:
    return url.replace("{clinic_id}", str(clinic_id))


def build_menu(page: Page) -> list[Entry]:
    clinic_id = page.clinic_id
    if clinic_id is None or page.principal is None:
        return []
    path = page.request.url.path
    found: list[tuple[int, str, Entry]] = []
    for item in CORE_ITEMS.values():
        if item.permission and not page.can(item.permission):
            continue
        url = _format(item.path, clinic_id)
        current = path == url if item.key == "home" else path.startswith(url)
        found.append((item.order, item.key, Entry(item.key, i18n.gettext(item.title), url, None, current)))
    for result in page.praxis.runtime.call("praxis_menu_items", clinic_id):
        if not result.ok or not result.value:
            continue
        for index, item in enumerate(result.value):
            if not isinstance(item, MenuItem):
                log.warning("plugin %s returned a menu item that is not a MenuItem: %r", result.plugin, item)
                continue
            if item.permission and not page.can(item.permission):
                continue
            url = _format(item.url, clinic_id)
            key = f"{result.plugin}.{index}"
            entry = Entry(key, i18n.plugin_text(result.plugin, item.title), url, result.plugin,
                          path == url or path.startswith(url.rstrip("/") + "/"))
            found.append((item.order, key, entry))
    found.sort(key=lambda x: (x[0], x[1]))
    return [entry for _, _, entry in found]
