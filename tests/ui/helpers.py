"""Helpers for the UI tests: a browser-like TestClient that logs in through the login form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.auth_helpers import app_for

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


def web_client(praxis, **headers: str) -> TestClient:  # type: ignore[no-untyped-def]
    """A cookie-keeping client that sends Origin like a browser does on form posts."""
    client = TestClient(app_for(praxis), base_url="http://testserver")
    client.headers.update({"Origin": "http://testserver", **headers})
    return client


def log_in(client: TestClient, login: str, password: str, next_url: str = "") -> object:
    page = client.get("/login")
    assert page.status_code == 200, page.text
    return client.post("/login", data={"login": login, "password": password, "csrf_token": csrf_of(page.text),
                                       "next": next_url}, follow_redirects=False)
