"""The patient service: registration, identifiers, search, duplicates, versions, vetoes, audit and events."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from core.audit import verify
from core.clock import set_clock
from core.crypto import MasterKeyError
from core.events import EVENT_TOPIC
from core.models.audit import AuditEntry
from core.models.auth import AccessLog
from core.models.outbox import OutboxItem
from core.models.patient import ChartSequence, Patient, PatientIdentifier, PatientPhone, PatientSearchKey
from core.patients import identifiers as ids
from core.patients.errors import DuplicateWarning, PatientConflict, PatientNotFound
from core.patients.schemas import PatientUpdate
from plugin_sdk.errors import ValidationFailed
from tests.patients.plugins import nid

NID = "123 456 786"  # 1+2+...+8 = 36 -> check digit 6
NID_NORMAL = "123456786"
NID_OTHER = "111 111 118"


def fields_of(exc: ValidationFailed) -> dict[str, str]:
    return {e.field: e.code for e in exc.errors}


def outbox(world) -> list[OutboxItem]:
    with Session(world.praxis.engine) as session:
        return list(session.exec(select(OutboxItem).order_by(col(OutboxItem.created_at))).all())


def audit_entries(world, action: str | None = None) -> list[AuditEntry]:
    with Session(world.praxis.engine) as session:
        stmt = select(AuditEntry).where(col(AuditEntry.action).startswith("patient"))
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return list(session.exec(stmt.order_by(col(AuditEntry.seq))).all())


# --- registration and chart numbers ----------------------------------------------------------------


def test_create_normalises_contacts_allocates_chart_numbers_and_reads_back(world):
    p = world.create(phones=[{"number": "06 30 123 4567"}, {"number": "+82 10-1234-5678", "kind": "work"}],
                     emails=[{"email": "Anna@Example.COM"}], birth_date=date(1980, 5, 17), tags=["ortho", " ortho "],
                     alerts=[{"type": "allergy", "text": "Penicillin", "severity": "high"}],
                     guardians=[{"name": "Kovács Béla", "relation": "father", "phone": "06201234567"}],
                     consents=[{"type": "privacy", "version": "2", "signed_at": "2026-01-02T10:00:00+01:00"}])
    assert p.chart_number == "000001" and p.version == 1 and p.status == "active"
    assert [(x.e164, x.kind) for x in p.phones] == [("+36301234567", "mobile"), ("+821012345678", "work")]
    assert p.emails[0].email == "Anna@example.com"
    assert p.tags == ["ortho"]
    assert p.guardians[0].phone == "+36201234567"
    assert p.consents[0].signed_at == datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    assert world.create(family_name="Second").chart_number == "000002"
    again = world.svc.get(world.clinic_id, p.id, world.actor)
    assert again.alerts[0].text == "Penicillin" and again.alerts[0].severity == "high"
    # The other clinic counts on its own.
    assert world.create(world.other_clinic_id, family_name="김", given_name="민준").chart_number == "000001"


def test_chart_format_with_year_restarts_each_year_and_skips_numbers_taken_by_hand(world):
    world.svc.set_chart_format(world.clinic_id, "{year}-{seq:05d}", world.actor)
    set_clock(lambda: datetime(2026, 12, 31, 23, 30, tzinfo=UTC))  # already 2027 in Budapest
    try:
        assert world.svc.chart_format(world.clinic_id).example == "2027-00001"
        world.create(family_name="Manual", chart_number="2027-00002")
        assert world.create().chart_number == "2027-00001"
        assert world.create(family_name="B").chart_number == "2027-00003"
        set_clock(lambda: datetime(2028, 1, 5, tzinfo=UTC))
        assert world.create(family_name="C").chart_number == "2028-00001"
    finally:
        set_clock(None)
    with pytest.raises(ValidationFailed) as bad:
        world.svc.set_chart_format(world.clinic_id, "P{number}", world.actor)
    assert fields_of(bad.value) == {"format": "invalid"}
    with pytest.raises(ValidationFailed) as taken:
        world.create(family_name="D", chart_number="2027-00002")
    assert fields_of(taken.value) == {"chart_number": "taken"}


def test_chart_numbers_stay_unique_and_gap_free_under_concurrent_registrations(world):
    numbers: list[str] = []
    failures: list[BaseException] = []

    def register(i: int) -> None:
        try:
            numbers.append(world.create(family_name=f"Concurrent{i}", confirm_duplicate=True).chart_number)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(numbers) == [f"{i:06d}" for i in range(1, 13)]


def test_field_errors_name_each_bad_field_and_nothing_is_written(world):
    with pytest.raises(ValidationFailed) as exc:
        world.create(phones=[{"number": "12"}], emails=[{"email": "not-an-address"}],
                     identifiers={"xx.nid": "123 456 789", "yy.id": "X1", "xx.staff": "5"},
                     birth_date=date(2999, 1, 1), guardians=[{"name": "G", "phone": "abc"}])
    assert fields_of(exc.value) == {
        "phones.0": "invalid", "emails.0": "invalid", "identifiers.xx.nid": "invalid",
        "identifiers.yy.id": "unknown_type", "identifiers.xx.staff": "unknown_type",
        "birth_date": "future", "guardians.0.phone": "invalid",
    }
    with Session(world.praxis.engine) as session:
        assert session.exec(select(Patient)).all() == []


def test_national_numbers_are_read_in_the_clinics_country(world):
    seoul = world.create(world.other_clinic_id, family_name="김", given_name="민준",
                         phones=[{"number": "010-1234-5678"}])
    assert seoul.phones[0].e164 == "+821012345678"
    with pytest.raises(ValidationFailed) as exc:
        world.create(phones=[{"number": "010-1234-5678"}])  # not a Hungarian number
    assert fields_of(exc.value) == {"phones.0": "invalid"}


# --- identifiers -----------------------------------------------------------------------------------


def test_identifiers_are_never_stored_in_plaintext(world, db_url):
    p = world.create(identifiers={"xx.nid": NID}, family_name="Secret")
    world.svc.update(world.clinic_id, p.id, PatientUpdate(version=1, notes="changed"), world.actor)
    world.svc.get(world.clinic_id, p.id, world.actor, reveal=True)
    with Session(world.praxis.engine) as session:
        row = session.exec(select(PatientIdentifier)).one()
        assert NID_NORMAL not in (row.ciphertext + row.blind_index + row.masked)
        assert row.masked == "*** *** 786"
        # Every text column of every table, as the database returns it.
        tables = [r[0] for r in session.execute(text(
            "SELECT name FROM sqlite_master WHERE type='table'" if db_url.startswith("sqlite")
            else "SELECT tablename FROM pg_tables WHERE schemaname='public'"))]
        for table in tables:
            for values in session.execute(text(f'SELECT * FROM "{table}"')):
                assert not any(NID_NORMAL in str(v) or "123-456-786" in str(v) for v in values), table
    if db_url.startswith("sqlite"):
        world.praxis.engine.dispose()
        path = db_url.split("///", 1)[1]
        import glob

        for name in glob.glob(path + "*"):  # the database, its WAL and shared-memory files
            with open(name, "rb") as handle:
                data = handle.read()
            assert NID_NORMAL.encode() not in data, name
            assert NID.encode() not in data, name


def test_identifier_ciphertext_is_bound_to_its_patient(world):
    a = world.create(identifiers={"xx.nid": NID}, family_name="A")
    b = world.create(family_name="B")
    with Session(world.praxis.engine) as session:
        row = session.exec(select(PatientIdentifier)).one()
        assert world.praxis.keyring.decrypt(row.ciphertext, ids.aad(a.id, "xx.nid")) == NID_NORMAL
        with pytest.raises(MasterKeyError):
            world.praxis.keyring.decrypt(row.ciphertext, ids.aad(b.id, "xx.nid"))


def test_reveal_decrypts_and_is_logged_plain_view_shows_only_the_mask(world):
    p = world.create(identifiers={"xx.nid": NID})
    plain = world.svc.get(world.clinic_id, p.id, world.actor)
    assert plain.identifiers[0].value is None and plain.identifiers[0].masked == "*** *** 786"
    shown = world.svc.get(world.clinic_id, p.id, world.actor, reveal=True)
    assert shown.identifiers[0].value == NID_NORMAL and shown.identifiers[0].title == "National ID"
    with Session(world.praxis.engine) as session:
        log = session.exec(select(AccessLog.action).order_by(col(AccessLog.id))).all()
    assert log == ["view", "view", "view_identifiers"]
    assert [e.action for e in audit_entries(world)][-3:] == [
        "patient.access.view", "patient.access.view", "patient.access.view_identifiers"]


def test_identifier_types_come_only_from_plugins_enabled_in_the_clinic(world):
    assert set(world.svc.identifier_types(world.clinic_id)) == {"xx.nid"}  # not staff types, not 'other'
    world.praxis.plugins.enable(world.clinic_id, "other", world.actor)
    assert set(world.svc.identifier_types(world.clinic_id)) == {"xx.nid", "yy.id"}
    world.praxis.plugins.disable(world.clinic_id, "nid", world.actor)
    assert set(world.svc.identifier_types(world.clinic_id)) == {"yy.id"}


def test_identifier_update_replace_and_remove(world):
    p = world.create(identifiers={"xx.nid": NID})
    p2 = world.svc.update(world.clinic_id, p.id, PatientUpdate(version=1, identifiers={"xx.nid": NID_OTHER}),
                          world.actor)
    assert p2.identifiers[0].masked == "*** *** 118" and p2.version == 2
    assert world.svc.search(world.clinic_id, identifier_type="xx.nid", identifier=NID).total == 0
    assert world.svc.search(world.clinic_id, identifier_type="xx.nid", identifier="111-111-118").total == 1
    p3 = world.svc.update(world.clinic_id, p.id, PatientUpdate(version=2, identifiers={"xx.nid": None}), world.actor)
    assert p3.identifiers == []
    changes = audit_entries(world, "patient.updated")[0].data["changes"]
    assert changes["identifiers"] == {"before": {"xx.nid": "*** *** 786"}, "after": {"xx.nid": "*** *** 118"}}


# --- search ----------------------------------------------------------------------------------------


@pytest.fixture
def people(world):
    made = {
        "anna": world.create(family_name="Kovács", given_name="Anna", family_name_latin="Kovacs",
                             phones=[{"number": "+36 30 123 4567"}], identifiers={"xx.nid": NID}, tags=["ortho"]),
        "peter": world.create(family_name="Szabó", given_name="Péter", vip=True,
                              phones=[{"number": "+36 1 555 6789", "kind": "home"}]),
        "ivan": world.create(family_name="Иванов", given_name="Иван Петрович", family_name_latin="Ivanov",
                             given_name_latin="Ivan"),
        "kim": world.create(family_name="김", given_name="민준", family_name_latin="Kim", given_name_latin="Minjun"),
    }
    world.create(world.other_clinic_id, family_name="Kovács", given_name="Anna", phones=[{"number": "+36301234567"}])
    return made


def found(world, **criteria) -> set[str]:
    page = world.svc.search(world.clinic_id, **criteria)
    return {f"{p.family_name} {p.given_name}" for p in page.items}


NAME_QUERIES = [
    ("kov", {"Kovács Anna"}),            # family prefix, local script
    ("KOVÁCS A", {"Kovács Anna"}),       # full name, case-insensitive
    ("kovacs", {"Kovács Anna"}),         # accents folded
    ("anna", {"Kovács Anna"}),           # given name first
    ("péter sz", {"Szabó Péter"}),       # given + family
    ("петрович", {"Иванов Иван Петрович"}),  # any word of the name starts a key
    ("иванов иван", {"Иванов Иван Петрович"}),
    ("김민", {"김 민준"}),                  # compact form, as typed in Hangul
    ("민준", {"김 민준"}),
    ("minjun k", {"김 민준"}),             # Latin spelling
    ("ka#", {"Kovács Anna"}),            # plugin key (the fixture's initials)
    ("김민#", {"김 민준"}),
    ("kim", {"김 민준"}),
    ("zzz-other", set()),                # a plugin not enabled in the clinic adds no keys
    ("x", set()),
]


def test_name_prefix_search_by_every_key_kind(world, people):
    for query, expected in NAME_QUERIES:
        assert found(world, q=query) == expected, query


def test_search_keys_have_each_kind(world, people):
    with Session(world.praxis.engine) as session:
        kinds = dict(session.exec(select(PatientSearchKey.key, PatientSearchKey.kind)
                                  .where(PatientSearchKey.patient_id == people["kim"].id)).all())
    assert kinds == {"김 민준": "family", "민준 김": "given", "김민준": "compact", "kim minjun": "latin",
                     "minjun kim": "latin", "김민#": "plugin", "민#": "plugin"}


def test_phone_chart_identifier_tag_and_vip_search(world, people):
    assert found(world, phone="1234567") == {"Kovács Anna"}
    assert found(world, phone="0630 123") == {"Kovács Anna"}  # national form
    assert found(world, phone="567") == {"Kovács Anna", "Szabó Péter"}
    assert found(world, phone="06 1 555") == {"Szabó Péter"}
    assert found(world, chart_number=people["peter"].chart_number) == {"Szabó Péter"}
    assert found(world, identifier_type="xx.nid", identifier="123-456-786") == {"Kovács Anna"}
    assert found(world, tag="ortho") == {"Kovács Anna"}
    assert found(world, vip=True) == {"Szabó Péter"}
    assert found(world, q="kov", phone="999") == set()
    with pytest.raises(ValidationFailed) as exc:
        world.svc.search(world.clinic_id, phone="12", identifier_type="yy.id", identifier="1")
    assert fields_of(exc.value) == {"phone": "too_short", "identifier_type": "unknown_type"}
    with pytest.raises(ValidationFailed) as exc:
        world.svc.search(world.clinic_id, identifier_type="xx.nid", identifier="123")
    assert fields_of(exc.value) == {"identifier": "invalid"}


def test_search_paginates_and_counts(world, people):
    page = world.svc.search(world.clinic_id, limit=2, offset=0)
    rest = world.svc.search(world.clinic_id, limit=2, offset=2)
    assert page.total == rest.total == 4
    assert len(page.items) == 2 and len(rest.items) == 2
    assert not {p.id for p in page.items} & {p.id for p in rest.items}


def test_renaming_rebuilds_the_search_keys(world, people):
    anna = people["anna"]
    world.svc.update(world.clinic_id, anna.id, PatientUpdate(version=1, family_name="Tóth", family_name_latin=None),
                     world.actor)
    assert found(world, q="kov") == set()
    assert found(world, q="toth a") == {"Tóth Anna"}


# --- duplicates ------------------------------------------------------------------------------------


def test_duplicate_warning_by_name_and_birth_date_or_phone(world):
    first = world.create(birth_date=date(1990, 1, 2), phones=[{"number": "+36301112222"}])
    with pytest.raises(DuplicateWarning) as same_name:
        world.create(family_name="KOVACS", given_name="anna", birth_date=date(1990, 1, 2))
    candidate = same_name.value.details["candidates"][0]
    assert candidate["patient"]["id"] == str(first.id) and candidate["reasons"] == ["name_birth_date"]
    with pytest.raises(DuplicateWarning) as same_phone:
        world.create(family_name="Other", phones=[{"number": "06 30 111 2222"}])
    assert same_phone.value.details["candidates"][0]["reasons"] == ["phone"]
    world.create(family_name="Kovács", given_name="Anna", birth_date=date(1991, 1, 2))  # another birthday: fine
    second = world.create(family_name="KOVACS", given_name="anna", birth_date=date(1990, 1, 2),
                          confirm_duplicate=True)
    assert second.chart_number == "000003"
    assert len([i for i in outbox(world) if i.payload["name"] == "patient.created"]) == 3


# --- versions, vetoes, events, audit ---------------------------------------------------------------


def test_update_checks_the_version_and_writes_nothing_on_conflict(world):
    p = world.create()
    world.svc.update(world.clinic_id, p.id, PatientUpdate(version=1, address="Fő utca 1"), world.actor)
    items, entries = len(outbox(world)), len(audit_entries(world))
    with pytest.raises(PatientConflict) as exc:
        world.svc.update(world.clinic_id, p.id, PatientUpdate(version=1, address="Fő utca 2"), world.actor)
    assert exc.value.code == "version_conflict" and exc.value.details["current_version"] == 2
    assert (len(outbox(world)), len(audit_entries(world))) == (items, entries)
    assert world.svc.get(world.clinic_id, p.id, world.actor).address == "Fő utca 1"


def test_update_keeps_rows_matched_by_id_or_number_and_a_no_op_changes_nothing(world):
    p = world.create(phones=[{"number": "+36301234567"}, {"number": "+36201234567"}])
    keep = p.phones[0].id
    p2 = world.svc.update(world.clinic_id, p.id, PatientUpdate(
        version=1, phones=[{"number": "06 30 123 4567", "kind": "work"}, {"number": "+36701234567"}]), world.actor)
    assert [(x.e164, x.kind) for x in p2.phones] == [("+36301234567", "work"), ("+36701234567", "mobile")]
    assert p2.phones[0].id == keep
    same = world.svc.update(world.clinic_id, p.id, PatientUpdate(version=2, address=""), world.actor)
    assert same.version == 2
    with pytest.raises(ValidationFailed) as exc:
        world.svc.update(world.clinic_id, p.id, PatientUpdate(version=2, family_name=None, alerts=[
            {"id": p.id, "type": "other", "text": "x"}]), world.actor)
    assert fields_of(exc.value) == {"family_name": "required"}
    with pytest.raises(ValidationFailed) as exc:
        world.svc.update(world.clinic_id, p.id, PatientUpdate(version=2, alerts=[
            {"id": p.id, "type": "other", "text": "x"}]), world.actor)
    assert fields_of(exc.value) == {"alerts.0.id": "unknown_id"}


def test_veto_refuses_the_write_with_the_plugins_field_errors(world):
    with pytest.raises(ValidationFailed) as exc:
        world.create(family_name="Vetoed")
    assert exc.value.plugin == "nid" and fields_of(exc.value) == {"family_name": "refused"}
    with pytest.raises(ValidationFailed) as exc:
        world.create(family_name="Needs", tags=["REQUIRE-NID"])
    assert fields_of(exc.value) == {"identifiers.xx.nid": "required"}
    ok = world.create(family_name="Needs", tags=["REQUIRE-NID"], identifiers={"xx.nid": NID})
    is_new, seen = nid.VETO_CALLS[-1]
    assert is_new is True and seen["identifiers"] == {"xx.nid": NID_NORMAL} and seen["id"] == str(ok.id)
    # The refused registrations used no chart number, wrote no row, no audit entry and no event.
    assert ok.chart_number == "000001"
    assert [i.payload["name"] for i in outbox(world)] == ["patient.created"]
    assert [e.action for e in audit_entries(world)] == ["patient.created"]
    with pytest.raises(ValidationFailed):
        world.svc.update(world.clinic_id, ok.id, PatientUpdate(version=1, family_name="Vetoed"), world.actor)
    assert nid.VETO_CALLS[-1][0] is False
    assert world.svc.get(world.clinic_id, ok.id, world.actor).family_name == "Needs"


def test_events_are_queued_in_the_same_transaction_with_the_changed_fields(world):
    p = world.create(identifiers={"xx.nid": NID}, phones=[{"number": "+36301234567"}])
    world.svc.update(world.clinic_id, p.id, PatientUpdate(version=1, given_name="Anikó", vip=True), world.actor)
    world.svc.trash(world.clinic_id, p.id, "registered twice", world.actor)
    world.svc.restore(world.clinic_id, p.id, world.actor)
    items = outbox(world)
    assert [i.payload["name"] for i in items] == ["patient.created", "patient.updated", "patient.deleted",
                                                  "patient.restored"]
    assert all(i.topic == EVENT_TOPIC and i.plugin == "nid" and i.clinic_id == world.clinic_id for i in items)
    created, updated = items[0].payload["data"], items[1].payload["data"]
    assert created["identifiers"] == {"xx.nid": "*** *** 786"} and created["phones"][0]["e164"] == "+36301234567"
    assert updated["changed"] == ["given_name", "vip"]
    assert updated["before"] == {"given_name": "Anna", "vip": False} and updated["given_name"] == "Anikó"
    assert items[2].payload["data"]["reason"] == "registered twice"
    assert all(NID_NORMAL not in str(i.payload) for i in items)


def test_audit_entries_hold_before_and_after_of_changed_fields_only(world):
    p = world.create(address="Old street 1")
    world.svc.update(world.clinic_id, p.id, PatientUpdate(version=1, address="New street 2", notes="x"), world.actor)
    entry = audit_entries(world, "patient.updated")[0]
    assert entry.target == f"patient:{p.id}" and entry.clinic_id == world.clinic_id
    assert entry.data["changes"] == {"address": {"before": "Old street 1", "after": "New street 2"},
                                     "notes": {"before": "", "after": "x"}}
    history = world.svc.history(world.clinic_id, p.id)
    assert [h.action for h in history] == ["patient.created", "patient.updated"]
    with Session(world.praxis.engine) as session:
        assert verify(session) == []


# --- trash -----------------------------------------------------------------------------------------


def test_trash_needs_a_reason_hides_the_card_and_restore_brings_it_back(world):
    p = world.create(phones=[{"number": "+36301234567"}])
    with pytest.raises(ValidationFailed) as exc:
        world.svc.trash(world.clinic_id, p.id, "  ", world.actor)
    assert fields_of(exc.value) == {"reason": "required"}
    gone = world.svc.trash(world.clinic_id, p.id, "test card", world.actor)
    assert gone.status == "trashed" and gone.delete_reason == "test card" and gone.deleted_at is not None
    assert world.svc.search(world.clinic_id, q="kov").total == 0
    assert world.svc.search(world.clinic_id, phone="1234567").total == 0
    trash = world.svc.search(world.clinic_id, status="trashed")
    assert [t.id for t in trash.items] == [p.id] and trash.items[0].delete_reason == "test card"
    with pytest.raises(PatientConflict) as again:
        world.svc.trash(world.clinic_id, p.id, "twice", world.actor)
    assert again.value.code == "not_active"
    with pytest.raises(PatientConflict):
        world.svc.update(world.clinic_id, p.id, PatientUpdate(version=gone.version, notes="x"), world.actor)
    back = world.svc.restore(world.clinic_id, p.id, world.actor)
    assert back.status == "active" and back.deleted_at is None and back.delete_reason is None
    assert world.svc.search(world.clinic_id, q="kov").total == 1
    with pytest.raises(PatientConflict) as not_trashed:
        world.svc.restore(world.clinic_id, p.id, world.actor)
    assert not_trashed.value.code == "not_trashed"


def test_a_patient_of_another_clinic_is_not_found(world):
    p = world.create(world.other_clinic_id, family_name="김")
    with pytest.raises(PatientNotFound):
        world.svc.get(world.clinic_id, p.id, world.actor)
    with pytest.raises(PatientNotFound):
        world.svc.trash(world.clinic_id, p.id, "x", world.actor)
    with pytest.raises(PatientNotFound):
        world.svc.update(world.clinic_id, p.id, PatientUpdate(version=1, notes="x"), world.actor)
    with Session(world.praxis.engine) as session:
        assert session.exec(select(ChartSequence.clinic_id)).all() == [world.other_clinic_id]
        assert len(session.exec(select(PatientPhone)).all()) == 0


def test_phone_search_follows_changes_and_is_indexed_on_postgresql(world, db_url):
    p = world.create(phones=[{"number": "+36301234567"}])
    world.svc.update(world.clinic_id, p.id, PatientUpdate(version=1, phones=[{"number": "+36209876543"}]),
                     world.actor)
    assert found(world, phone="1234567") == set()
    assert found(world, phone="9876543") == {"Kovács Anna"}
    assert found(world, phone="06 20 987") == {"Kovács Anna"}
    if not db_url.startswith("sqlite"):
        with Session(world.praxis.engine) as session:
            names = session.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'core_patient_phone'"))
            assert "ix_core_patient_phone_digits_trgm" in set(names.scalars())


def test_phone_search_follows_changed_and_removed_phones(world):
    p = world.create(phones=[{"number": "+36 30 765 4321"}])
    assert found(world, phone="7654321") == {"Kovács Anna"}
    world.svc.update(world.clinic_id, p.id, PatientUpdate(version=1, phones=[{"number": "+36 20 111 2233"}]),
                     world.actor)
    assert found(world, phone="7654321") == set()
    assert found(world, phone="1112233") == {"Kovács Anna"}
    world.svc.update(world.clinic_id, p.id, PatientUpdate(version=2, phones=[]), world.actor)
    assert found(world, phone="1112233") == set()
    if world.praxis.engine.dialect.name == "sqlite":  # the trigram index holds exactly the stored phones
        with world.praxis.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM core_patient_phone_fts").scalar_one() == \
                connection.exec_driver_sql("SELECT count(*) FROM core_patient_phone").scalar_one()
