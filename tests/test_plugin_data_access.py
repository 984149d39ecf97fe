"""Plugins read patients, appointments and records through their context, never by importing the core."""

from __future__ import annotations

from datetime import time, timedelta
from importlib.metadata import EntryPoint

import pytest
from sqlmodel import Session, select

from core.audit import Actor
from core.models.audit import AuditEntry
from core.patients.schemas import PatientCreate, PhoneIn
from core.patients.service import PatientService
from tests.conftest import add_clinic, fixture_plugin

HUNGARY = EntryPoint("hungary", "praxis_hungary.plugin", "praxis.plugins")
ADMIN = Actor(None, "t")


def test_patient_view_with_identifiers_in_clear_and_the_read_audited(make_praxis):
    praxis = make_praxis([fixture_plugin("reader"), fixture_plugin("greeter"), HUNGARY])
    clinic, other = add_clinic(praxis), add_clinic(praxis, "Szeged")
    for name in ("reader", "greeter", "hungary"):
        praxis.plugins.enable(clinic, name, ADMIN)
    created = PatientService(praxis).create(clinic, PatientCreate(
        family_name="Kovács", given_name="Anna", phones=[PhoneIn(number="06 30 123 4567")],
        identifiers={"hu.taj": "037 687 210"}), ADMIN)
    view = praxis.runtime.context("reader", clinic).patient(str(created.id))
    assert view.family_name == "Kovács" and view.identifiers == {"hu.taj": "037687210"}
    assert view.phones == ("+36301234567",)
    assert praxis.runtime.context("reader", other).patient(str(created.id)) is None  # another clinic's
    assert praxis.runtime.context("reader", clinic).patient("not-a-uuid") is None
    with pytest.raises(PermissionError, match="handles_patient_data"):
        praxis.runtime.context("greeter", clinic).patient(str(created.id))
    with Session(praxis.engine) as session:
        reads = session.exec(select(AuditEntry).where(AuditEntry.action == "reader.patient_read")).all()
    assert [r.target for r in reads] == [f"patient:{created.id}"]
    assert "037687210" not in str(reads[0].data)


def test_appointment_and_records_of_a_visit(make_praxis):
    from core.models.auth import User
    from core.scheduling import appointments, schedules
    from tests.auth_helpers import create_user

    praxis = make_praxis([fixture_plugin("reader")])
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, "reader", ADMIN)
    doctor = create_user(praxis, clinic_ids=[clinic], role="doctor")
    schedules.set_templates(praxis.engine, clinic, doctor, [
        {"weekday": d, "start_time": time(0), "end_time": time(23, 59)} for d in range(7)], ADMIN)
    patient = PatientService(praxis).create(clinic, PatientCreate(family_name="Nagy"), ADMIN)
    from core.clock import now

    start = (now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    made = appointments.create(praxis, clinic, {"doctor_id": doctor, "patient_id": patient.id, "start_at": start,
                                                "end_at": start + timedelta(minutes=30)},
                               appointments.Caller(ADMIN))
    ctx = praxis.runtime.context("reader", clinic)
    assert ctx.appointment(made["id"])["patient_id"] == str(patient.id)
    assert ctx.appointment(10_000) is None
    assert ctx.records(appointment_id=made["id"]) == []
    assert ctx.staff_identifiers(doctor) == {}
    from core.db import transaction
    from core.models.auth import UserIdentifier

    with transaction(praxis.engine) as session:
        session.add(UserIdentifier(user_id=doctor, type_code="hu.stamp", value="58012"))
    assert ctx.staff_identifiers(doctor) == {"hu.stamp": "58012"}
    other = add_clinic(praxis, "Debrecen")
    praxis.plugins.enable(other, "reader", ADMIN)
    assert praxis.runtime.context("reader", other).staff_identifiers(doctor) == {}  # not staff there
    assert ctx.staff_identifiers(10_000) == {}
    assert User  # the doctor is a real user row
