"""EESZT's panels on the patient card and the visit: listed only while EESZT is enabled, served as HTML to the UI
(JSON to API clients), labelled in Hungarian from the plugin's own catalog."""

from __future__ import annotations

from typing import Any


def test_panels_follow_enablement(eeszt: Any) -> None:
    runtime, clinic = eeszt.app.praxis.runtime, eeszt.app.clinic_id
    patient = [p for r in runtime.call("praxis_panels", clinic, where="patient") for p in r.value]
    visit = [p for r in runtime.call("praxis_panels", clinic, where="visit") for p in r.value]
    assert [p.url for p in patient] == ["/patients/{patient_id}/documents", "/patients/{patient_id}/eprofile",
                                        "/referrals?patient_id={patient_id}"]
    assert [p.url for p in visit] == ["/visits/{appointment_id}"] and all(p.permission == "eeszt.use"
                                                                           for p in patient + visit)
    eeszt.app.disable()
    assert [r for r in runtime.call("praxis_panels", clinic, where="patient") if r.plugin == "eeszt"] == []


def test_panel_routes_answer_html_to_the_ui_and_json_to_the_api(eeszt: Any) -> None:
    assert eeszt.login_eid().status_code == 200
    pid = eeszt.patient()
    eeszt.fake.add_document("111111110", title="Zárójelentés <b>2026</b>")
    url = f"{eeszt.base}/patients/{pid}/documents"
    as_json = eeszt.client.get(url)
    assert as_json.headers["content-type"].startswith("application/json")
    assert [d["title"] for d in as_json.json()["documents"]] == ["Zárójelentés <b>2026</b>"]
    as_html = eeszt.client.get(url, headers={"HX-Request": "true"})
    assert as_html.headers["content-type"].startswith("text/html")
    assert "Zárójelentés &lt;b&gt;2026&lt;/b&gt;" in as_html.text  # escaped, never injected
    assert "Dokumentumok" in as_html.text  # a Hungarian clinic gets the plugin catalog's Hungarian labels
    empty = eeszt.client.get(f"{eeszt.base}/patients/{eeszt.patient(taj='123 456 788', family_name='Kiss')}"
                             f"/eprofile", headers={"HX-Request": "true"})
    assert empty.status_code == 200 and empty.headers["content-type"].startswith("text/html")
