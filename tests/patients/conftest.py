"""Fixtures for the patient tests: a clinic with the ``nid`` fixture plugin enabled, and the service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from core.app_context import Praxis
from core.audit import Actor
from core.patients.schemas import PatientCreate
from core.patients.service import PatientService
from tests.conftest import add_clinic


def patient_plugin(name: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"tests.patients.plugins.{name}", group="praxis.plugins")


@dataclass
class World:
    praxis: Praxis
    svc: PatientService
    clinic_id: int
    other_clinic_id: int
    actor: Actor

    def create(self, clinic_id: int | None = None, **fields: Any):  # type: ignore[no-untyped-def]
        fields.setdefault("family_name", "Kovács")
        fields.setdefault("given_name", "Anna")
        return self.svc.create(clinic_id or self.clinic_id, PatientCreate(**fields), self.actor)


@pytest.fixture
def world(make_praxis: Callable[..., Praxis]) -> World:
    from tests.patients.plugins import nid

    nid.EVENTS.clear()
    nid.VETO_CALLS.clear()
    praxis = make_praxis([patient_plugin("nid"), patient_plugin("other")])
    clinic_id = add_clinic(praxis, "Budapest", "HU")
    other = add_clinic(praxis, "Seoul", "KR", "Asia/Seoul", "ko")
    actor = Actor(None, "tester")
    praxis.plugins.enable(clinic_id, "nid", actor)
    praxis.plugins.enable(other, "nid", actor)
    return World(praxis, PatientService(praxis), clinic_id, other, actor)

