"""Discovery, quarantine, per-clinic enablement and isolation of plugin hooks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from core.audit import Actor
from core.models.audit import AuditEntry
from core.models.plugin import PluginState
from core.plugins.service import PluginOperationError
from plugin_sdk.errors import ValidationFailed
from tests.conftest import add_clinic, fixture_plugin

ADMIN = Actor(None, "test admin")
ALL = [fixture_plugin(n) for n in ("greeter", "needs_greeter", "broken_import", "bad_manifest", "future_api",
                                   "flaky", "cycle_a", "cycle_b")]


def test_broken_plugins_are_quarantined_with_reasons_and_the_rest_load(make_praxis):
    praxis = make_praxis(ALL)
    plugins = praxis.runtime.plugins
    assert "No module named 'praxis_module_that_does_not_exist'" in plugins["broken_import"].quarantine_reason
    assert "invalid manifest" in plugins["bad_manifest"].quarantine_reason
    assert "version" in plugins["bad_manifest"].quarantine_reason
    assert "supports plugin API >=2.0" in plugins["future_api"].quarantine_reason
    assert "dependency cycle" in plugins["cycle_a"].quarantine_reason
    assert "dependency cycle" in plugins["cycle_b"].quarantine_reason
    assert praxis.runtime.available() == ["greeter", "needs_greeter", "flaky"] or set(
        praxis.runtime.available()) == {"greeter", "needs_greeter", "flaky"}
    assert praxis.runtime.available().index("greeter") < praxis.runtime.available().index("needs_greeter")


def test_missing_dependency_quarantines_the_dependant(make_praxis):
    praxis = make_praxis([fixture_plugin("needs_greeter")])
    assert "requires plugin 'greeter'" in praxis.runtime.plugins["needs_greeter"].quarantine_reason


def test_enable_asks_for_dependencies_and_disable_lists_dependants(make_praxis):
    praxis = make_praxis(ALL)
    clinic = add_clinic(praxis)
    with pytest.raises(PluginOperationError) as refused:
        praxis.plugins.enable(clinic, "needs_greeter", ADMIN)
    assert refused.value.code == "dependencies_disabled" and refused.value.details == ["greeter"]
    assert praxis.plugins.enable(clinic, "needs_greeter", ADMIN, with_dependencies=True) == [
        "greeter", "needs_greeter"]
    with pytest.raises(PluginOperationError) as refused:
        praxis.plugins.disable(clinic, "greeter", ADMIN)
    assert refused.value.code == "has_dependants" and refused.value.details == ["needs_greeter"]
    assert praxis.plugins.disable(clinic, "needs_greeter", ADMIN)
    assert praxis.plugins.disable(clinic, "greeter", ADMIN)
    with Session(praxis.engine) as session:
        actions = [(e.action, e.target) for e in session.exec(select(AuditEntry).order_by(AuditEntry.seq))]
    assert actions == [("plugin.enabled", "plugin:greeter"), ("plugin.enabled", "plugin:needs_greeter"),
                       ("plugin.disabled", "plugin:needs_greeter"), ("plugin.disabled", "plugin:greeter")]


def test_quarantined_and_unknown_plugins_cannot_be_enabled(make_praxis):
    praxis = make_praxis(ALL)
    clinic = add_clinic(praxis)
    with pytest.raises(PluginOperationError, match="quarantined"):
        praxis.plugins.enable(clinic, "broken_import", ADMIN)
    with pytest.raises(PluginOperationError, match="no plugin named 'nope'") as unknown:
        praxis.plugins.enable(clinic, "nope", ADMIN)
    assert unknown.value.status == 404
    with pytest.raises(PluginOperationError, match="no clinic 999"):
        praxis.plugins.enable(999, "greeter", ADMIN)


def test_hook_calls_reach_only_plugins_enabled_in_that_clinic(make_praxis):
    praxis = make_praxis(ALL)
    budapest, seoul = add_clinic(praxis), add_clinic(praxis, "Seoul", "KR", "Asia/Seoul", "ko")
    praxis.plugins.enable(budapest, "greeter", ADMIN)
    patient = {"family_name": "Forbidden"}
    with pytest.raises(ValidationFailed) as vetoed:
        praxis.runtime.veto("praxis_validate_patient", budapest, patient=patient, is_new=True)
    assert vetoed.value.plugin == "greeter"
    assert vetoed.value.errors[0].field == "family_name"
    praxis.runtime.veto("praxis_validate_patient", seoul, patient=patient, is_new=True)  # not enabled there


def test_a_raising_plugin_does_not_stop_others_and_opens_its_circuit(make_praxis):
    praxis = make_praxis(ALL)  # circuit_threshold=3 in tests
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, "greeter", ADMIN)
    praxis.plugins.enable(clinic, "flaky", ADMIN)
    for _ in range(3):
        results = {r.plugin: r for r in praxis.runtime.call("praxis_menu_items", clinic)}
        assert results["greeter"].ok and results["greeter"].value[0].title == "Greetings"
        assert "menu exploded" in results["flaky"].error
    states = {s.name: s for s in praxis.plugins.statuses(clinic)}
    assert states["flaky"].state == "unhealthy"
    assert "menu exploded" in states["flaky"].last_error
    assert [r.plugin for r in praxis.runtime.call("praxis_menu_items", clinic)] == ["greeter"]
    praxis.plugins.reset_health(clinic, "flaky", ADMIN)
    assert {s.name: s.state for s in praxis.plugins.statuses(clinic)}["flaky"] == "enabled"


def test_settings_are_validated_per_field_and_secrets_encrypted_never_shown(make_praxis):
    from core.plugins.settings import SettingsInvalid

    praxis = make_praxis(ALL)
    clinic = add_clinic(praxis)
    with pytest.raises(SettingsInvalid) as invalid:
        praxis.plugins.configure(clinic, "greeter", {"endpoint": "ftp://x", "retries": 99, "colour": 1}, ADMIN)
    assert {e.field for e in invalid.value.errors} == {"colour"}
    with pytest.raises(SettingsInvalid) as invalid:
        praxis.plugins.configure(clinic, "greeter", {"endpoint": "ftp://x", "retries": 99}, ADMIN)
    assert {e.field for e in invalid.value.errors} == {"endpoint", "retries"}
    shown = praxis.plugins.configure(clinic, "greeter", {"api_key": "s3cr3t-Value", "retries": 2}, ADMIN)
    assert shown == {"endpoint": "https://greeter.example/api", "retries": 2, "api_key": {"set": True}}
    with Session(praxis.engine) as session:
        row = session.exec(select(PluginState).where(PluginState.plugin == "greeter")).one()
        assert "s3cr3t-Value" not in str(row.secrets) and row.secrets["api_key"]
    # a blank secret keeps the stored one
    praxis.plugins.configure(clinic, "greeter", {"api_key": "", "retries": 1}, ADMIN)
    ctx = praxis.runtime.context("greeter", clinic)
    assert ctx.settings.api_key.get_secret_value() == "s3cr3t-Value"
    if praxis.settings.is_sqlite:
        raw = (praxis.settings.url.split("///", 1)[1])
        praxis.engine.dispose()
        wal = Path(raw + "-wal")
        blob = Path(raw).read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        assert b"s3cr3t-Value" not in blob


def test_hooks_and_events_inside_a_write_transaction_do_not_wait_on_themselves(make_praxis):
    """On SQLite a state refresh or a failure count made while this thread holds the write lock must not
    queue behind that lock (it used to stall 30 s and fail with 'database is locked')."""
    import time

    from core import events
    from core.db import transaction

    praxis = make_praxis(ALL)  # state_refresh_seconds=0: every call refreshes
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, "greeter", ADMIN)
    praxis.plugins.enable(clinic, "flaky", ADMIN)
    started = time.monotonic()
    with transaction(praxis.engine) as session:
        for _ in range(3):
            events.emit(session, praxis.runtime, "patient.updated", clinic_id=clinic, subject_type="patient",
                        subject_id="p1")
            praxis.runtime.call("praxis_menu_items", clinic)  # flaky raises: its failure is counted
    assert time.monotonic() - started < 5
    assert {s.name: s.state for s in praxis.plugins.statuses(clinic)}["flaky"] == "unhealthy"


def test_praxis_panels_come_only_from_plugins_enabled_in_the_clinic(make_praxis):
    praxis = make_praxis(ALL)
    budapest, seoul = add_clinic(praxis), add_clinic(praxis, "Seoul", "KR", "Asia/Seoul", "ko")
    praxis.plugins.enable(budapest, "greeter", ADMIN)
    panels = [r.value for r in praxis.runtime.call("praxis_panels", budapest, where="patient")]
    assert [p.title for group in panels for p in group] == ["Greetings sent"]
    assert praxis.runtime.call("praxis_panels", seoul, where="patient") == []
    assert [r.value for r in praxis.runtime.call("praxis_panels", budapest, where="visit")] == [[]]
