"""Browser test of the messaging editors (Playwright on Debian's Chromium): a template written with a
placeholder inserted by its button and the live preview following the text (GSM-7, then Korean in UCS-2 over
two parts, then an unknown placeholder shown as the error); then a rule whose fields follow the chosen kind,
refused with the error next to its field, saved, and switched off from the list.

The server and browser are module fixtures built with test_browser.py's helpers (one sync Playwright at a time:
this module's browser is closed when the module ends).
"""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from core.api.app import create_app
from core.app_context import bootstrap
from core.config import Settings
from tests.auth_helpers import create_user
from tests.conftest import add_clinic
from tests.ui.test_browser import PASSWORD, _database, launch_chromium, log_in, open_tab


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("ui-messaging-browser")
    url, drop = _database(tmp)
    settings = Settings(data_dir=tmp / "data", database_url=url, plugins_file=tmp / "plugins.toml",
                        master_key=f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
                        state_refresh_seconds=0.0, embedded_worker=False, circuit_threshold=3)
    praxis = bootstrap(settings, entry_points=[])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD, name="Anna Admin")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(praxis, start_worker=False), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="ui-messaging-test-server", daemon=True)
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_chromium()


@pytest.fixture
def page(browser: Any, live: dict[str, Any]) -> Iterator[Any]:
    yield from open_tab(browser, live["base_url"])


def test_writing_a_template_with_the_live_preview_then_a_rule_that_sends_it(page, live):
    from playwright.sync_api import expect

    base = f"/clinics/{live['clinic']}/messaging"
    errors: list[tuple[str, str]] = []  # (text, url): the refused form's 422 page and the favicon are expected
    page.on("console", lambda m: m.type == "error" and errors.append((m.text, m.location.get("url", ""))))
    log_in(page)
    page.goto(f"{base}/templates/new")
    page.locator("#f-code").fill("reminder")
    body = page.locator("#f-body")
    body.fill("Hello ")
    page.get_by_role("button", name="Insert {given_name}").click()
    expect(body).to_have_value("Hello {given_name}")
    preview = page.locator("#preview")
    expect(preview.locator("#preview-body")).to_have_text("Hello Anna")
    expect(preview.locator("#preview-encoding")).to_have_text("GSM-7")
    expect(preview.locator("#preview-segments")).to_have_text("1")
    body.fill("안녕하세요 {given_name}님, " + "내일 예약이 있습니다. " * 6)
    expect(preview.locator("#preview-encoding")).to_have_text("UCS-2 (Unicode)")
    expect(preview.locator("#preview-segments")).to_have_text("2")
    body.fill("Hi {nev}")
    expect(preview.locator(".preview-error")).to_contain_text("Unknown placeholder {nev}")
    expect(preview.locator("#preview-body")).to_have_count(0)
    body.fill("Dear {patient_name}, see you on {date} at {time}.")
    expect(preview.locator("#preview-body")).to_have_text(
        "Dear Anna Kovács, see you on March 14, 2026 at 10:30\u202fAM.")
    page.get_by_role("button", name="Save the template").click()
    expect(page.locator("#flash")).to_contain_text("The template reminder (en) is saved.")

    page.goto(f"{base}/rules/new")
    page.get_by_label("Rule name").fill("Day before")
    kind = page.locator("#f-kind")
    kind.select_option("birthday")
    expect(page.locator("#f-params-days_before")).to_be_visible()
    expect(page.locator("#f-filters-day_type")).to_have_count(0)
    kind.select_option("days_before")
    expect(page.locator("#f-filters-day_type")).to_be_visible()
    page.locator("#f-params-days").fill("400")
    page.locator("#f-template_code").select_option("reminder")
    page.get_by_role("button", name="Save the rule").click()
    expect(page.locator("#f-params-days-error")).to_have_text("Enter a whole number from 0 to 365.")
    expect(page.locator("#f-params-days")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-template_code")).to_have_value("reminder")  # what was chosen stays
    page.locator("#f-params-days").fill("1")
    page.get_by_role("button", name="Save the rule").click()
    expect(page.locator("#flash")).to_contain_text("The rule is saved.")
    switch = page.get_by_role("switch", name="Day before")
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(page.locator("#rule-1")).to_contain_text("1 day before, at 10:00")
    switch.click()
    expect(page.get_by_role("switch", name="Day before")).to_have_attribute("aria-checked", "false")
    expect(page.locator("#flash")).to_contain_text("Day before is off.")
    unexpected = [(text, url) for text, url in errors
                  if not url.endswith("/favicon.ico") and not (url.endswith("/rules/new") and "422" in text)]
    assert unexpected == []  # no CSP violation, no htmx error
