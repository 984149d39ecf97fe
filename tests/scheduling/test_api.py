"""The appointment-book REST API: permissions on every route, local/UTC times, 409 conflicts with the
appointments in the way, 422 field errors, overbook permission, free slots and the set-up routes."""

from __future__ import annotations

import re
from datetime import date

from fastapi.routing import APIRoute

from core.api.routes import appointments as appointment_routes
from core.api.routes import scheduling as scheduling_routes
from tests.auth_helpers import anonymous_client, client_for, create_user
from tests.scheduling.conftest import ClinicSetup, build_clinic

DESK_PERMS = ["appointments.view", "appointments.edit"]


def _routes() -> list[tuple[str, str]]:
    out = []
    for router in (scheduling_routes.router, appointment_routes.router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            for method in route.methods:
                out.append((method, route.path))
    return out


def _fill(path: str, clinic_id: int) -> str:
    path = path.replace("{clinic_id}", str(clinic_id)).replace("{kind}", "status")
    return re.sub(r"\{[a-z_]+\}", "1", path)


def test_every_route_checks_login_membership_and_permission(budapest: ClinicSetup) -> None:
    b = budapest
    other = build_clinic(b.praxis, name="Seoul", country="KR", tz="Asia/Seoul", locale="ko", doctors=1, rooms=1)
    anonymous = anonymous_client(b.praxis)
    nobody = client_for(b.praxis, create_user(b.praxis, [b.clinic_id], permissions=[]))
    stranger = client_for(b.praxis, create_user(b.praxis, [other.clinic_id], role="admin"))
    routes = _routes()
    assert len(routes) >= 40
    for method, path in routes:
        url = _fill(path, b.clinic_id)
        assert anonymous.request(method, url).status_code == 401, (method, path)
        assert nobody.request(method, url).status_code == 403, (method, path)
        assert stranger.request(method, url).status_code == 404, (method, path)


def test_booking_flow_over_http(budapest: ClinicSetup) -> None:
    b = budapest
    desk = client_for(b.praxis, create_user(b.praxis, [b.clinic_id], permissions=DESK_PERMS))
    boss = client_for(b.praxis, create_user(b.praxis, [b.clinic_id],
                                            permissions=[*DESK_PERMS, "appointments.overbook"]))
    base = f"/api/clinics/{b.clinic_id}"
    body = {"doctor_id": b.doctors[0], "start_at": "2026-03-03T10:00:00", "duration_minutes": 30,
            "new_patient_name": "Kovács Anna", "new_patient_phone": "06 30 123 4567", "type_code": "first_visit"}
    created = desk.post(f"{base}/appointments", json=body)
    assert created.status_code == 201, created.text
    appt = created.json()
    assert appt["start_at"] == "2026-03-03T09:00:00+00:00" and appt["start_local"] == "2026-03-03T10:00:00"
    assert appt["is_new_patient"] and appt["new_patient_phone"] == "+36301234567"

    clash = desk.post(f"{base}/appointments", json={**body, "start_at": "2026-03-03T10:15:00+01:00"})
    assert clash.status_code == 409
    assert clash.json()["error"] == "conflict" and clash.json()["conflicts"][0]["id"] == appt["id"]
    assert desk.post(f"{base}/appointments", json={**body, "overbook": True}).status_code == 403
    over = boss.post(f"{base}/appointments", json={**body, "overbook": True})
    assert over.status_code == 201 and over.json()["overbooked"] is True

    bad = desk.post(f"{base}/appointments", json={**body, "start_at": "2026-03-03T11:00:00",
                                                  "end_at": "2026-03-03T10:00:00", "room_id": 999})
    assert bad.status_code == 422
    fields = {f["field"]: f["code"] for f in bad.json()["fields"]}
    assert fields == {"end_at": "end_before_start", "room_id": "unknown_room"}
    lunch = desk.post(f"{base}/appointments", json={**body, "start_at": "2026-03-03T12:00:00"})
    assert lunch.status_code == 422 and lunch.json()["fields"][0]["code"] == "outside_working_hours"

    moved = desk.post(f"{base}/appointments/{appt['id']}/move",
                      json={"start_at": "2026-03-03T14:00:00", "version": appt["version"]})
    assert moved.status_code == 200 and moved.json()["end_local"] == "2026-03-03T14:30:00"
    stale = desk.post(f"{base}/appointments/{appt['id']}/move", json={"start_at": "2026-03-03T15:00:00",
                                                                       "version": appt["version"]})
    assert stale.status_code == 409 and stale.json()["error"] == "version_conflict"
    assert desk.post(f"{base}/appointments/{appt['id']}/status", json={"status": "arrived"}).json()["arrived_at"]
    assert desk.post(f"{base}/appointments/{appt['id']}/cancel", json={"reason": "nope"}).status_code == 422
    assert desk.post(f"{base}/appointments/{appt['id']}/cancel", json={"reason": "other"}).status_code == 200
    assert [a["id"] for a in desk.get(f"{base}/appointments/trash").json()["items"]] == [appt["id"]]
    assert desk.post(f"{base}/appointments/{appt['id']}/restore").status_code == 200
    history = desk.get(f"{base}/appointments/{appt['id']}/history").json()
    assert [h["action"] for h in history] == ["created", "moved", "status_changed", "cancelled", "restored"]
    week = desk.get(f"{base}/appointments", params={"week": "2026-03-05", "doctor_id": b.doctors[0]}).json()
    assert week["total"] == 2
    assert desk.delete(f"{base}/appointments/{appt['id']}", params={"reason": "entered twice"}).status_code == 200
    assert desk.get(f"{base}/appointments", params={"day": "2026-03-03"}).json()["total"] == 1


def test_setup_routes_need_schedules_manage(budapest: ClinicSetup) -> None:
    b = budapest
    base = f"/api/clinics/{b.clinic_id}"
    desk = client_for(b.praxis, create_user(b.praxis, [b.clinic_id], permissions=DESK_PERMS))
    admin = client_for(b.praxis, create_user(b.praxis, [b.clinic_id], role="admin"))
    hours = [{"weekday": d, "start_time": "08:00", "end_time": "18:00"} for d in range(6)]
    assert desk.put(f"{base}/working-hours", json=hours).status_code == 403
    assert admin.put(f"{base}/working-hours", json=hours).json() == hours
    assert desk.get(f"{base}/working-hours").status_code == 200
    bad = admin.put(f"{base}/working-hours", json=[{"weekday": 1, "start_time": "10:00", "end_time": "09:00"}])
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "items.0.end_time"
    hol = desk.get(f"{base}/holidays", params={"year": 2026}).json()
    assert {"date": "2026-01-10", "replaces": "2026-01-02"} in hol["makeup_workdays"]
    assert any(h["date"] == "2026-03-15" for h in hol["public_holidays"])
    day = admin.post(f"{base}/days-off", json={"date": "2026-03-06", "reason": "training"})
    assert day.status_code == 201
    room = admin.post(f"{base}/rooms", json={"name": "X-ray", "kind": "room"})
    assert room.status_code == 201
    assert admin.post(f"{base}/rooms", json={"name": "X-ray"}).status_code == 422
    sched = admin.post(f"{base}/doctors/{b.doctors[0]}/schedule/breaks",
                       json={"date": "2026-03-04", "start_time": "10:00", "end_time": "11:00", "label": "meeting"})
    assert sched.status_code == 201
    got = desk.get(f"{base}/doctors/{b.doctors[0]}/schedule").json()
    assert len(got["templates"]) == 5 and len(got["breaks"]) == 6
    slots = desk.get(f"{base}/free-slots", params={"doctor_id": b.doctors, "duration": 60, "from": "2026-03-04",
                                                   "to": "2026-03-06", "step": 60}).json()
    mine = [s["start_local"] for s in slots["slots"] if s["doctor_id"] == b.doctors[0]]
    assert "2026-03-04T10:00:00" not in mine and "2026-03-04T09:00:00" in mine
    assert not any(s.startswith("2026-03-06") for s in mine)  # clinic day off
    statuses = desk.get(f"{base}/appointment-statuses").json()
    assert [s["code"] for s in statuses][:3] == ["booked", "confirmed", "arrived"]
    assert desk.put(f"{base}/appointment-statuses", json=statuses).status_code == 403


def test_waitlist_pinboard_and_series_over_http(seoul: ClinicSetup) -> None:
    s = seoul
    base = f"/api/clinics/{s.clinic_id}"
    desk = client_for(s.praxis, create_user(s.praxis, [s.clinic_id], permissions=DESK_PERMS))
    entry = desk.post(f"{base}/waitlist", json={"new_patient_name": "김민수", "new_patient_phone": "010-1234-5678",
                                                "window_start": "09:00", "window_end": "12:00"})
    assert entry.status_code == 201 and entry.json()["new_patient_phone"] == "+821012345678"
    booked = desk.post(f"{base}/waitlist/{entry.json()['id']}/book",
                       json={"start_at": "2026-03-03T09:00:00", "doctor_id": s.doctors[0]})
    assert booked.status_code == 201
    appt_id = booked.json()["appointment"]["id"]
    assert booked.json()["appointment"]["start_at"] == "2026-03-03T00:00:00+00:00"
    assert desk.post(f"{base}/pinboard", json={"appointment_id": appt_id}).status_code == 201
    assert [p["id"] for p in desk.get(f"{base}/pinboard").json()] == [appt_id]
    series = {"template": {"doctor_id": s.doctors[0], "new_patient_name": "이영희",
                           "new_patient_phone": "010-9999-0000"},
              "rrule": "FREQ=WEEKLY;BYDAY=TU;COUNT=3", "first_start": "2026-03-03T09:00:00", "duration_minutes": 30}
    preview = desk.post(f"{base}/series/preview", json=series).json()
    assert preview["ok"] == 3 and preview["occurrences"][0]["start_at"] == "2026-03-03T00:00:00+00:00"
    made = desk.post(f"{base}/series", json=series)
    assert made.status_code == 201 and len(made.json()["created"]) == 3
    again = desk.post(f"{base}/series", json=series)
    assert again.status_code == 409 and again.json()["occurrence"] == 0
    assert date.fromisoformat(preview["occurrences"][2]["start_local"][:10]) == date(2026, 3, 17)
