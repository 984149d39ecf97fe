"""Fixtures of the UI tests. The browser fixtures (Playwright driving Debian's /usr/bin/chromium) live in
test_browser.py's module fixtures; this file adds the screenshot-on-failure hook they rely on."""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def ui_plugin(name: str = "reminders") -> EntryPoint:
    return EntryPoint(name=name, value=f"tests.ui.{name}_plugin", group="praxis.plugins")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if page is None:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid) + ".png")
    try:
        page.screenshot(path=str(target), full_page=True)
        report.sections.append(("screenshot", str(target)))
    except Exception as exc:  # a crashed page must not hide the test's own failure
        report.sections.append(("screenshot", f"could not save a screenshot: {exc}"))
