"""Recurring series: preview with conflicts, all-or-nothing creation, skipping conflicts, daylight saving."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from core.scheduling import appointments as ap
from core.scheduling import recurrence
from core.scheduling.errors import Conflict
from plugin_sdk.errors import ValidationFailed
from tests.scheduling.conftest import DESK, ClinicSetup


def local(*parts: int) -> datetime:
    """A clinic-local wall time (naive on purpose: the rule repeats it in the clinic's zone)."""
    return datetime(*parts)  # noqa: DTZ001


def template(b: ClinicSetup) -> dict:
    return {"doctor_id": b.doctors[0], "new_patient_name": "Szabó Péter", "new_patient_phone": "+36205556666",
            "type_code": "follow_up"}


def test_preview_marks_conflicts_and_create_is_all_or_nothing(budapest: ClinicSetup) -> None:
    b = budapest
    blocker = ap.create(b.praxis, b.clinic_id, b.values(date(2026, 3, 17), 10), DESK)
    first = local(2026, 3, 10, 10, 0)
    preview = recurrence.preview(b.praxis, b.clinic_id, template(b), "FREQ=WEEKLY;COUNT=4", first, 30)
    assert [o["ok"] for o in preview["occurrences"]] == [True, False, True, True]
    assert preview["occurrences"][1]["conflicts"][0]["id"] == blocker["id"]
    with pytest.raises(Conflict):
        recurrence.create_series(b.praxis, b.clinic_id, template(b), "FREQ=WEEKLY;COUNT=4", first, 30, DESK)
    assert ap.list_appointments(b.praxis, b.clinic_id, ap.Query())["total"] == 1  # nothing was booked
    made = recurrence.create_series(b.praxis, b.clinic_id, template(b), "FREQ=WEEKLY;COUNT=4", first, 30, DESK,
                                    skip_conflicts=True)
    assert len(made["created"]) == 3 and made["skipped"] == [{"index": 1, "start_local": "2026-03-17T10:00:00",
                                                               "problem": "conflict"}]
    assert {a["series_id"] for a in made["created"]} == {made["series_id"]}


def test_local_time_is_kept_across_daylight_saving(budapest: ClinicSetup) -> None:
    b = budapest
    preview = recurrence.preview(b.praxis, b.clinic_id, template(b), "RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=3",
                                 local(2026, 3, 24, 10, 0), 30)
    starts = [(o["start_local"], o["start_at"]) for o in preview["occurrences"]]
    assert starts == [("2026-03-24T10:00:00", "2026-03-24T09:00:00+00:00"),  # CET
                      ("2026-03-31T10:00:00", "2026-03-31T08:00:00+00:00"),  # CEST from 29 March
                      ("2026-04-07T10:00:00", "2026-04-07T08:00:00+00:00")]


def test_holidays_show_as_outside_hours_and_bad_rules_are_refused(budapest: ClinicSetup) -> None:
    b = budapest
    preview = recurrence.preview(b.praxis, b.clinic_id, template(b), "FREQ=DAILY;COUNT=4",
                                 local(2026, 4, 2, 9, 0), 30)
    assert [o["problems"] for o in preview["occurrences"]] == [[], ["outside_working_hours"],
                                                               ["outside_working_hours"], ["outside_working_hours"]]
    for rule, code in (("FREQ=WEEKLY", "unbounded"), ("FREQ=SOMETIMES;COUNT=2", "invalid_rrule"),
                       ("FREQ=DAILY;COUNT=500", "too_many")):
        with pytest.raises(ValidationFailed) as caught:
            recurrence.preview(b.praxis, b.clinic_id, template(b), rule, local(2026, 4, 2, 9, 0), 30)
        assert caught.value.errors[0].code == code
