"""`praxis demo` gives a living clinic: staff who can log in, patients with local-script names, a week of bookings."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from core.api.app import create_app
from core.cli.main import cli
from core.demo.loader import DEMO_PASSWORD, load_demo
from core.models.appointment import Appointment
from core.models.patient import Patient, PatientIdentifier

ROOT = Path(__file__).resolve().parents[1]


def test_demo_loads_once_and_admin_sees_both_clinics(make_praxis):
    praxis = make_praxis(installed=True, plugins_toml=(ROOT / "plugins.toml").read_text())
    result = load_demo(praxis, patients_per_clinic=12)
    assert result.patients >= 20 and result.appointments > 20
    assert load_demo(praxis, patients_per_clinic=12).already_loaded
    with Session(praxis.engine) as session:
        names = session.exec(select(Patient.family_name)).all()
        assert any("\uac00" <= n[0] <= "\ud7a3" for n in names)  # Hangul family names in Seoul
        assert session.exec(select(func.count()).select_from(Appointment)).one() == result.appointments
        if "hungary" in praxis.runtime.available():
            assert session.exec(select(func.count()).select_from(PatientIdentifier)).one() > 0
    with TestClient(create_app(praxis, start_worker=False)) as client:
        login = client.post("/api/auth/login", json={"login": "admin", "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        clinics = client.get("/api/clinics").json()
        assert {c["name"] for c in (clinics["items"] if isinstance(clinics, dict) else clinics)} == {
            "Budapest Dental", "서울 치과"}


def test_demo_command_prints_logins(make_praxis, cli_env):
    praxis = make_praxis(installed=True)
    cli_env(praxis)
    result = CliRunner().invoke(cli, ["demo", "--patients", "3"])
    assert result.exit_code == 0, result.output
    assert "admin" in result.output and DEMO_PASSWORD in result.output
