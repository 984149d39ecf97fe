"""Browser tests: Playwright (Python) driving Debian's Chromium against uvicorn on 127.0.0.1.

No browser is downloaded: Chromium comes from Debian (scripts/install-browser.sh, called by `make install`).
Without /usr/bin/chromium these tests fail with that instruction instead of being skipped. A failing test
leaves a screenshot in test-artifacts/ (hook in conftest.py).
"""

from __future__ import annotations

import base64
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import create_engine, text

from core.api.app import create_app
from core.app_context import bootstrap
from core.config import Settings
from tests.auth_helpers import create_user
from tests.conftest import PG_ADMIN_URL, add_clinic, fixture_plugin
from tests.ui.conftest import ui_plugin

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The whole app on a free loopback port, with one clinic, one administrator and the fixture plugins."""
    tmp = tmp_path_factory.mktemp("ui-browser")
    url, drop = _database(tmp)
    settings = Settings(data_dir=tmp / "data", database_url=url, plugins_file=tmp / "plugins.toml",
                        master_key=f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
                        state_refresh_seconds=0.0, embedded_worker=False, circuit_threshold=3)
    praxis = bootstrap(settings, entry_points=[ui_plugin(), fixture_plugin("greeter")])
    clinic = add_clinic(praxis, "Seoul Dental", country="KR", timezone="Asia/Seoul", locale="en")
    create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD, name="Anna Admin")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(praxis, start_worker=False), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="ui-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield {"base_url": f"http://127.0.0.1:{port}", "clinic": clinic, "praxis": praxis}
    server.should_exit = True
    thread.join(timeout=10)
    praxis.close()
    drop()


def _database(tmp: Path) -> tuple[str, Any]:
    if not PG_ADMIN_URL:
        return f"sqlite:///{tmp / 'praxis.db'}", lambda: None
    name = f"praxis_ui_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1), drop


def launch_chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (no browser download); shared by the browser test modules."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. "
                    "Run scripts/install-browser.sh (make install does) and try again.", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def open_tab(browser: Any, base_url: str) -> Iterator[Any]:
    """A fresh browser context and tab on the live app, collecting console errors in ``tab.console_errors``."""
    context = browser.new_context(base_url=base_url, locale="en-US")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.console_errors = []
    tab.on("console", lambda message: message.type == "error" and tab.console_errors.append(message.text))
    yield tab
    context.close()


@pytest.fixture(scope="module")  # closed with this module: later browser modules start their own (one at a time)
def browser() -> Iterator[Any]:
    yield from launch_chromium()


@pytest.fixture
def page(browser: Any, live: dict[str, Any]) -> Iterator[Any]:
    yield from open_tab(browser, live["base_url"])


def log_in(page: Any, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Login name").fill("anna")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()


def test_login_with_a_wrong_password_then_the_right_one(page, live):
    from playwright.sync_api import expect

    log_in(page, "not the password")
    expect(page.locator("#password-error")).to_have_text("Wrong login name or password.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    log_in(page)
    expect(page).to_have_url(re.compile(rf"/clinics/{live['clinic']}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Seoul Dental")


def test_switching_a_plugin_on_shows_its_menu_item_and_off_removes_it(page, live):
    from playwright.sync_api import expect

    log_in(page)
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Plugins").click()
    menu = page.get_by_role("navigation", name="Main menu")
    reminders = menu.get_by_role("link", name="Reminders")
    expect(reminders).to_have_count(0)
    page.get_by_role("switch", name="Reminders").click()
    expect(reminders).to_be_visible()
    expect(page.get_by_role("switch", name="Reminders")).to_have_attribute("aria-checked", "true")
    expect(page.locator("#flash")).to_contain_text("Enabled: Reminders.")
    page.get_by_role("switch", name="Reminders").click()
    expect(reminders).to_have_count(0)
    expect(page.get_by_role("switch", name="Reminders")).to_have_attribute("aria-checked", "false")
    assert page.console_errors == []  # no CSP violation, no htmx error


def test_a_settings_error_is_shown_next_to_its_field(page, live):
    from playwright.sync_api import expect

    log_in(page)
    page.goto(f"/clinics/{live['clinic']}/admin/plugins/reminders")
    limit = page.get_by_label("Daily limit")
    limit.fill("9999")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#setting-daily_limit-error")).to_have_text("Enter a number no greater than 500.")
    expect(limit).to_have_attribute("aria-invalid", "true")
    expect(limit).to_have_value("9999")  # what was typed stays
    limit.fill("20")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#flash")).to_contain_text("Settings saved.")
    expect(page.locator("#setting-daily_limit-error")).to_be_empty()
    expect(limit).not_to_have_attribute("aria-invalid", "true")


def test_switching_to_korean_translates_the_labels(page, live):
    from playwright.sync_api import expect

    log_in(page)
    page.locator("#language-menu summary").click()
    page.get_by_role("button", name="한국어").click()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    menu = page.get_by_role("navigation", name="주 메뉴")
    menu.get_by_role("link", name="플러그인").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("플러그인")
    expect(page.get_by_role("heading", name="메시지 발송")).to_be_visible()
    page.get_by_role("link", name="예약 알림").click()  # the plugin's own Korean catalog
    expect(page.get_by_label("하루 최대 발송 수")).to_be_visible()
    expect(page.get_by_role("button", name="설정 저장")).to_be_visible()
