"""`praxis plugins ...` as an admin would use it, against the plugins installed in this environment."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from click.testing import CliRunner

from core.cli.main import cli
from tests.conftest import add_clinic

ROOT = Path(__file__).resolve().parents[1]


def first_party_plugins() -> set[str]:
    names = set()
    for pyproject in ROOT.glob("plugins/*/pyproject.toml"):
        data = tomllib.loads(pyproject.read_text())
        names |= set(data["project"]["entry-points"]["praxis.plugins"])
    return names


def test_list_json_shows_every_first_party_plugin_with_state_per_clinic(make_praxis, cli_env):
    praxis = make_praxis(installed=True, plugins_toml=(ROOT / "plugins.toml").read_text())
    add_clinic(praxis, "Budapest", "HU")
    add_clinic(praxis, "Seoul", "KR", "Asia/Seoul", "ko")
    cli_env(praxis)
    result = CliRunner().invoke(cli, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert first_party_plugins() <= set(rows)
    for name in first_party_plugins():
        assert set(rows[name]["clinics"]) == {"Budapest", "Seoul"}
    if "hungary" in rows:
        assert rows["hungary"]["clinics"]["Budapest"]["state"] == "enabled"
        assert rows["hungary"]["clinics"]["Seoul"]["state"] == "disabled"


def test_enable_disable_config_round_trip_and_readable_errors(make_praxis, cli_env):
    praxis = make_praxis(installed=True)
    add_clinic(praxis, "Budapest", "HU")
    cli_env(praxis)
    runner = CliRunner()
    plugin = sorted(first_party_plugins())[0] if first_party_plugins() else None
    unknown = runner.invoke(cli, ["plugins", "enable", "no_such_plugin", "--clinic", "Budapest"])
    assert unknown.exit_code == 1 and "no plugin named 'no_such_plugin'" in unknown.output
    no_clinic = runner.invoke(cli, ["plugins", "enable", "x", "--clinic", "Atlantis"])
    assert no_clinic.exit_code == 1 and "no clinic 'Atlantis'" in no_clinic.output
    assert "Traceback" not in unknown.output + no_clinic.output
    if plugin is None:
        return
    enabled = runner.invoke(cli, ["plugins", "enable", plugin, "--clinic", "Budapest", "--with-dependencies"])
    assert enabled.exit_code == 0 and "Enabled in Budapest" in enabled.output
    listed = json.loads(runner.invoke(cli, ["plugins", "list", "--json", "--clinic", "Budapest"]).output)
    assert {r["name"]: r for r in listed}[plugin]["clinics"]["Budapest"]["state"] == "enabled"
    bad = runner.invoke(cli, ["plugins", "config", plugin, "--clinic", "Budapest", "--set", "no_such_field=1"])
    assert bad.exit_code == 1 and "no_such_field" in bad.output
    disabled = runner.invoke(cli, ["plugins", "disable", plugin, "--clinic", "Budapest"])
    assert disabled.exit_code == 0 and f"Disabled {plugin}" in disabled.output
