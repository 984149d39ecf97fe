"""Master key rotation: old values keep decrypting, `rotate` moves them to the current key."""

from __future__ import annotations

import base64
import secrets

import pytest

from core.audit import Actor
from core.crypto import Keyring, MasterKeyError, parse_keys
from core.rotation import rotate
from tests.conftest import add_clinic, fixture_plugin


def _key(kid: int) -> str:
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def test_values_bound_to_their_place():
    ring = Keyring(parse_keys(_key(1)))
    token = ring.encrypt("037687210", "core_patient_identifier:a:hu.taj")
    assert ring.decrypt(token, "core_patient_identifier:a:hu.taj") == "037687210"
    with pytest.raises(MasterKeyError, match="moved from another row"):
        ring.decrypt(token, "core_patient_identifier:b:hu.taj")


def test_malformed_keys_are_refused_with_reasons():
    with pytest.raises(MasterKeyError, match="32 bytes"):
        parse_keys("1:" + base64.b64encode(b"short").decode())
    with pytest.raises(MasterKeyError, match="<id>:<base64"):
        parse_keys("no-colon")


def test_rotation_reencrypts_plugin_secrets(make_praxis, master_key):
    praxis = make_praxis([fixture_plugin("greeter")])
    clinic = add_clinic(praxis)
    praxis.plugins.configure(clinic, "greeter", {"api_key": "vendor-secret"}, Actor(None, "t"))
    new_ring = Keyring(parse_keys(f"{_key(2)},{master_key}"))
    praxis.runtime.keyring = new_ring
    praxis.keyring = new_ring
    assert praxis.runtime.context("greeter", clinic).settings.api_key.get_secret_value() == "vendor-secret"
    reports = rotate(praxis.engine, new_ring)
    assert [(r.column, r.checked, r.rotated) for r in reports][0] == ("core_plugin_state.secrets", 1, 1)
    assert [r.rotated for r in rotate(praxis.engine, new_ring)][0] == 0
    only_new = Keyring([new_ring.current])
    praxis.runtime.keyring = only_new
    praxis.runtime.state.invalidate()
    assert praxis.runtime.context("greeter", clinic).settings.api_key.get_secret_value() == "vendor-secret"


def test_blind_index_survives_rotation_and_removal_of_old_keys():
    from core.crypto import parse_keyring

    index = base64.b64encode(secrets.token_bytes(32)).decode()
    old, new = _key(1), _key(2)
    before = parse_keyring(f"{old},index:{index}").blind_index("hu.taj", "037 687 210")
    assert parse_keyring(f"{new},{old},index:{index}").blind_index("hu.taj", "037687210") == before
    assert parse_keyring(f"{new},index:{index}").blind_index("hu.taj", "037-687-210") == before


def test_embedded_default_creates_a_key_file_once(tmp_path):
    from core.crypto import load_keyring

    first = load_keyring(None, None, tmp_path, create=True)
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    again = load_keyring(None, None, tmp_path, create=True)
    assert again.decrypt(first.encrypt("x", "aad"), "aad") == "x"
    with pytest.raises(MasterKeyError, match="no master key"):
        load_keyring(None, None, tmp_path / "elsewhere", create=False)
