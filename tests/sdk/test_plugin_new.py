"""``praxis plugin new``: every kind generates a plugin that loads and passes its own and the contract tests.

The generated suites run in a fresh interpreter, as a vendor would run them; two deliberately broken
variants, run at the same time in a second process, prove the contract tests catch real mistakes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import uuid
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from core.cli.main import cli
from core.cli.plugin_new import KINDS, PluginNewError, render_plugin
from core.plugins.discovery import discover
from plugin_sdk.testing import (
    CountryPluginContract,
    LabConnectorContract,
    MessagingProviderContract,
    SigningProviderContract,
)

PYTHON = Path(sys.executable)
RUFF = PYTHON.parent / "ruff"
CONTRACTS = {"sms": MessagingProviderContract, "signing": SigningProviderContract, "lab": LabConnectorContract,
             "country": CountryPluginContract}


@dataclass
class Run:
    """The outcome of one generated plugin's tests, read from the JUnit report."""

    folder: Path
    passed: list[str]
    failed: list[str]
    output: str


def _pytest(root: Path, label: str, folders: list[Path], only: str | None = None) -> tuple[subprocess.Popen[str], Path]:
    """Run the suites of several generated plugins in one fresh interpreter, as their own folders would be
    run: each plugin folder on the path, test modules imported by file (the plugins share module names)."""
    ini = root / f"{label}.ini"
    ini.write_text("[pytest]\naddopts = --import-mode=importlib -p no:cacheprovider\n"
                   "pythonpath = " + " ".join(str(f) for f in folders) + "\n")
    targets = [folder / only if only else folder for folder in folders]
    junit = root / f"{label}.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    command = [str(PYTHON), "-m", "pytest", "-c", str(ini), "--rootdir", str(root), "-q", "--no-header", "-rfE",
               f"--junitxml={junit}", *(str(t) for t in targets)]
    process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    return process, junit


def _outcomes(junit: Path) -> dict[str, tuple[list[str], list[str]]]:
    """{plugin folder name: (passed test names, failed or erroring test names)}."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        plugin = case.get("classname", "").split(".")[0]
        passed, failed = found.setdefault(plugin, ([], []))
        bad = any(child.tag in {"failure", "error"} for child in case)
        skipped = any(child.tag == "skipped" for child in case)
        if bad:
            failed.append(case.get("name", ""))
        elif not skipped:
            passed.append(case.get("name", ""))
    return found


def _break(folder: Path, relative: str, old: str, new: str) -> None:
    path = folder / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"mutation target not found in {relative}: {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Generate one plugin per kind plus two broken variants, and run their suites (two processes at once)."""
    root = tmp_path_factory.mktemp("generated")
    folders = {kind: render_plugin(f"gen_{kind}", kind, root, country="HU" if kind == "country" else "XX")
               for kind in KINDS}
    # The SMS client forgets the Idempotency-Key: a resend now reaches the patient twice.
    folders["broken_sms"] = render_plugin("broken_sms", "sms", root)
    _break(folders["broken_sms"], "praxis_broken_sms/client.py",
           'headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}', "headers = {}")
    # The signer checks only the format and the key id, not the signature itself.
    folders["broken_signing"] = render_plugin("broken_signing", "signing", root)
    _break(folders["broken_signing"], "praxis_broken_signing/signer.py",
           "        public_key.verify(signature[len(MAGIC) + KEY_ID_LENGTH:], document)\n", "        pass\n")
    good = _pytest(root, "good", [folders[kind] for kind in KINDS])
    # The broken variants run only the contract: it alone must catch the mistake.
    broken = _pytest(root, "broken", [folders[n] for n in folders if "broken" in n], only="tests/test_contract.py")
    runs: dict[str, Run] = {}
    for process, junit in (good, broken):
        output, _ = process.communicate(timeout=600)
        outcomes = _outcomes(junit)
        for name, folder in folders.items():
            if folder.name in outcomes:
                passed, failed = outcomes[folder.name]
                runs[name] = Run(folder, passed, failed, output)
    return runs


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_generated_plugin_passes_its_tests_and_the_contract_tests(generated: dict[str, Run], kind: str) -> None:
    run = generated[kind]
    assert not run.failed, run.output
    contract_tests = {n for n in dir(CONTRACTS[kind]) if n.startswith("test_")}
    ran = {name.split("[")[0] for name in run.passed}
    assert contract_tests <= ran, f"contract tests that did not run: {sorted(contract_tests - ran)}"
    assert len(run.passed) > len(contract_tests)  # plus the plugin's own unit and integration tests


def test_the_contract_catches_an_sms_connector_without_idempotency(generated: dict[str, Run]) -> None:
    failed = generated["broken_sms"].failed
    assert "test_the_same_idempotency_key_is_not_delivered_twice" in failed
    assert "test_a_lost_answer_never_leads_to_a_second_delivery" in failed


def test_the_contract_catches_a_signer_that_does_not_check_the_signature(generated: dict[str, Run]) -> None:
    run = generated["broken_signing"]
    assert "test_one_changed_byte_fails_verification_naming_the_check" in run.failed
    assert "test_a_signature_verifies" in run.passed


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_generated_package_loads_through_its_entry_point(tmp_path: Path, kind: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"ep_{kind}_{uuid.uuid4().hex[:6]}"
    folder = render_plugin(name, kind, tmp_path)
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    value = project["project"]["entry-points"]["praxis.plugins"][name]
    assert value == f"praxis_{name}.plugin"
    monkeypatch.syspath_prepend(str(folder))
    plugins, order = discover([EntryPoint(name=name, value=value, group="praxis.plugins")])
    assert plugins[name].quarantine_reason is None and order == [name]
    manifest = plugins[name].manifest
    assert manifest is not None and manifest.category.value == {"sms": "messaging"}.get(kind, kind)
    for path in folder.rglob("*"):
        assert not path.name.endswith(".tmpl")
        if path.is_file():
            assert "{{" not in path.read_text(encoding="utf-8") or path.suffix == ".md", path


def test_generated_code_passes_ruff(tmp_path: Path) -> None:
    folders = [render_plugin(f"lint_{kind}", kind, tmp_path) for kind in KINDS]
    for folder in folders:
        result = subprocess.run([str(RUFF), "check", "--no-cache", "."], cwd=folder, capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_cli_generates_into_the_output_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plugin", "new", "acme_sms", "--kind", "sms", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"Created SMS vendor plugin 'acme_sms' in {tmp_path / 'acme_sms'}" in result.output
    assert (tmp_path / "acme_sms" / "praxis_acme_sms" / "fake_server.py").is_file()
    assert (tmp_path / "acme_sms" / "tests" / "test_contract.py").is_file()


def test_the_default_output_is_the_plugins_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["plugin", "new", "here_lab", "--kind", "lab"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plugins" / "here_lab" / "praxis_here_lab" / "connector.py").is_file()


@pytest.mark.parametrize(("name", "message"), [
    ("Acme-SMS", "invalid plugin name 'Acme-SMS'"),
    ("9lives", "starting with a letter"),
    ("x", "2-41 characters"),
])
def test_invalid_names_are_refused_readably(tmp_path: Path, name: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["plugin", "new", name, "--kind", "sms", "--output", str(tmp_path)])
    assert result.exit_code == 1
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_name_with_dashes_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(PluginNewError, match="try 'acme_sms'"):
        render_plugin("Acme-SMS", "sms", tmp_path)


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "mine.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["plugin", "new", "acme", "--kind", "lab", "--output", str(tmp_path)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert sorted(p.name for p in (tmp_path / "acme").iterdir()) == ["mine.txt"]


def test_unknown_kind_bad_country_and_a_file_as_output_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plugin", "new", "acme", "--kind", "fax", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "'fax' is not one of" in result.output
    result = CliRunner().invoke(cli, ["plugin", "new", "acme", "--kind", "country", "--country", "HUN",
                                      "--output", str(tmp_path)])
    assert result.exit_code == 1 and "ISO 3166 alpha-2" in result.output
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(PluginNewError, match="is a file"):
        render_plugin("acme", "sms", file)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
