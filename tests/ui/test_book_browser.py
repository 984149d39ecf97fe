"""Browser tests of the desk and the appointment book (Playwright on Debian's Chromium): a field error on a
new patient, booking in the grid and moving the appointment by dragging and by keyboard, cancelling it and
restoring it from the trash.

The server and browser are module fixtures built like test_browser.py's (its helpers are reused). They are
not shared with it: two sync Playwright instances cannot be alive at once, so this module's browser is
closed when the module ends, before test_browser.py (collected after this file) starts its session one.
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
from tests.ui.conftest import ui_plugin
from tests.ui.screens import DAY, set_up_book
from tests.ui.test_browser import PASSWORD, _database, launch_chromium, log_in, open_tab


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("ui-book-browser")
    url, drop = _database(tmp)
    settings = Settings(data_dir=tmp / "data", database_url=url, plugins_file=tmp / "plugins.toml",
                        master_key=f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
                        state_refresh_seconds=0.0, embedded_worker=False, circuit_threshold=3)
    praxis = bootstrap(settings, entry_points=[ui_plugin()])
    clinic = add_clinic(praxis, "Seoul Dental", country="KR", timezone="Asia/Seoul", locale="en")
    create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD, name="Anna Admin")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(praxis, start_worker=False), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="ui-book-test-server", daemon=True)
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
    # module scope: this module's browser closes before test_browser.py's session browser starts
    yield from launch_chromium()


@pytest.fixture
def page(browser: Any, live: dict[str, Any]) -> Iterator[Any]:
    yield from open_tab(browser, live["base_url"])


def test_creating_a_patient_shows_a_field_error_then_registers(page, live):
    from playwright.sync_api import expect

    log_in(page)
    page.goto(f"/clinics/{live['clinic']}/desk/new")
    family = page.locator("#f-family_name")
    page.get_by_label("Given name", exact=True).fill("Jisoo")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.locator("#f-family_name-error")).to_have_text("This field is required.")
    expect(family).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Given name", exact=True)).to_have_value("Jisoo")  # what was typed stays
    family.fill("Park")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Park Jisoo")
    expect(page.locator("#flash")).to_contain_text("Park Jisoo is registered with chart number")
    assert _script_errors(page) == []


def _script_errors(tab: Any) -> list[str]:
    """Console errors other than a refused form's own 422 (and the absent favicon): scripts, CSP, htmx."""
    return [e for e in tab.console_errors if "Failed to load resource" not in e]


def _block(tab: Any, name: str) -> Any:
    return tab.locator(".appt", has_text=name)


def test_booking_in_the_grid_then_moving_by_drag_and_by_keyboard(page, live):
    from playwright.sync_api import expect

    data = set_up_book(live["praxis"], live["clinic"])
    page.set_viewport_size({"width": 1400, "height": 1300})  # the whole working day on screen for the drag
    log_in(page)
    page.goto(f"/clinics/{live['clinic']}/book?day={DAY}")
    column = page.locator(f'.col-body[data-doctor="{data.doctor}"]')
    column.locator('.slot[data-time="11:00"]').click()
    dialog = page.locator("#book-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Start")).to_have_value("11:00")
    dialog.get_by_label("New person's name").fill("Lee Jiwoo")
    dialog.get_by_label("New person's phone").fill("010-1234-5678")
    dialog.get_by_role("button", name="Book", exact=True).click()
    expect(dialog).to_be_hidden()
    block = _block(page, "Lee Jiwoo")
    expect(block).to_have_attribute("data-start", "11:00")
    expect(page.locator("#flash")).to_contain_text("Booked for")

    # drag it by its top edge to 15:00
    target = column.locator('.slot[data-time="15:00"]').bounding_box()
    box = block.bounding_box()
    assert target is not None and box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 4)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40, steps=4)
    page.mouse.move(target["x"] + target["width"] / 2, target["y"] + 4, steps=8)
    page.mouse.up()
    expect(_block(page, "Lee Jiwoo")).to_have_attribute("data-start", "15:00")
    expect(page.locator("#flash")).to_contain_text("Moved to")

    # the keyboard alternative: Alt+Down moves it one grid step later
    _block(page, "Lee Jiwoo").focus()
    page.keyboard.press("Alt+ArrowDown")
    expect(_block(page, "Lee Jiwoo")).to_have_attribute("data-start", "15:15")
    assert _script_errors(page) == []


def test_cancelling_an_appointment_and_restoring_it_from_the_trash(page, live):
    from playwright.sync_api import expect

    set_up_book(live["praxis"], live["clinic"])
    log_in(page)
    page.goto(f"/clinics/{live['clinic']}/book?day={DAY}")
    _block(page, "Kovács Anna").click()
    dialog = page.locator("#book-dialog")
    expect(dialog.get_by_role("heading", name="Kovács Anna")).to_be_visible()
    dialog.get_by_role("link", name="Cancel", exact=True).click()
    dialog.get_by_label("Reason").select_option(label="Patient ill")
    dialog.get_by_role("button", name="Cancel the appointment").click()
    expect(dialog).to_be_hidden()
    expect(_block(page, "Kovács Anna")).to_have_count(0)
    trash = page.locator("#appointment-trash")
    expect(trash).to_contain_text("Kovács Anna")
    trash.get_by_role("button", name="Restore the appointment of Kovács Anna").click()
    expect(_block(page, "Kovács Anna")).to_have_attribute("data-start", "09:00")
    expect(page.locator("#flash")).to_contain_text("The appointment is restored.")
    assert _script_errors(page) == []
