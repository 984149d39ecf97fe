"""Set-up: settings validated by the schema, certificate upload (PEM or PKCS#12) activated with the SMS code,
the connection test, and every plugin route guarded by the plugin's permissions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from praxis_eeszt import plugin


def _settings_url(app: Any) -> str:
    return f"/api/clinics/{app.clinic_id}/plugins/eeszt"


def test_settings_are_checked_field_by_field(plugin_app: Any, fake: Any) -> None:
    app = plugin_app(plugin, also=["hungary"])
    answer = app.client.put(f"{_settings_url(app)}/settings", json={
        "institution_id": "50609", "unit_code": "1044299", "service_url": "ftp://x", "session_hours": 30})
    assert answer.status_code == 422
    assert {f["field"] for f in answer.json()["fields"]} == {"institution_id", "unit_code", "service_url",
                                                              "session_hours"}
    check = app.client.post(f"{_settings_url(app)}/test-connection", json={})
    assert check.status_code == 200 and check.json()["ok"] is False and "institution_id" in check.json()["message"]
    schema = plugin.manifest.settings.model_json_schema()["properties"]
    assert schema["client_certificate"]["title"] == "Institution's client certificate"
    assert all("title" in field and "description" in field for field in schema.values())


def test_pem_upload_is_activated_with_the_sms_code_and_the_connection_test_reaches_eeszt(
        plugin_app: Any, fake: Any, praxis_clock: Any) -> None:
    app = plugin_app(plugin, also=["hungary"], settings={
        "institution_id": "506097", "unit_code": "001044299", "service_url": fake.base_url})
    base = f"/api/clinics/{app.clinic_id}/x/eeszt"
    issued = fake.issue_certificate("506097")
    files = {"file": ("eeszt.pem", issued.pem, "application/x-pem-file")}
    wrong = app.client.post(f"{base}/certificate", files=files, data={"sms_code": "000000" if issued.sms_code
                                                                       != "000000" else "111111"})
    assert wrong.status_code == 422 and wrong.json()["eeszt_code"] == "wrong_activation_code"
    assert app.ctx.settings.client_certificate is None  # nothing stored
    missing = app.client.post(f"{base}/certificate", files=files, data={"sms_code": ""})
    assert missing.status_code == 422 and missing.json()["fields"][0]["field"] == "sms_code"

    p12 = {"file": ("eeszt.p12", issued.pkcs12, "application/x-pkcs12")}
    bad_password = app.client.post(f"{base}/certificate", files=p12, data={"sms_code": issued.sms_code,
                                                                          "password": "nope"})
    assert bad_password.status_code == 422 and bad_password.json()["fields"][0]["code"] == "unreadable_certificate"

    done = app.client.post(f"{base}/certificate", files=files, data={"sms_code": issued.sms_code})
    assert done.status_code == 200, done.text
    assert done.json()["activated"] is True and done.json()["fingerprint"] == issued.fingerprint
    public = app.client.get(_settings_url(app)).json()
    assert "BEGIN" not in str(public)  # the key is a secret: shown only as set
    status = app.client.get(f"{base}/status").json()
    assert status["configured"] is True and status["certificate"]["activated"] is True

    check = app.client.post(f"{_settings_url(app)}/test-connection", json={})
    assert check.json()["ok"] is True and "506097" in check.json()["message"]
    fake.stop()
    down = app.client.post(f"{_settings_url(app)}/test-connection", json={})
    assert down.json()["ok"] is False and "cannot be reached" in down.json()["message"]
    fake.start()
    praxis_clock.advance(timedelta(days=400))
    expired = app.client.post(f"{_settings_url(app)}/test-connection", json={})
    assert expired.json()["ok"] is False and "expired" in expired.json()["message"]


def test_a_pasted_certificate_that_was_never_activated_fails_the_connection_test(
        plugin_app: Any, fake: Any) -> None:
    issued = fake.issue_certificate("506097")
    app = plugin_app(plugin, also=["hungary"], settings={
        "institution_id": "506097", "unit_code": "001044299", "service_url": fake.base_url,
        "client_certificate": issued.pem.decode()})
    check = app.client.post(f"{_settings_url(app)}/test-connection", json={})
    assert check.json()["ok"] is False and check.json()["details"]["code"] == "certificate_not_activated"
    other = fake.issue_certificate("506097")
    mismatch = other.pem.split(b"-----BEGIN PRIVATE KEY-----")[0] + issued.pem[issued.pem.index(b"-----BEGIN PRIVATE"):]
    check = app.client.post(f"{_settings_url(app)}/test-connection", json={"client_certificate": mismatch.decode()})
    assert check.json()["ok"] is False and check.json()["details"]["code"] == "key_mismatch"
    # activating the pasted certificate with the SMS code alone
    base = f"/api/clinics/{app.clinic_id}/x/eeszt"
    assert app.client.post(f"{base}/certificate", data={"sms_code": issued.sms_code}).status_code == 200
    assert app.client.post(f"{_settings_url(app)}/test-connection", json={}).json()["ok"] is True


def test_every_eeszt_route_answers_401_403_404(eeszt: Any) -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    from core.api.app import create_app
    from tests.auth_helpers import anonymous_client, client_for, create_user

    praxis, clinic = eeszt.app.praxis, eeszt.app.clinic_id
    other = eeszt.app.add_clinic("Szeged", enable=True)
    anonymous = anonymous_client(praxis)
    powerless = client_for(praxis, create_user(praxis, [clinic], permissions=["patients.view"]))
    outsider = client_for(praxis, create_user(praxis, [other], role="admin"))
    routes = [r for r in iter_route_contexts(create_app(praxis, start_worker=False).routes)
              if isinstance(r.original_route, APIRoute) and "/x/eeszt/" in r.path]
    assert len(routes) >= 20
    for route in routes:
        url = route.path.replace("{clinic_id}", str(clinic))
        for name in ("patient_id", "entry_id", "referral_id", "user_id", "appointment_id"):
            url = url.replace("{" + name + "}", "1")
        for method in set(route.methods or ()) - {"HEAD"}:
            assert anonymous.request(method, url).status_code == 401, (method, url)
            assert powerless.request(method, url).status_code == 403, (method, url)
            assert outsider.request(method, url).status_code == 404, (method, url)
