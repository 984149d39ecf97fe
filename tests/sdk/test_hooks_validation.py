"""Veto hooks: praxis_validate_appointment through runtime.veto, praxis_validate_settings through configure."""

from __future__ import annotations

from typing import Any

import pytest

from core.plugins.settings import SettingsInvalid
from plugin_sdk.errors import ValidationFailed
from tests.sdk.plugins import hooked

HOOKED = "hooked = tests.sdk.plugins.hooked"


def test_praxis_validate_appointment_vetoes_with_field_errors_only_where_enabled(plugin_app: Any) -> None:
    app = plugin_app(HOOKED)
    with pytest.raises(ValidationFailed) as refused:
        app.veto("praxis_validate_appointment", appointment={"room": "closed"}, is_new=True)
    assert refused.value.plugin == "hooked"
    assert [(e.field, e.code) for e in refused.value.errors] == [("room", "room_closed")]
    app.veto("praxis_validate_appointment", appointment={"room": "1"}, is_new=False)
    other = app.add_clinic("Other", "HU")
    hooked.CALLS.clear()
    app.veto("praxis_validate_appointment", clinic_id=other, appointment={"room": "closed"}, is_new=True)
    assert hooked.CALLS == []  # not enabled there: never asked


def test_praxis_validate_settings_refuses_what_the_schema_cannot_express(plugin_app: Any) -> None:
    app = plugin_app(HOOKED)
    with pytest.raises(SettingsInvalid) as refused:
        app.configure({"low": 20, "high": 5})
    assert [(e.field, e.code) for e in refused.value.errors] == [("low", "range")]
    assert app.ctx.settings.low == 1  # nothing saved
    assert app.configure({"low": 2, "high": 5}) == {"low": 2, "high": 5}
    assert app.ctx.settings.low == 2
