"""plugins.toml: validation with line numbers, policy, seeding and secret references."""

from __future__ import annotations

import pytest

from core.plugins.policy import PolicyError
from tests.conftest import add_clinic, fixture_plugin

GREETER = [fixture_plugin("greeter"), fixture_plugin("needs_greeter")]


def test_syntax_error_names_the_line(make_praxis):
    with pytest.raises(PolicyError, match="line 3"):
        make_praxis(GREETER, plugins_toml='[install]\nallow = ["*"]\nthis is not toml\n')


def test_unknown_field_names_line_and_field(make_praxis):
    text = '[install]\nallow = ["*"]\n\n[plugins.greeter]\nenable_for = ["HU"]\nenabled = true\n'
    with pytest.raises(PolicyError) as error:
        make_praxis(GREETER, plugins_toml=text)
    assert "plugins.toml:6: field 'plugins.greeter.enabled'" in str(error.value)


def test_setting_of_wrong_type_names_line_and_field(make_praxis):
    text = '[plugins.greeter.settings]\nendpoint = "https://x"\nretries = "many"\n'
    with pytest.raises(PolicyError) as error:
        make_praxis(GREETER, plugins_toml=text)
    assert "plugins.toml:3: field 'plugins.greeter.settings.retries'" in str(error.value)


def test_unknown_setting_is_refused(make_praxis):
    with pytest.raises(PolicyError, match="plugins.toml:2: field 'plugins.greeter.settings.colour'"):
        make_praxis(GREETER, plugins_toml='[plugins.greeter.settings]\ncolour = "red"\n')


def test_file_seeds_new_clinics_and_database_wins_afterwards(make_praxis):
    from core.audit import Actor

    praxis = make_praxis(GREETER, plugins_toml='[plugins.greeter]\nenable_for = ["HU"]\n'
                                                '[plugins.greeter.settings]\nretries = 7\n')
    budapest = add_clinic(praxis)
    seoul = add_clinic(praxis, "Seoul", "KR", "Asia/Seoul", "ko")
    assert praxis.runtime.enabled(budapest) == ["greeter"]
    assert praxis.runtime.enabled(seoul) == []
    assert praxis.runtime.context("greeter", budapest).settings.retries == 7
    praxis.plugins.configure(budapest, "greeter", {"retries": 2}, Actor(None, "t"))
    praxis.plugins.disable(budapest, "greeter", Actor(None, "t"))
    praxis.plugins.seed_all()  # a restart seeds again: existing choices stay
    assert praxis.runtime.enabled(budapest) == []
    assert praxis.runtime.context("greeter", budapest).settings.retries == 2


def test_disallowed_plugin_cannot_be_enabled_anywhere(make_praxis):
    from core.audit import Actor
    from core.plugins.service import PluginOperationError

    praxis = make_praxis(GREETER, plugins_toml='[install]\ndeny = ["greet*"]\n')
    clinic = add_clinic(praxis)
    with pytest.raises(PluginOperationError, match="not allowed"):
        praxis.plugins.enable(clinic, "greeter", Actor(None, "t"))
    assert {s.name: s.state for s in praxis.plugins.statuses(clinic)}["greeter"] == "not_allowed"


def test_secret_reference_is_read_from_the_environment_at_use(make_praxis, monkeypatch):
    praxis = make_praxis(GREETER, plugins_toml='[plugins.greeter.settings]\napi_key = { env = "GREETER_KEY" }\n')
    clinic = add_clinic(praxis)
    monkeypatch.setenv("GREETER_KEY", "from-env-1")
    assert praxis.runtime.context("greeter", clinic).settings.api_key.get_secret_value() == "from-env-1"
    status = {s.name: s for s in praxis.plugins.statuses(clinic)}["greeter"]
    assert status.settings["api_key"] == {"set": True}
