"""The appointment book through TestClient: the grid (working hours, breaks, holidays, status colours, the
clinic's time zone), booking with errors next to fields, conflicts and overbooking, move, keyboard/button
shifts, resize, copy, status, cancel and restore, trash, pinboard, waitlist, free slots, history, permissions."""

from __future__ import annotations

import re

import pytest

from tests.auth_helpers import create_user
from tests.conftest import add_clinic
from tests.ui.helpers import csrf_of, log_in, web_client
from tests.ui.screens import DAY, field_errors, set_up_book
from ui import i18n

PASSWORD = "correct horse battery"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def site(make_praxis):
    praxis = make_praxis([])
    clinic = add_clinic(praxis, "Seoul Dental", country="KR", timezone="Asia/Seoul", locale="en")
    create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD, name="Anna Admin")
    data = set_up_book(praxis, clinic)
    client = web_client(praxis)
    assert log_in(client, "anna", PASSWORD).status_code == 303
    return praxis, clinic, data, client


def grid(client, clinic, query=""):  # type: ignore[no-untyped-def]
    return client.get(f"/clinics/{clinic}/book?day={DAY}&partial=grid{query}").text


def blocks(html: str) -> dict[int, str]:
    """appointment id -> its start (HH:MM, clinic time) in the grid."""
    return {int(i): s for i, s in re.findall(r'class="appt[^"]*"[^>]*data-id="(\d+)"[^>]*data-start="([\d:]+)"', html)}


def slots(html: str) -> set[str]:
    return set(re.findall(r'class="slot"[^>]*data-time="([\d:]+)"', html))


def test_the_day_grid_shows_working_hours_breaks_free_slots_and_statuses(site):
    praxis, clinic, data, client = site
    page = client.get(f"/clinics/{clinic}/book?day={DAY}")
    assert page.status_code == 200 and "Dr. Kovács Anna" in page.text
    html = grid(client, clinic)
    free = slots(html)
    assert "09:15" not in free and "09:00" not in free  # booked 9:00-9:30 (15-minute grid)
    assert {"09:30", "11:45", "13:00", "16:45"} <= free
    assert not {"12:00", "12:15", "12:45", "08:45", "17:00"} & free  # the break and outside the hours
    assert 'class="break"' in html
    assert blocks(html) == {data.booked: "09:00"}  # cancelled and pinned ones are not in the grid
    assert "--c: #9ca3af" in html and "Booked" in html  # the status colour
    assert "Kovács Anna" in html and 'class="alert-flag"' in html  # a medical alert is flagged on the block
    panels = client.get(f"/clinics/{clinic}/book?day={DAY}&partial=panels").text
    assert "Nagy Béla" in panels and "Patient ill" in panels  # the cancelled one in the trash panel
    assert "Kim Minji" in panels and "call back" in panels  # the pinboard
    assert "mornings" in panels  # the waitlist


def test_times_are_shown_in_the_clinics_zone_and_the_users_locale(site):
    praxis, clinic, data, client = site
    html = grid(client, clinic)
    assert "9:00\u202fAM–9:30\u202fAM" in html  # narrow no-break spaces, as CLDR writes them
    client.cookies.set(i18n.LANG_COOKIE, "ko")
    korean = grid(client, clinic)
    assert "오전 9:00–오전 9:30" in korean and "예약됨" in korean


def test_a_public_holiday_is_marked_and_has_no_free_slots(site):
    praxis, clinic, data, client = site
    html = client.get(f"/clinics/{clinic}/book?day=2031-05-05&partial=grid").text  # Children's Day in Korea
    assert "badge holiday" in html and 'class="col-body is-closed"' in html
    assert slots(html) == set()


def test_week_and_room_views(site):
    praxis, clinic, data, client = site
    week = client.get(f"/clinics/{clinic}/book?day={DAY}&view=week&partial=grid").text
    assert week.count('class="col-body') == 7 and data.booked in blocks(week)
    rooms = client.get(f"/clinics/{clinic}/book?day={DAY}&by=room&partial=grid").text
    assert "Chair 1" in client.get(f"/clinics/{clinic}/book?day={DAY}&by=room").text
    assert data.booked in blocks(rooms)  # booked in the doctor's usual room


def test_booking_shows_errors_next_to_fields_then_books_a_new_person(site):
    praxis, clinic, data, client = site
    token = csrf_of(client.get(f"/clinics/{clinic}/book?day={DAY}").text)
    url = f"/clinics/{clinic}/book/new"
    dialog = client.get(f"{url}?day={DAY}&at=11:00&doctor={data.doctor}", headers=HTMX)
    assert 'id="dialog-title"' in dialog.text and 'value="11:00"' in dialog.text
    empty = client.post(url, data={"csrf_token": token, "date": DAY.isoformat(), "time": "11:00",
                                   "doctor_id": data.doctor, "duration": "30"}, headers=HTMX)
    assert empty.status_code == 422
    assert field_errors(empty.text) == {
        "f-new_patient_name": "Choose a patient, or give the name and phone of a new one.",
        "f-new_patient_phone": "A new patient needs a phone number."}
    lunch = client.post(url, data={"csrf_token": token, "date": DAY.isoformat(), "time": "12:00", "duration": "30",
                                   "doctor_id": data.doctor, "patient_id": data.other_patient}, headers=HTMX)
    assert field_errors(lunch.text) == {"f-time": "This time is outside the doctor's working hours (breaks, days "
                                                  "off and holidays count)."}
    booked = client.post(url, data={"csrf_token": token, "date": DAY.isoformat(), "time": "11:00", "duration": "45",
                                    "doctor_id": data.doctor, "new_patient_name": "Lee Jiwoo",
                                    "new_patient_phone": "010-1234-5678", "type_code": "consultation"}, headers=HTMX)
    assert booked.status_code == 200 and booked.headers["HX-Trigger"] == "book-changed"
    assert "Booked for" in booked.text
    html = grid(client, clinic)
    assert "11:00" in blocks(html).values() and "Lee Jiwoo" in html and "Consultation" in html
    assert not {"11:00", "11:15", "11:30"} & slots(html)


def test_a_taken_time_lists_the_conflict_and_overbooking_needs_the_permission(site):
    praxis, clinic, data, client = site
    token = csrf_of(client.get(f"/clinics/{clinic}/book?day={DAY}").text)
    form = {"csrf_token": token, "date": DAY.isoformat(), "time": "09:15", "duration": "30",
            "doctor_id": data.doctor, "patient_id": data.other_patient}
    taken = client.post(f"/clinics/{clinic}/book/new", data=form, headers=HTMX)
    assert taken.status_code == 409
    assert "The time is taken by:" in taken.text and "Kovács Anna" in taken.text and 'name="overbook"' in taken.text
    done = client.post(f"/clinics/{clinic}/book/new", data={**form, "overbook": "1"}, headers=HTMX)
    assert done.status_code == 200
    assert 'class="appt is-overbooked' in grid(client, clinic)
    create_user(praxis, [clinic], role="receptionist", login="rec", password=PASSWORD)
    receptionist = web_client(praxis)
    log_in(receptionist, "rec", PASSWORD)
    token = csrf_of(receptionist.get(f"/clinics/{clinic}/book?day={DAY}").text)
    refused = receptionist.post(f"/clinics/{clinic}/book/new", data={**form, "csrf_token": token, "overbook": "1"},
                                headers=HTMX)
    assert "Overbooking needs the permission to overbook." in refused.text
    assert 'name="overbook"' not in refused.text


def test_move_shift_resize_copy_and_status(site):
    praxis, clinic, data, client = site
    token = csrf_of(client.get(f"/clinics/{clinic}/book?day={DAY}").text)
    base = f"/clinics/{clinic}/book/appointments/{data.booked}"
    moved = client.post(f"{base}/move", data={"csrf_token": token, "date": DAY.isoformat(), "time": "15:00",
                                              "doctor_id": data.doctor, "mode": "move", "version": "1"}, headers=HTMX)
    assert moved.headers["HX-Trigger"] == "book-changed"
    assert blocks(grid(client, clinic))[data.booked] == "15:00"
    stale = client.post(f"{base}/move", data={"csrf_token": token, "date": DAY.isoformat(), "time": "15:30",
                                              "mode": "move", "version": "1"}, headers=HTMX)
    assert stale.status_code == 422 or "Someone else changed this appointment" in stale.text
    client.post(f"{base}/shift", data={"csrf_token": token, "what": "start", "minutes": "-15"}, headers=HTMX)
    assert blocks(grid(client, clinic))[data.booked] == "14:45"
    client.post(f"{base}/shift", data={"csrf_token": token, "what": "length", "minutes": "15"}, headers=HTMX)
    client.post(f"{base}/resize", data={"csrf_token": token, "duration": "60"}, headers=HTMX)
    assert 'data-duration="60"' in grid(client, clinic)
    copied = client.post(f"{base}/move", data={"csrf_token": token, "date": DAY.isoformat(), "time": "09:00",
                                               "doctor_id": data.doctor, "mode": "copy"}, headers=HTMX)
    assert copied.headers["HX-Trigger"] == "book-changed"
    assert sorted(blocks(grid(client, clinic)).values()) == ["09:00", "14:45"]
    client.post(f"{base}/status", data={"csrf_token": token, "status": "arrived"}, headers=HTMX)
    assert "Arrived" in grid(client, clinic)
    history = client.get(f"{base}?panel=history", headers=HTMX).text
    for what in ("Booked", "Moved", "Length changed", "Status changed"):
        assert what in history
    assert "Start: " in history


def test_cancel_needs_a_reason_then_restore_from_the_trash(site):
    praxis, clinic, data, client = site
    token = csrf_of(client.get(f"/clinics/{clinic}/book?day={DAY}").text)
    base = f"/clinics/{clinic}/book/appointments/{data.booked}"
    refused = client.post(f"{base}/cancel", data={"csrf_token": token, "reason": ""}, headers=HTMX)
    assert refused.status_code == 422 and field_errors(refused.text) == {"f-reason": "Give a reason."}
    client.post(f"{base}/cancel", data={"csrf_token": token, "reason": "rescheduled"}, headers=HTMX)
    assert data.booked not in blocks(grid(client, clinic))
    panels = client.get(f"/clinics/{clinic}/book?day={DAY}&partial=panels").text
    assert f"/appointments/{data.booked}/restore" in panels and "Rescheduled" in panels
    restored = client.post(f"{base}/restore", data={"csrf_token": token}, headers=HTMX)
    assert restored.headers["HX-Trigger"] == "book-changed"
    assert blocks(grid(client, clinic))[data.booked] == "09:00"
    client.post(f"{base}/delete", data={"csrf_token": token, "reason": "typed in by mistake"}, headers=HTMX)
    panels = client.get(f"/clinics/{clinic}/book?day={DAY}&partial=panels").text
    assert "typed in by mistake" in panels


def test_pinboard_waitlist_and_free_slots(site):
    praxis, clinic, data, client = site
    token = csrf_of(client.get(f"/clinics/{clinic}/book?day={DAY}").text)
    book = f"/clinics/{clinic}/book"
    client.post(f"{book}/appointments/{data.pinned}/move", data={"csrf_token": token, "date": DAY.isoformat(),
                "time": "16:00", "doctor_id": data.doctor, "mode": "move"}, headers=HTMX)
    assert blocks(grid(client, clinic))[data.pinned] == "16:00"  # placed from the pinboard
    client.post(f"{book}/waitlist/{data.waiting}/book", data={"csrf_token": token, "date": DAY.isoformat(),
                "time": "13:00", "doctor_id": data.doctor}, headers=HTMX)
    assert "13:00" in blocks(grid(client, clinic)).values()
    assert "mornings" not in client.get(f"{book}?day={DAY}&partial=panels").text
    added = client.post(f"{book}/waitlist/new", data={"csrf_token": token, "window_start": "10:00",
                                                      "duration": "30"}, headers=HTMX)
    assert field_errors(added.text)["f-window_end"] == "Give both ends of the time window."
    found = client.get(f"{book}/slots?from={DAY}&days=1&duration=60", headers=HTMX).text
    times = re.findall(r"&amp;at=([\d:]+)&amp;doctor", found)
    assert "09:30" in times and "09:00" not in times and "12:00" not in times


def test_a_viewer_sees_the_book_but_cannot_change_it(site):
    praxis, clinic, data, client = site
    create_user(praxis, [clinic], permissions=["appointments.view"], login="viewer", password=PASSWORD)
    viewer = web_client(praxis)
    log_in(viewer, "viewer", PASSWORD)
    page = viewer.get(f"/clinics/{clinic}/book?day={DAY}")
    assert page.status_code == 200 and data.booked in blocks(page.text)
    assert 'class="slot"' not in page.text and 'id="appt-menu"' not in page.text
    assert viewer.get(f"/clinics/{clinic}/book/new?day={DAY}").status_code == 403
    token = csrf_of(page.text)
    assert viewer.post(f"/clinics/{clinic}/book/appointments/{data.booked}/cancel",
                       data={"csrf_token": token, "reason": "other"}).status_code == 403
    other = add_clinic(praxis, "Elsewhere")
    assert viewer.get(f"/clinics/{other}/book").status_code == 404
