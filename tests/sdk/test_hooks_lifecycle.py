"""Lifecycle hooks: praxis_startup, praxis_plugin_enabled and praxis_plugin_disabled."""

from __future__ import annotations

from typing import Any

from tests.sdk.plugins import hooked

HOOKED = "hooked = tests.sdk.plugins.hooked"


def test_praxis_startup_runs_once_when_the_app_is_built(plugin_app: Any) -> None:
    hooked.CALLS.clear()
    plugin_app(HOOKED, enable=False)
    assert hooked.CALLS == [("startup", "praxis")]


def test_praxis_plugin_enabled_and_disabled_reach_only_the_clinic_concerned(plugin_app: Any) -> None:
    hooked.CALLS.clear()
    app = plugin_app(HOOKED)
    assert hooked.CALLS[-1] == ("enabled", app.clinic_id, "hooked")
    other = app.add_clinic("Other", "HU")
    hooked.CALLS.clear()
    assert app.disable() is True
    assert hooked.CALLS == [("disabled", app.clinic_id, "hooked")]
    hooked.CALLS.clear()
    assert app.disable() is False  # already disabled: no second call
    app.enable(other)
    assert hooked.CALLS == [("enabled", other, "hooked")]
