"""Contribution hooks: routes (mounted, 404 where disabled), templates, static files, translations, permissions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

from tests.sdk.plugins import hooked

HOOKED = "hooked = tests.sdk.plugins.hooked"


def test_praxis_routes_are_mounted_per_clinic_and_404_where_disabled(plugin_app: Any) -> None:
    app = plugin_app(HOOKED)
    (router,) = app.collect("praxis_routes")
    assert [route.path for route in router.routes] == ["/hello"]
    url = f"/api/clinics/{app.clinic_id}/x/hooked/hello"
    answer = app.client.get(url)
    assert answer.status_code == 200
    assert answer.json() == {"hello": "from hooked", "clinic_id": app.clinic_id}
    app.disable()
    assert app.client.get(url).status_code == 404
    app.enable()
    assert app.client.get(url).status_code == 200


def test_praxis_templates_dir_is_reachable_under_the_plugin_prefix(plugin_app: Any) -> None:
    from ui.web import Web

    app = plugin_app(HOOKED)
    assert app.collect("praxis_templates_dir") == [hooked.ASSETS / "templates"]
    web = Web(app.praxis)
    assert web.env.get_template("hooked/page.html").render(who="Éva") == '<p class="hooked">Hello from Éva</p>'


def test_praxis_static_dir_is_served_under_static_plugins(plugin_app: Any) -> None:
    app = plugin_app(HOOKED)
    assert app.collect("praxis_static_dir") == [hooked.ASSETS / "static"]
    answer = app.client.get("/static/plugins/hooked/hooked.css")
    assert answer.status_code == 200 and ".hooked { color: teal; }" in answer.text


def test_praxis_translations_dir_catalogs_are_merged(plugin_app: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.i18n import Catalogs

    catalog = Catalog(locale="hu", domain="praxis_hooked")
    catalog.add("Hooked greeting", "Üdvözlet a pluginból")
    target = tmp_path / "hu" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "praxis_hooked.mo").open("wb") as file:
        write_mo(file, catalog)
    monkeypatch.setattr(hooked, "TRANSLATIONS_DIR", tmp_path)
    app = plugin_app(HOOKED)
    catalogs = Catalogs.for_runtime(app.praxis.runtime)
    assert catalogs.plugin_domains["hooked"] == "praxis_hooked"
    assert catalogs.get("hu").gettext("Hooked greeting") == "Üdvözlet a pluginból"
    assert catalogs.get("en").gettext("Hooked greeting") == "Hooked greeting"


def test_praxis_permissions_adds_own_codes_and_ignores_foreign_ones(plugin_app: Any) -> None:
    from core.auth.permissions import plugin_permissions

    app = plugin_app(HOOKED)
    codes = {p.code: p.plugin for p in plugin_permissions(app.praxis.runtime)}
    assert codes.get("hooked.export") == "hooked"
    assert "other.stolen" not in codes
    (contributed,) = app.collect("praxis_permissions")
    assert [p.code for p in contributed] == ["hooked.export", "other.stolen"]
