"""The appointment book service: conflicts, overbooking, validation, status flow, trash and restore,
history, events and the plugin veto."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlmodel import Session, col, select

from core.db import transaction
from core.models.appointment import Appointment
from core.models.audit import AuditEntry
from core.models.outbox import OutboxItem
from core.models.patient import Patient
from core.scheduling import appointments as ap
from core.scheduling import options, waitlist
from core.scheduling.errors import Conflict, Forbidden, VersionConflict
from plugin_sdk.errors import ValidationFailed
from tests.conftest import add_clinic
from tests.scheduling.conftest import ACTOR, BOSS, DESK, NOW, ClinicSetup

TUE = date(2026, 3, 3)


def codes(exc: ValidationFailed) -> dict[str, str]:
    return {e.field: e.code for e in exc.errors}


def test_doctor_conflict_is_refused_with_the_appointment_in_the_way(budapest: ClinicSetup) -> None:
    b = budapest
    first = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, minutes=30), DESK)
    with pytest.raises(Conflict) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, 15, minutes=30, room_id=b.rooms[1]), DESK)
    [clash] = caught.value.details["conflicts"]
    assert clash["id"] == first["id"] and clash["on"] == ["doctor"]
    # touching ends are not an overlap
    ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, 30, minutes=30), DESK)


def test_room_conflict_between_two_doctors(budapest: ClinicSetup) -> None:
    b = budapest
    ap.create(b.praxis, b.clinic_id, b.values(TUE, 11, room_id=b.rooms[0]), DESK)
    with pytest.raises(Conflict) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 11, 10, doctor=1, room_id=b.rooms[0]), DESK)
    assert caught.value.details["conflicts"][0]["on"] == ["room"]
    ap.create(b.praxis, b.clinic_id, b.values(TUE, 11, 10, doctor=1, room_id=b.rooms[1]), DESK)


def test_room_defaults_to_the_doctors_scheduled_room(budapest: ClinicSetup) -> None:
    b = budapest
    out = ap.create(b.praxis, b.clinic_id, b.values(TUE, 9, doctor=1), DESK)
    assert out["room_id"] == b.rooms[1]


def test_cancelled_and_deleted_appointments_free_their_time(budapest: ClinicSetup) -> None:
    b = budapest
    one = ap.create(b.praxis, b.clinic_id, b.values(TUE, 14), DESK)
    ap.cancel(b.praxis, b.clinic_id, one["id"], DESK, reason="patient_request")
    two = ap.create(b.praxis, b.clinic_id, b.values(TUE, 14), DESK)
    ap.delete(b.praxis, b.clinic_id, two["id"], DESK, reason="typo")
    ap.create(b.praxis, b.clinic_id, b.values(TUE, 14), DESK)
    trash = ap.trash(b.praxis, b.clinic_id)
    assert {i["id"] for i in trash["items"]} == {one["id"], two["id"]}


def test_overbooking_needs_the_permission_and_is_audited(budapest: ClinicSetup) -> None:
    b = budapest
    first = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    with pytest.raises(Forbidden):
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK, overbook=True)
    over = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), BOSS, overbook=True)
    assert over["overbooked"] is True
    with Session(b.praxis.engine) as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "appointment.overbooked")).one()
    assert entry.target == f"appointment:{over['id']}"
    assert [c["id"] for c in entry.data["conflicts"]] == [first["id"]]
    # an overbooked appointment still blocks normal bookings
    with pytest.raises(Conflict) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, 20), DESK)
    assert {c["id"] for c in caught.value.details["conflicts"]} == {first["id"], over["id"]}


def test_bad_input_names_the_fields(budapest: ClinicSetup) -> None:
    b = budapest
    start = b.at(TUE, 10)
    with pytest.raises(ValidationFailed) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, end_at=start - timedelta(minutes=5)), DESK)
    assert codes(caught.value)["end_at"] == "end_before_start"
    with pytest.raises(ValidationFailed) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, doctor_id=99999, room_id=99999, type_code="nope",
                                                  new_patient_phone="12"), DESK)
    got = codes(caught.value)
    assert got == {"doctor_id": "unknown_user", "room_id": "unknown_room", "type_code": "unknown_code",
                   "new_patient_phone": "invalid_phone"}
    with pytest.raises(ValidationFailed) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, new_patient_name=" ", new_patient_phone=None), DESK)
    assert set(codes(caught.value)) == {"new_patient_name", "new_patient_phone"}
    # field errors come before the working-hours check: an unknown doctor at night is an unknown doctor
    with pytest.raises(ValidationFailed) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 3, doctor_id=99999), DESK)
    assert codes(caught.value) == {"doctor_id": "unknown_user"}


def test_the_patient_must_be_a_current_patient_of_the_clinic(budapest: ClinicSetup) -> None:
    b = budapest
    other = add_clinic(b.praxis, name="Other", country="HU", timezone="Europe/Budapest", locale="hu")
    survivor = uuid.uuid4()
    with transaction(b.praxis.engine) as s:
        ids = {}
        for key, clinic, extra in (("ok", b.clinic_id, {}), ("survivor", b.clinic_id, {}),
                                   ("elsewhere", other, {}), ("deleted", b.clinic_id, {"deleted_at": NOW}),
                                   ("merged", b.clinic_id, {"merged_into": survivor})):
            patient = Patient(id=survivor if key == "survivor" else uuid.uuid4(), clinic_id=clinic,
                              chart_number=key, family_name=key.title(), **extra)
            ids[key] = patient.id
            s.add(patient)
            s.flush()

    def attempt(patient_id: uuid.UUID, hh: int) -> dict[str, str]:
        values = {**b.values(TUE, hh), "patient_id": patient_id}
        values.pop("new_patient_name"), values.pop("new_patient_phone")
        try:
            ap.create(b.praxis, b.clinic_id, values, DESK)
        except ValidationFailed as exc:
            return codes(exc)
        return {}

    assert attempt(uuid.uuid4(), 9) == {"patient_id": "unknown_patient"}
    assert attempt(ids["elsewhere"], 9) == {"patient_id": "unknown_patient"}
    assert attempt(ids["deleted"], 9) == {"patient_id": "patient_deleted"}
    assert attempt(ids["merged"], 9) == {"patient_id": "patient_merged"}
    assert attempt(ids["ok"], 9) == {}


def test_outside_working_hours_and_breaks_need_overbook(budapest: ClinicSetup) -> None:
    b = budapest
    for hh, mm in ((12, 15), (7, 0), (16, 45)):  # lunch break, before the clinic opens, running past 17:00
        with pytest.raises(ValidationFailed) as caught:
            ap.create(b.praxis, b.clinic_id, b.values(TUE, hh, mm), DESK)
        assert codes(caught.value) == {"start_at": "outside_working_hours"}
    out = ap.create(b.praxis, b.clinic_id, b.values(TUE, 12, 15), BOSS, overbook=True)
    assert out["overbooked"] is False
    with Session(b.praxis.engine) as s:
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "appointment.overbooked")).one()
    assert entry.data["outside_working_hours"] is True


def test_seoul_nine_oclock_is_midnight_utc(seoul: ClinicSetup) -> None:
    s = seoul
    out = ap.create(s.praxis, s.clinic_id, s.values(TUE, 9), DESK)
    assert out["start_at"] == "2026-03-03T00:00:00+00:00"
    assert out["start_local"] == "2026-03-03T09:00:00"
    with Session(s.praxis.engine) as session:
        row = session.get(Appointment, out["id"])
        assert row is not None and row.start_at == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    # 2026-03-02 is the substitute holiday for 삼일절 (Sunday 03-01): the clinic is closed
    with pytest.raises(ValidationFailed):
        ap.create(s.praxis, s.clinic_id, s.values(date(2026, 3, 2), 9), DESK)


def test_status_flow_stamps_times_and_cancel_needs_a_known_reason(budapest: ClinicSetup) -> None:
    b = budapest
    appt = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    arrived = ap.set_status(b.praxis, b.clinic_id, appt["id"], DESK, status="arrived")
    assert arrived["arrived_at"] == "2026-03-02T05:00:00+00:00" and arrived["status_color"]
    seated = ap.set_status(b.praxis, b.clinic_id, appt["id"], DESK, status="in_progress")
    done = ap.set_status(b.praxis, b.clinic_id, appt["id"], DESK, status="done")
    assert seated["seated_at"] and done["done_at"]
    with pytest.raises(ValidationFailed) as caught:
        ap.set_status(b.praxis, b.clinic_id, appt["id"], DESK, status="cancelled")
    assert codes(caught.value) == {"status": "reason_required"}
    with pytest.raises(ValidationFailed) as caught:
        ap.cancel(b.praxis, b.clinic_id, appt["id"], DESK, reason="bored")
    assert codes(caught.value) == {"reason": "unknown_code"}
    other = ap.create(b.praxis, b.clinic_id, b.values(TUE, 11), DESK)
    missed = ap.no_show(b.praxis, b.clinic_id, other["id"], DESK, reason="forgot")
    assert missed["status"] == "no_show" and missed["active"] is False


def test_custom_status_list(budapest: ClinicSetup) -> None:
    b = budapest
    items = [o.as_dict() for o in options.DEFAULTS["status"]]
    items.insert(3, {"code": "xray", "label": "At X-ray", "color": "#ffffff", "role": None})
    with ap.write(b.praxis) as session:
        options.replace(session, b.clinic_id, "status", items, ACTOR)
    appt = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    assert ap.set_status(b.praxis, b.clinic_id, appt["id"], DESK, status="xray")["status_label"] == "At X-ray"
    broken = [i for i in items if i["role"] != "cancelled"]
    with pytest.raises(ValidationFailed) as caught, ap.write(b.praxis) as session:
        options.replace(session, b.clinic_id, "status", broken, ACTOR)
    assert codes(caught.value) == {"items": "role_missing"}


def test_restore_rechecks_conflicts(budapest: ClinicSetup) -> None:
    b = budapest
    gone = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    ap.cancel(b.praxis, b.clinic_id, gone["id"], DESK, reason="patient_ill")
    taker = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    with pytest.raises(Conflict) as caught:
        ap.restore(b.praxis, b.clinic_id, gone["id"], DESK)
    assert caught.value.details["conflicts"][0]["id"] == taker["id"]
    back = ap.restore(b.praxis, b.clinic_id, gone["id"], DESK, start_at=b.at(TUE, 11))
    assert back["status"] == "booked" and back["active"] and back["start_local"] == "2026-03-03T11:00:00"
    assert back["cancel_reason"] is None


def test_move_resize_copy_and_history(budapest: ClinicSetup) -> None:
    b = budapest
    appt = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, services=["scaling"]), DESK)
    moved = ap.move(b.praxis, b.clinic_id, appt["id"], DESK, start_at=b.at(TUE, 14), version=appt["version"])
    assert moved["end_local"] == "2026-03-03T14:30:00" and moved["version"] == 2
    with pytest.raises(VersionConflict):
        ap.resize(b.praxis, b.clinic_id, appt["id"], DESK, end_at=b.at(TUE, 15), version=1)
    ap.resize(b.praxis, b.clinic_id, appt["id"], DESK, end_at=b.at(TUE, 15), version=2)
    copy = ap.copy(b.praxis, b.clinic_id, appt["id"], DESK, start_at=b.at(date(2026, 3, 4), 9), doctor_id=b.doctors[1])
    assert copy["copied_from"] == appt["id"] and copy["services"] == ["scaling"] and copy["room_id"] == b.rooms[1]
    history = ap.history(b.praxis, b.clinic_id, appt["id"])
    assert [h["action"] for h in history] == ["created", "moved", "resized"]
    assert history[1]["before"] == {"start_at": "2026-03-03T09:00:00+00:00", "end_at": "2026-03-03T09:30:00+00:00"}
    assert history[1]["after"] == {"start_at": "2026-03-03T13:00:00+00:00", "end_at": "2026-03-03T13:30:00+00:00"}
    assert history[2]["before"] == {"end_at": "2026-03-03T13:30:00+00:00"}
    assert history[0]["actor_name"] == "test"


def test_pinboard_frees_the_time_and_move_puts_it_back(budapest: ClinicSetup) -> None:
    b = budapest
    appt = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    ap.pin(b.praxis, b.clinic_id, appt["id"], DESK, note="patient will call")
    assert [p["id"] for p in ap.pinboard(b.praxis, b.clinic_id)] == [appt["id"]]
    listed = ap.list_appointments(b.praxis, b.clinic_id, ap.Query(*ap.local_range(b.tz, TUE, TUE)))
    assert listed["items"] == []
    ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)  # the slot is free now
    back = ap.move(b.praxis, b.clinic_id, appt["id"], DESK, start_at=b.at(TUE, 15))
    assert back["pinned_at"] is None and back["active"]
    assert ap.pinboard(b.praxis, b.clinic_id) == []


def test_list_filters(budapest: ClinicSetup) -> None:
    b = budapest
    a1 = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    a2 = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, doctor=1), DESK)
    ap.create(b.praxis, b.clinic_id, b.values(date(2026, 3, 4), 10), DESK)
    ap.cancel(b.praxis, b.clinic_id, a2["id"], DESK, reason="other")
    start, end = ap.local_range(b.tz, TUE, TUE)
    assert [i["id"] for i in ap.list_appointments(b.praxis, b.clinic_id, ap.Query(start, end))["items"]] == [a1["id"]]
    both = ap.list_appointments(b.praxis, b.clinic_id, ap.Query(start, end, include_cancelled=True))
    assert both["total"] == 2
    only = ap.list_appointments(b.praxis, b.clinic_id, ap.Query(start, end, doctor_ids=[b.doctors[1]],
                                                                   statuses=["cancelled"]))
    assert [i["id"] for i in only["items"]] == [a2["id"]]


def _outbox(praxis) -> list[OutboxItem]:  # noqa: ANN001
    with Session(praxis.engine) as s:
        return list(s.exec(select(OutboxItem).order_by(col(OutboxItem.created_at))).all())


def test_events_are_queued_only_for_successful_writes_and_the_veto_refuses(budapest: ClinicSetup) -> None:
    b = budapest
    b.praxis.plugins.enable(b.clinic_id, "bookwatch", ACTOR)
    b.praxis.runtime.state.invalidate()
    appt = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    with pytest.raises(Conflict):
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    with pytest.raises(ValidationFailed) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 11, notes="VETO please"), DESK)
    assert caught.value.plugin == "bookwatch" and codes(caught.value) == {"notes": "refused"}
    ap.move(b.praxis, b.clinic_id, appt["id"], DESK, start_at=b.at(TUE, 11))
    ap.set_status(b.praxis, b.clinic_id, appt["id"], DESK, status="arrived")
    ap.cancel(b.praxis, b.clinic_id, appt["id"], DESK, reason="other")
    ap.restore(b.praxis, b.clinic_id, appt["id"], DESK)
    ap.update(b.praxis, b.clinic_id, appt["id"], {"notes": "call first"}, DESK)
    names = [i.payload["name"] for i in _outbox(b.praxis) if i.topic == "praxis.event"]
    assert names == ["appointment.created", "appointment.moved", "appointment.status_changed",
                     "appointment.cancelled", "appointment.restored", "appointment.changed"]
    last = [i.payload for i in _outbox(b.praxis)][-1]
    assert last["data"]["before"] == {"notes": ""} and last["data"]["notes"] == "call first"
    with Session(b.praxis.engine) as s:
        assert len(s.exec(select(Appointment)).all()) == 1


def test_waitlist_with_and_without_a_date(budapest: ClinicSetup) -> None:
    b = budapest
    undated = waitlist.create(b.praxis, b.clinic_id, {"new_patient_name": "Nagy Béla",
                                                      "new_patient_phone": "06301234567"}, ACTOR)
    dated = waitlist.create(b.praxis, b.clinic_id, {"new_patient_name": "Tóth Éva", "new_patient_phone": "+36301112222",
                                                    "doctor_id": b.doctors[0], "desired_date": TUE,
                                                    "duration_minutes": 45}, ACTOR)
    assert undated["new_patient_phone"] == "+36301234567"
    on_tue = waitlist.listing(b.praxis, b.clinic_id, day=TUE)
    assert [e["id"] for e in on_tue["items"]] == [undated["id"], dated["id"]]
    assert [e["id"] for e in waitlist.listing(b.praxis, b.clinic_id, day=date(2026, 3, 4))["items"]] == [undated["id"]]
    booked = waitlist.book(b.praxis, b.clinic_id, dated["id"], DESK, start_at=b.at(TUE, 9))
    assert booked["entry"]["state"] == "booked" and booked["appointment"]["duration_minutes"] == 45
    moved = waitlist.from_appointment(b.praxis, b.clinic_id, booked["appointment"]["id"], DESK)
    assert moved["appointment"]["deleted_at"] and moved["entry"]["from_appointment_id"] == booked["appointment"]["id"]
    with pytest.raises(ValidationFailed) as caught:
        waitlist.create(b.praxis, b.clinic_id, {"new_patient_name": "X", "new_patient_phone": "+36301112222",
                                                "window_start": time(10)}, ACTOR)
    assert codes(caught.value) == {"window_end": "required"}
