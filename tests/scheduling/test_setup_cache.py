"""The per-process cache of a clinic's set-up follows every change, in this process or another, and a
booking that loses a race on PostgreSQL's exclusion constraint is a 409 listing the winner."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from core.db import make_engine, transaction
from core.models.schedule import DoctorSchedule
from core.scheduling import appointments as ap
from core.scheduling import options, schedules, setup
from core.scheduling.errors import Conflict, NotFound
from plugin_sdk.errors import ValidationFailed
from tests.scheduling.conftest import ACTOR, DESK, ClinicSetup

TUE = date(2026, 3, 3)


def generation(b: ClinicSetup) -> int:
    with b.praxis.engine.connect() as connection:
        return connection.execute(text("SELECT generation FROM core_clinic_setup_generation WHERE clinic_id = :c"),
                                  {"c": b.clinic_id}).scalar_one()


def test_schedule_changes_reach_the_next_booking(budapest: ClinicSetup) -> None:
    b = budapest
    ap.create(b.praxis, b.clinic_id, b.values(TUE, 9), DESK)  # fills the cache
    before = generation(b)
    schedules.add_exception(b.praxis.engine, b.clinic_id, b.doctors[0], {"day": TUE, "kind": "off"}, ACTOR)
    assert generation(b) > before
    with pytest.raises(ValidationFailed) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    assert caught.value.errors[0].code == "outside_working_hours"
    # an empty weekly template is a bulk delete only: it must still be noticed
    schedules.set_templates(b.praxis.engine, b.clinic_id, b.doctors[1], [], ACTOR)
    with pytest.raises(ValidationFailed):
        ap.create(b.praxis, b.clinic_id, b.values(date(2026, 3, 4), 10, doctor=1), DESK)


def test_a_change_written_by_another_process_is_seen(budapest: ClinicSetup) -> None:
    b = budapest
    ap.create(b.praxis, b.clinic_id, b.values(TUE, 9), DESK)
    other = make_engine(b.praxis.engine.url.render_as_string(hide_password=False))
    try:  # another engine stands for another process: its flush hook raises the generation in the database
        with Session(other) as session:
            row = session.query(DoctorSchedule).filter_by(clinic_id=b.clinic_id, doctor_id=b.doctors[0],
                                                          weekday=TUE.weekday()).one()
            row.end_time = time(10)
            session.commit()
    finally:
        other.dispose()
    with pytest.raises(ValidationFailed):
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 11), DESK)


def test_option_lists_and_rooms_come_from_the_cache_and_follow_changes(budapest: ClinicSetup) -> None:
    b = budapest
    with pytest.raises(ValidationFailed):
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 9, type_code="implant"), DESK)
    with transaction(b.praxis.engine) as session:
        options.replace(session, b.clinic_id, "type", [{"code": "implant", "label": "Implant"}], ACTOR)
    assert ap.create(b.praxis, b.clinic_id, b.values(TUE, 9, type_code="implant"), DESK)["type_code"] == "implant"
    schedules.update_room(b.praxis.engine, b.clinic_id, b.rooms[1], {"active": False}, ACTOR)
    with pytest.raises(ValidationFailed) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, room_id=b.rooms[1]), DESK)
    assert caught.value.errors[0].code == "room_inactive"


def test_a_rolled_back_change_is_never_cached(budapest: ClinicSetup) -> None:
    b = budapest
    with pytest.raises(RuntimeError), transaction(b.praxis.engine) as session:
        session.add(DoctorSchedule(clinic_id=b.clinic_id, doctor_id=b.doctors[0], weekday=6, start_time=time(9),
                                   end_time=time(12)))
        session.flush()
        cached = setup.cached(session, b.clinic_id)
        assert any(t.weekday == 6 for t in cached.templates[b.doctors[0]])
        raise RuntimeError("roll back")
    with Session(b.praxis.engine) as session:
        assert not any(t.weekday == 6 for t in setup.cached(session, b.clinic_id).templates[b.doctors[0]])


def test_a_lost_race_is_a_conflict_naming_the_winner(budapest: ClinicSetup, monkeypatch) -> None:  # noqa: ANN001
    b = budapest
    if b.praxis.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: the check and the insert cannot interleave")
    winner = ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)
    # the overlap check runs before the winner is visible (as when both transactions run at once)
    real = ap.Book.lookup

    def blind(self: ap.Book, appt: ap.Draft, **kwargs: bool) -> ap.Known | None:
        known = real(self, appt, **kwargs)
        if known is not None:
            known.conflicts = []
        return known

    monkeypatch.setattr(ap.Book, "lookup", blind)
    with pytest.raises(Conflict) as caught:
        ap.create(b.praxis, b.clinic_id, b.values(TUE, 10, 15), DESK)
    assert [c["id"] for c in caught.value.details["conflicts"]] == [winner["id"]]


def test_a_clinic_changed_without_a_new_generation_is_read_again(budapest: ClinicSetup) -> None:
    """A booking first computes with the clinic this process saw last; its query shows the clinic's time zone
    changed (clinic rows raise no set-up generation), so the hours are computed again in the new zone."""
    b = budapest
    ap.create(b.praxis, b.clinic_id, b.values(TUE, 9), DESK)  # the process has seen the clinic in Budapest
    with b.praxis.engine.begin() as connection:
        connection.execute(text("UPDATE core_clinic SET timezone = 'Asia/Seoul' WHERE id = :c"), {"c": b.clinic_id})
    seoul_nine = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 09:00 in Seoul, 01:00 in Budapest
    values = b.values(TUE, 9)
    values["start_at"], values["end_at"] = seoul_nine, seoul_nine + timedelta(minutes=30)
    made = ap.create(b.praxis, b.clinic_id, values, DESK)
    assert made["start_local"] == "2026-03-03T09:00:00"
    assert made["room_id"] == b.rooms[0]  # the doctor's room that morning, picked in the clinic's new zone


def test_a_stale_set_up_picks_the_room_again(budapest: ClinicSetup) -> None:
    """The doctor's schedule names another room since the cached set-up: the booking gets the new room."""
    b = budapest
    assert ap.create(b.praxis, b.clinic_id, b.values(TUE, 9), DESK)["room_id"] == b.rooms[0]
    schedules.set_templates(b.praxis.engine, b.clinic_id, b.doctors[0], [
        {"weekday": d, "start_time": time(9), "end_time": time(17), "room_id": b.rooms[1]} for d in range(5)], ACTOR)
    assert ap.create(b.praxis, b.clinic_id, b.values(TUE, 10), DESK)["room_id"] == b.rooms[1]


def test_an_unknown_clinic_is_not_found(budapest: ClinicSetup) -> None:
    b = budapest
    ap.create(b.praxis, b.clinic_id, b.values(TUE, 9), DESK)
    with pytest.raises(NotFound):
        ap.create(b.praxis, b.clinic_id + 1000, b.values(TUE, 10), DESK)
