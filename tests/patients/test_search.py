"""Patient search reads a page, its total and its phones with one statement, and writes nothing.

The statement joins each patient of the page to its phones, so these tests check what that must not change:
a page counts patients (not phone rows), every phone comes in its order, patients without phones come too,
and the total counts patients over all pages, also past the last page.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlmodel import Session, select

from core.models.audit import AuditEntry
from core.models.auth import AccessLog
from core.models.outbox import OutboxItem
from core.patients.schemas import PatientPage


@pytest.fixture
def family(world):  # noqa: ANN001, ANN201
    made = {
        "anna": world.create(family_name="Tóth", given_name="Anna", birth_date=date(1980, 1, 2),
                             phones=[{"number": "+36 30 111 1111"}, {"number": "+36 1 222 2222", "kind": "home"},
                                     {"number": "+36 20 333 3333", "kind": "work"}]),
        "bela": world.create(family_name="Tóth", given_name="Béla"),  # no phone
        "cecil": world.create(family_name="Tóth", given_name="Cecil", phones=[{"number": "+36 70 444 4444"},
                                                                           {"number": "+36 30 555 5555"}]),
        "dora": world.create(family_name="Tóth", given_name="Dóra", tags=["kids"], vip=True,
                             phones=[{"number": "+36 30 666 6666"}]),
    }
    world.create(world.other_clinic_id, family_name="Tóth", given_name="Anna", phones=[{"number": "+36301111111"}])
    return made


def queries(world, call: Any) -> list[str]:  # noqa: ANN001
    """The statements other than BEGIN/ROLLBACK that ``call()`` sends to the database."""
    seen: list[str] = []

    def listen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip()[:6].upper() in ("SELECT", "WITH"):
            seen.append(statement)

    event.listen(world.praxis.engine, "before_cursor_execute", listen)
    try:
        call()
    finally:
        event.remove(world.praxis.engine, "before_cursor_execute", listen)
    return seen


def test_pages_count_patients_and_carry_every_phone_in_order(world, family) -> None:  # noqa: ANN001
    first = world.svc.search(world.clinic_id, q="tóth", limit=2)
    second = world.svc.search(world.clinic_id, q="tóth", limit=2, offset=2)
    assert first.total == second.total == 4
    assert [p.given_name for p in first.items] == ["Anna", "Béla"]
    assert [p.given_name for p in second.items] == ["Cecil", "Dóra"]
    assert first.items[0].phones == ["+36301111111", "+3612222222", "+36203333333"]
    assert first.items[1].phones == []
    assert second.items[0].phones == ["+36704444444", "+36305555555"]
    assert second.items[1].phones == ["+36306666666"]
    assert first.items[0].birth_date == date(1980, 1, 2) and first.items[0].status == "active"
    assert second.items[1].vip is True and second.items[1].tags == ["kids"]
    # a single page holding them all: four patients, six phone rows
    everyone = world.svc.search(world.clinic_id, q="toth")
    assert [len(p.phones) for p in everyone.items] == [3, 0, 2, 1]


def test_a_page_past_the_last_still_counts_the_matches(world, family) -> None:  # noqa: ANN001
    past = world.svc.search(world.clinic_id, q="tóth", limit=2, offset=10)
    assert past.items == [] and past.total == 4
    assert world.svc.search(world.clinic_id, q="nobody").total == 0
    assert world.svc.search(world.clinic_id, q="nobody", offset=5).total == 0


def test_matching_phone_finds_the_patient_with_all_its_phones(world, family) -> None:  # noqa: ANN001
    page = world.svc.search(world.clinic_id, phone="222 2222")
    assert page.total == 1
    assert page.items[0].phones == ["+36301111111", "+3612222222", "+36203333333"]


def test_criteria_combine_and_status_none_finds_every_state(world, family) -> None:  # noqa: ANN001
    assert [p.given_name for p in world.svc.search(world.clinic_id, q="tóth", tag="kids", vip=True).items] == ["Dóra"]
    assert world.svc.search(world.clinic_id, q="tóth", tag="kids", vip=False).total == 0
    world.svc.trash(world.clinic_id, family["bela"].id, "registered twice", world.actor)
    assert world.svc.search(world.clinic_id, q="tóth").total == 3
    assert [p.given_name for p in world.svc.search(world.clinic_id, q="tóth", status="trashed").items] == ["Béla"]
    assert world.svc.search(world.clinic_id, q="tóth", status=None).total == 4


def test_one_statement_per_search_and_nothing_written(world, family) -> None:  # noqa: ANN001
    def counts() -> tuple[int, int, int]:
        with Session(world.praxis.engine) as session:
            return tuple(session.exec(select(func.count()).select_from(model)).one()  # type: ignore[return-value]
                         for model in (AccessLog, AuditEntry, OutboxItem))

    before = counts()
    for criteria in ({"q": "tóth"}, {"phone": "1111"}, {"chart_number": family["cecil"].chart_number},
                     {"q": "tóth", "tag": "kids", "vip": True, "status": None}):
        pages: list[PatientPage] = []
        sent = queries(world, lambda c=criteria, out=pages: out.append(world.svc.search(world.clinic_id, **c)))
        assert len(sent) == 1 and pages[0].total >= 1
    # only a page past the last needs a second statement, to count
    assert len(queries(world, lambda: world.svc.search(world.clinic_id, q="tóth", offset=50))) == 2
    assert counts() == before


@pytest.mark.parametrize("criteria", [{"q": "tóth"}, {"phone": "2222"}, {"q": "tóth", "status": "trashed"}])
def test_sqlite_reads_matches_by_id_without_statistics(world, family, criteria) -> None:  # noqa: ANN001
    """Nothing runs ANALYZE on the embedded database; without statistics SQLite took the clinic and status
    terms for selective and walked every patient (or phone) of the clinic, probing each against the few
    matches: seconds at a million patients. The plan must start from the matches."""
    if world.praxis.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans from the statistics autovacuum keeps")
    sent: list[tuple[str, Any]] = []

    def listen(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(world.praxis.engine, "before_cursor_execute", listen)
    try:
        world.svc.search(world.clinic_id, **criteria)
    finally:
        event.remove(world.praxis.engine, "before_cursor_execute", listen)
    with world.praxis.engine.connect() as connection:
        stats = connection.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        assert stats.scalar() == 0
        plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sent[0][0], sent[0][1])]
    assert any("core_patient USING INDEX sqlite_autoindex_core_patient_1 (id=?)" in step for step in plan), plan
    assert not any("ix_core_patient_list" in step or "ix_core_patient_clinic_id" in step
                   or "ix_core_patient_phone_e164" in step or step.split(" ")[:2] == ["SCAN", "core_patient_phone"]
                   for step in plan), plan
