"""Merging two cards of one person, and undoing it."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from core.models.outbox import OutboxItem
from core.models.patient import PatientIdentifier, PatientMerge
from core.patients import identifiers as ids
from core.patients.errors import PatientConflict
from core.patients.schemas import PatientUpdate
from plugin_sdk.errors import ValidationFailed

NID = "123456786"


@pytest.fixture
def pair(world):
    survivor = world.create(family_name="Kovács", given_name="Anna", phones=[{"number": "+36301234567"}],
                            tags=["ortho"])
    other = world.create(family_name="Kovacs", given_name="Ana", phones=[{"number": "+36301234567"},
                                                                         {"number": "+36209998888"}],
                         emails=[{"email": "ana@example.com"}], identifiers={"xx.nid": NID}, tags=["kids"], vip=True,
                         alerts=[{"type": "allergy", "text": "Latex", "severity": "high"}],
                         guardians=[{"name": "Kovács Béla"}],
                         consents=[{"type": "privacy", "signed_at": "2026-01-01T00:00:00Z"}], confirm_duplicate=True)
    return survivor, other


def test_merge_moves_everything_and_hides_the_merged_card(world, pair):
    survivor, other = pair
    result = world.svc.merge(world.clinic_id, survivor.id, other.id, world.actor)
    kept = result.survivor
    assert result.moved == {"phones": 1, "emails": 1, "identifiers": 1, "guardians": 1, "alerts": 1, "consents": 1}
    assert [p.e164 for p in kept.phones] == ["+36301234567", "+36209998888"]  # the shared number once
    assert kept.alerts[0].text == "Latex" and kept.tags == ["ortho", "kids"] and kept.vip is True
    assert kept.version == survivor.version + 1
    merged = world.svc.get(world.clinic_id, other.id, world.actor)
    assert merged.status == "merged" and merged.merged_into == survivor.id and merged.phones[0].e164 == "+36301234567"
    # Search finds the survivor only, also by what came from the merged card.
    assert [p.id for p in world.svc.search(world.clinic_id, q="kovac").items] == [survivor.id]
    assert [p.id for p in world.svc.search(world.clinic_id, identifier_type="xx.nid",
                                            identifier=NID).items] == [survivor.id]
    # The identifier was re-encrypted for its new owner.
    revealed = world.svc.get(world.clinic_id, survivor.id, world.actor, reveal=True)
    assert revealed.identifiers[0].value == NID
    with Session(world.praxis.engine) as session:
        events = [i.payload for i in session.exec(select(OutboxItem).order_by(col(OutboxItem.created_at))).all()]
    merged_event = events[-1]
    assert merged_event["name"] == "patient.merged" and merged_event["subject_id"] == str(survivor.id)
    assert merged_event["data"]["merged_id"] == str(other.id) and "phones" in merged_event["data"]["changed"]
    history = [h.action for h in world.svc.history(world.clinic_id, other.id)]
    assert "patient.merged_into" in history


def test_unmerge_moves_the_rows_back(world, pair):
    survivor, other = pair
    world.svc.merge(world.clinic_id, survivor.id, other.id, world.actor)
    back = world.svc.unmerge(world.clinic_id, other.id, world.actor)
    assert back.status == "active" and back.merged_into is None
    assert [p.e164 for p in back.phones] == ["+36301234567", "+36209998888"]
    assert back.emails[0].email == "ana@example.com" and back.alerts[0].text == "Latex"
    kept = world.svc.get(world.clinic_id, survivor.id, world.actor, reveal=True)
    assert [p.e164 for p in kept.phones] == ["+36301234567"] and kept.identifiers == []
    assert kept.tags == ["ortho"] and kept.vip is False and kept.alerts == []
    assert world.svc.get(world.clinic_id, other.id, world.actor, reveal=True).identifiers[0].value == NID
    with Session(world.praxis.engine) as session:
        row = session.exec(select(PatientIdentifier)).one()
        assert world.praxis.keyring.decrypt(row.ciphertext, ids.aad(other.id, "xx.nid")) == NID
        assert session.exec(select(PatientMerge)).one().unmerged_at is not None
    with pytest.raises(PatientConflict) as again:
        world.svc.unmerge(world.clinic_id, other.id, world.actor)
    assert again.value.code == "not_merged"


def test_unmerge_is_refused_once_a_moved_row_is_gone(world, pair):
    survivor, other = pair
    kept = world.svc.merge(world.clinic_id, survivor.id, other.id, world.actor).survivor
    world.svc.update(world.clinic_id, survivor.id, PatientUpdate(
        version=kept.version, phones=[{"number": "+36301234567"}]), world.actor)
    with pytest.raises(PatientConflict) as exc:
        world.svc.unmerge(world.clinic_id, other.id, world.actor)
    assert exc.value.code == "moved_rows_changed" and exc.value.details["missing"] == {"phones": 1}


def test_merge_refuses_conflicting_identifiers_itself_and_inactive_cards(world, pair):
    survivor, other = pair
    third = world.create(family_name="Third", identifiers={"xx.nid": "111111118"})
    with pytest.raises(ValidationFailed) as exc:
        world.svc.merge(world.clinic_id, third.id, other.id, world.actor)
    assert [e.field for e in exc.value.errors] == ["identifiers.xx.nid"]
    with pytest.raises(ValidationFailed):
        world.svc.merge(world.clinic_id, survivor.id, survivor.id, world.actor)
    world.svc.trash(world.clinic_id, third.id, "test", world.actor)
    with pytest.raises(PatientConflict) as inactive:
        world.svc.merge(world.clinic_id, survivor.id, third.id, world.actor)
    assert inactive.value.code == "not_active" and inactive.value.details["field"] == "merged_id"
