"""The SDK's test tools themselves: the clock, the loopback fake server with its faults, and plugin_app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from importlib.metadata import EntryPoint
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from core import clock
from plugin_sdk.testing import FakeServer, PraxisClock
from plugin_sdk.testing.app import clinic_defaults, resolve_entry_point
from tests.fixture_plugins import greeter

GREETER = "greeter = tests.fixture_plugins.greeter"


# --- clock ---------------------------------------------------------------------------------------------


def test_praxis_clock_is_frozen_and_moves_only_when_told(praxis_clock: PraxisClock) -> None:
    start = praxis_clock.now
    assert start == PraxisClock.DEFAULT_START and start.tzinfo is not None
    assert clock.now() == start
    assert praxis_clock.advance(timedelta(minutes=90)) == start + timedelta(minutes=90)
    assert clock.now() == start + timedelta(minutes=90)
    budapest = timezone(timedelta(hours=1))
    assert praxis_clock.set(datetime(2026, 6, 1, 12, 0, tzinfo=budapest)) == datetime(2026, 6, 1, 11, 0, tzinfo=UTC)
    assert clock.now().tzinfo == UTC


def test_praxis_clock_refuses_naive_times_and_going_backward_by_advance(praxis_clock: PraxisClock) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        praxis_clock.set(datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="backward"):
        praxis_clock.advance(timedelta(seconds=-1))
    with pytest.raises(TypeError):
        praxis_clock.advance(5)  # type: ignore[arg-type]


def test_the_system_clock_is_back_after_uninstall() -> None:
    frozen = PraxisClock(datetime(2001, 1, 1, tzinfo=UTC))
    with frozen:
        assert clock.now().year == 2001
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_plugin_contexts_read_the_test_clock(plugin_app: Any, praxis_clock: PraxisClock) -> None:
    app = plugin_app(GREETER)
    praxis_clock.advance(timedelta(days=3))
    assert app.ctx.now() == PraxisClock.DEFAULT_START + timedelta(days=3)


# --- fake server ---------------------------------------------------------------------------------------


class EchoVendor(FakeServer):
    def build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/things")
        def create(body: dict[str, Any]) -> dict[str, Any]:
            self.record_effect(body)
            return {"stored": body}

        @app.get("/status")
        def status() -> dict[str, str]:
            return {"status": "ok"}

        return app


@pytest.fixture
def vendor() -> Iterator[EchoVendor]:
    with EchoVendor() as server:
        yield server


@pytest.fixture
def http(vendor: EchoVendor) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=vendor.base_url, timeout=0.5) as client:
        yield client


def test_the_fake_serves_on_loopback_and_records_requests(vendor: EchoVendor, http: httpx.Client) -> None:
    assert vendor.base_url.startswith("http://127.0.0.1:")
    answer = http.post("/things?x=1", json={"a": 1}, headers={"X-Trace": "t1"})
    assert answer.json() == {"stored": {"a": 1}}
    (request,) = vendor.requests
    assert (request.method, request.path, request.query) == ("POST", "/things", "x=1")
    assert request.headers["x-trace"] == "t1" and request.json() == {"a": 1} and request.fault is None
    assert vendor.effects == [{"a": 1}]


def test_fail_next_answers_errors_without_acting_then_recovers(vendor: EchoVendor, http: httpx.Client) -> None:
    vendor.fail_next(2, status=503)
    assert [http.post("/things", json={"n": i}).status_code for i in range(3)] == [503, 503, 200]
    assert vendor.effects == [{"n": 2}]
    assert [r.fault for r in vendor.requests] == ["status:503", "status:503", None]


def test_rate_limit_next_sends_retry_after(vendor: EchoVendor, http: httpx.Client) -> None:
    vendor.rate_limit_next(1, retry_after=9)
    answer = http.get("/status")
    assert answer.status_code == 429 and answer.headers["retry-after"] == "9"
    assert answer.json()["error"]["code"] == "rate_limited"
    assert http.get("/status").status_code == 200


def test_faults_can_target_a_path_or_method(vendor: EchoVendor, http: httpx.Client) -> None:
    vendor.fail_next(1, status=500, path="/things", method="POST")
    assert http.get("/status").status_code == 200
    assert vendor.pending_faults == 1
    assert http.post("/things", json={}).status_code == 500
    assert vendor.pending_faults == 0


def test_a_hang_outlasts_the_client_timeout_and_the_vendor_does_nothing(vendor: EchoVendor,
                                                                       http: httpx.Client) -> None:
    vendor.hang_next(1, seconds=5)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.post("/things", json={"lost": True})
    assert time.monotonic() - started < 2
    vendor.release()
    assert vendor.effects == []
    assert http.post("/things", json={"n": 1}).status_code == 200


def test_a_hang_after_acting_loses_only_the_answer(vendor: EchoVendor, http: httpx.Client) -> None:
    vendor.hang_next(1, seconds=5, after=True)
    with pytest.raises(httpx.ReadTimeout):
        http.post("/things", json={"sent": True})
    assert vendor.effects == [{"sent": True}]
    assert vendor.requests[0].fault == "hang-after"


def test_a_stopped_fake_refuses_connections_and_restarts_on_the_same_port(vendor: EchoVendor,
                                                                          http: httpx.Client) -> None:
    port = vendor.port
    vendor.stop()
    with pytest.raises(httpx.ConnectError):
        http.get("/status")
    vendor.start()
    assert vendor.port == port and http.get("/status").status_code == 200


def test_a_plain_asgi_app_can_be_served_and_misuse_is_explained() -> None:
    app = FastAPI()
    app.get("/")(lambda: {"ok": True})
    with FakeServer(app) as server:
        assert httpx.get(server.base_url + "/").json() == {"ok": True}
    with pytest.raises(TypeError, match="pass an app"):
        FakeServer()
    with pytest.raises(RuntimeError, match="not running"):
        FakeServer(app).base_url  # noqa: B018
    with pytest.raises(ValueError, match="error status"):
        FakeServer(app).fail_next(1, status=200)


# --- plugin_app ----------------------------------------------------------------------------------------


def test_plugin_app_enables_and_configures_the_plugin_with_encrypted_secrets(plugin_app: Any) -> None:
    from sqlmodel import Session, select

    from core.models.plugin import PluginState

    app = plugin_app(GREETER, settings={"retries": 5, "api_key": "s3cret-value"}, country="KR")
    assert app.plugin == "greeter" and app.praxis.runtime.is_enabled(app.clinic_id, "greeter")
    assert (app.ctx.clinic.country, app.ctx.clinic.timezone, app.ctx.clinic.locale) == ("KR", "Asia/Seoul", "ko")
    assert app.ctx.settings.retries == 5
    assert app.ctx.settings.api_key.get_secret_value() == "s3cret-value"
    with Session(app.praxis.engine) as session:
        row = session.exec(select(PluginState).where(PluginState.plugin == "greeter")).one()
    assert "s3cret-value" not in str(row.secrets) and row.settings["retries"] == 5


def test_plugin_app_accepts_modules_entry_points_and_names(plugin_app: Any) -> None:
    assert resolve_entry_point(greeter).value == "tests.fixture_plugins.greeter"
    assert resolve_entry_point(greeter).name == "greeter"
    assert resolve_entry_point("tests.fixture_plugins.greeter").name == "greeter"
    point = EntryPoint(name="greeter", value="tests.fixture_plugins.greeter", group="praxis.plugins")
    assert resolve_entry_point(point) is point
    assert plugin_app(greeter).plugin == "greeter"
    with pytest.raises(LookupError, match="neither an installed plugin"):
        resolve_entry_point("no_such_plugin_or_module")
    with pytest.raises(LookupError, match="has no 'manifest'"):
        resolve_entry_point("tests.sdk")


def test_plugin_app_refuses_a_plugin_that_does_not_load(plugin_app: Any) -> None:
    with pytest.raises(AssertionError, match="did not load: invalid manifest"):
        plugin_app("bad_manifest = tests.fixture_plugins.bad_manifest")


def test_plugin_app_settings_are_validated(plugin_app: Any) -> None:
    from core.plugins.settings import SettingsInvalid

    with pytest.raises(SettingsInvalid) as refused:
        plugin_app(GREETER, settings={"retries": 99})
    assert refused.value.errors[0].field == "retries"


def test_plugin_app_client_is_an_authenticated_admin(plugin_app: Any) -> None:
    app = plugin_app(GREETER)
    answer = app.client.get(f"/api/clinics/{app.clinic_id}/plugins")
    assert answer.status_code == 200, answer.text
    assert any(p["name"] == "greeter" and p["state"] == "enabled" for p in answer.json())
    assert isinstance(app.user_id, int)
    from fastapi.testclient import TestClient

    anonymous = TestClient(app.client.app)
    assert anonymous.get(f"/api/clinics/{app.clinic_id}/plugins").status_code == 401


def test_plugin_app_outbox_and_events(plugin_app: Any) -> None:
    greeter.EVENTS.clear()
    app = plugin_app(GREETER)
    other = app.add_clinic("Elsewhere", "HU")
    event = app.events.emit("appointment.created", subject_type="appointment", subject_id=12)
    app.events.emit("appointment.created", subject_type="appointment", subject_id=13, clinic_id=other)
    assert [e.id for e in app.events.queued()] == [event.id]  # not enabled elsewhere: nothing queued there
    assert [i.status for i in app.outbox.items()] == ["pending"]
    assert app.outbox.run() == 1
    assert greeter.EVENTS == [(app.clinic_id, "appointment.created")]
    assert [i.status for i in app.outbox.items(status="done")] == ["done"]
    assert app.outbox.run() == 0


def test_clinic_defaults_come_from_cldr() -> None:
    assert clinic_defaults("HU") == ("Europe/Budapest", "hu")
    assert clinic_defaults("kr") == ("Asia/Seoul", "ko")
    assert clinic_defaults("XX") == ("UTC", "en")
