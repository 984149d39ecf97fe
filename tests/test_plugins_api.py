"""The per-clinic plugin API as an admin's tools would use it."""

from __future__ import annotations

from tests.auth_helpers import client_for, create_user
from tests.conftest import add_clinic, fixture_plugin

PLUGINS = [fixture_plugin("greeter"), fixture_plugin("needs_greeter"), fixture_plugin("broken_import")]


def _admin(make_praxis):
    praxis = make_praxis(PLUGINS)
    clinic = add_clinic(praxis)
    return praxis, clinic, client_for(praxis, create_user(praxis, clinic_ids=[clinic]))


def test_enable_with_dependencies_and_disable_with_dependants(make_praxis):
    praxis, clinic, client = _admin(make_praxis)
    base = f"/api/clinics/{clinic}/plugins"
    refused = client.post(f"{base}/needs_greeter/enable")
    assert refused.status_code == 409
    assert refused.json()["error"] == "dependencies_disabled" and refused.json()["names"] == ["greeter"]
    enabled = client.post(f"{base}/needs_greeter/enable", json={"with_dependencies": True})
    assert enabled.json() == {"enabled": ["greeter", "needs_greeter"]}
    blocked = client.post(f"{base}/greeter/disable")
    assert blocked.status_code == 409 and blocked.json()["names"] == ["needs_greeter"]
    quarantined = client.post(f"{base}/broken_import/enable")
    assert quarantined.status_code == 409 and "quarantined" in quarantined.json()["message"]
    unknown = client.post(f"{base}/nope/enable")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_plugin"


def test_settings_422_per_field_secret_write_only_and_connection_test(make_praxis):
    praxis, clinic, client = _admin(make_praxis)
    url = f"/api/clinics/{clinic}/plugins/greeter/settings"
    bad = client.put(url, json={"endpoint": "gopher://x", "retries": 11})
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["fields"]} == {"endpoint", "retries"}
    good = client.put(url, json={"api_key": "top-secret-123", "retries": 4})
    assert good.status_code == 200 and good.json()["api_key"] == {"set": True}
    listed = client.get(f"/api/clinics/{clinic}/plugins/greeter").json()
    assert "top-secret-123" not in str(listed) and listed["settings"]["retries"] == 4
    check = client.post(f"/api/clinics/{clinic}/plugins/greeter/test-connection", json={"endpoint": "http://x"})
    assert check.status_code == 200 and check.json()["ok"] is False and "http://x" in check.json()["message"]
    no_settings = client.put(f"/api/clinics/{clinic}/plugins/needs_greeter/settings", json={})
    assert no_settings.status_code == 422


def test_quarantined_plugin_is_listed_with_its_reason_and_the_app_serves(make_praxis):
    praxis, clinic, client = _admin(make_praxis)
    listed = {p["name"]: p for p in client.get(f"/api/clinics/{clinic}/plugins").json()}
    assert listed["broken_import"]["state"] == "quarantined"
    assert "praxis_module_that_does_not_exist" in listed["broken_import"]["reason"]
    assert client.get("/health").json()["plugins"]["broken_import"]["state"] == "quarantined"
