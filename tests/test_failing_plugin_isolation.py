"""Done-means of the platform issue: a plugin that raises in its event hook never breaks the request that
caused the event, and after repeated failures it is marked unhealthy (with its last error) in the plugin list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import clock
from core.api.app import create_app
from core.audit import Actor
from core.outbox.worker import Worker
from tests.auth_helpers import client_for, create_user
from tests.conftest import add_clinic, fixture_plugin


@pytest.fixture
def frozen_clock():
    at = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]
    clock.set_clock(lambda: at[0])
    yield at
    clock.set_clock(None)


def test_raising_event_hook_does_not_break_booking_and_opens_the_circuit(make_praxis, frozen_clock):
    praxis = make_praxis([fixture_plugin("greeter"), fixture_plugin("flaky")])  # circuit_threshold=3
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, "greeter", Actor(None, "t"))
    praxis.plugins.enable(clinic, "flaky", Actor(None, "t"))
    client = client_for(praxis, create_user(praxis, clinic_ids=[clinic]))
    create_app(praxis, start_worker=False)
    created = client.post(f"/api/clinics/{clinic}/patients", json={"family_name": "Szabó", "given_name": "Éva"})
    assert created.status_code == 201, created.text

    worker = Worker(praxis, name="test")
    for _ in range(6):  # each round: the due retry fails again; move past its backoff
        worker.run_once()
        frozen_clock[0] += timedelta(hours=2)
    plugins = {p["name"]: p for p in client.get(f"/api/clinics/{clinic}/plugins").json()}
    assert plugins["flaky"]["state"] == "unhealthy"
    assert "vendor exploded" in plugins["flaky"]["last_error"]
    assert plugins["greeter"]["state"] == "enabled"
    health = client.get("/health").json()
    assert health["plugins"]["flaky"] == {"state": "unhealthy", "unhealthy_in_clinics": [clinic]}

    # the clinic keeps working while the plugin is unhealthy
    again = client.post(f"/api/clinics/{clinic}/patients", json={"family_name": "Kiss", "given_name": "Ádám"})
    assert again.status_code == 201, again.text
    reset = client.post(f"/api/clinics/{clinic}/plugins/flaky/health/reset")
    assert reset.status_code == 204
    assert {p["name"]: p["state"] for p in client.get(f"/api/clinics/{clinic}/plugins").json()}["flaky"] == "enabled"
