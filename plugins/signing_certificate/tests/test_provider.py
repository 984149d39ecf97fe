"""The certificate provider inside a real Praxis: key storage, refusals, the TSA's faults and verification."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asn1crypto import cms as acms
from praxis_signing_certificate import plugin
from praxis_signing_certificate.fake_tsa import FakeTSA
from praxis_signing_certificate.models import SigningKey
from praxis_signing_certificate.settings import Settings
from praxis_signing_certificate.testing import TestPKI
from sqlmodel import Session, select

from plugin_sdk import PermanentError, RetryableError
from plugin_sdk.errors import ValidationFailed

PASSWORD = "p12-Passw0rd!"
DOC = "Kezelés: 36-os fog tömése. 치료: 36번 치아 충전.".encode()


def _row(app: Any, user_id: int) -> SigningKey:
    with Session(app.praxis.engine) as session:
        return session.exec(select(SigningKey).where(SigningKey.user_id == user_id,
                                                     SigningKey.active == True)).one()  # noqa: E712


def _checks(report: Any) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.passed, c.message) for c in report.checks}


def test_the_private_key_is_stored_encrypted_and_the_password_nowhere(app, doctor, enroll):
    enrollment = enroll(app, 7, doctor)
    assert enrollment.ready and enrollment.details["subject"] == "Dr. Kim Minji"
    row = _row(app, 7)
    from cryptography.hazmat.primitives import serialization

    der = doctor.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    assert der[-64:] not in row.encrypted_key and len(row.key_nonce) == 12 and len(row.key_salt) == 16
    with app.praxis.engine.connect() as conn:
        dump = "\n".join(str(r) for table in ("signing_certificate_key", "core_audit", "core_plugin_state")
                         for r in conn.exec_driver_sql(f"SELECT * FROM {table}"))  # noqa: S608
    assert PASSWORD not in dump
    status = next(s for s in app.praxis.plugins.statuses(app.clinic_id) if s.name == "signing_certificate")
    assert status.settings["key_encryption_secret"] == {"set": True}


def test_a_key_moved_to_another_doctor_or_a_changed_secret_cannot_sign(app, doctor, pki, enroll):
    enroll(app, 7, doctor)
    enroll(app, 8, pki.doctor("Dr. Other"))
    with Session(app.praxis.engine) as session:  # someone copies doctor 7's key onto doctor 8's row
        mine, theirs = _row(app, 7), _row(app, 8)
        theirs.encrypted_key, theirs.key_nonce, theirs.key_salt = mine.encrypted_key, mine.key_nonce, mine.key_salt
        session.add(theirs)
        session.commit()
    with pytest.raises(PermanentError) as raised:
        plugin.PROVIDER.sign(app.ctx, 8, [DOC])
    assert raised.value.code == "key_unreadable"
    app.configure({"key_encryption_secret": "another-secret-that-is-long-enough-0123456789"})
    with pytest.raises(PermanentError) as raised:
        plugin.PROVIDER.sign(app.ctx, 7, [DOC])
    assert raised.value.code == "key_unreadable" and "upload the certificate again" in str(raised.value)


def test_uploads_are_refused_naming_the_field(app, pki, doctor):
    def refused(data: dict[str, Any]) -> tuple[str, str]:
        with pytest.raises(ValidationFailed) as raised:
            plugin.PROVIDER.enroll(app.ctx, 7, "certificate", data)
        error = raised.value.errors[0]
        return error.field, error.code

    assert refused({"pkcs12": pki.expired().pkcs12_b64(PASSWORD), "password": PASSWORD}) == \
        ("pkcs12", "certificate_expired")
    assert refused({"pkcs12": pki.not_yet_valid().pkcs12_b64(PASSWORD), "password": PASSWORD}) == \
        ("pkcs12", "certificate_not_yet_valid")
    assert refused({"pkcs12": doctor.pkcs12_b64(PASSWORD), "password": "nope"}) == ("password", "wrong_password")
    assert refused({"pkcs12": "%%%", "password": PASSWORD}) == ("pkcs12", "invalid_base64")
    assert refused({"pkcs12": TestPKI("Rogue CA").doctor().pkcs12_b64(PASSWORD), "password": PASSWORD}) == \
        ("pkcs12", "untrusted")
    assert refused({"password": PASSWORD}) == ("pkcs12", "required")


def test_a_signature_outlives_its_certificate_thanks_to_the_time_stamp(app, doctor, enroll, praxis_clock):
    from datetime import UTC, datetime

    praxis_clock.set(datetime.now(UTC))
    enroll(app, 7, doctor)
    (result,) = plugin.PROVIDER.sign(app.ctx, 7, [DOC])
    assert result.expires_at == doctor.certificate.not_valid_after_utc
    praxis_clock.set(doctor.certificate.not_valid_after_utc + timedelta(days=400))
    report = plugin.PROVIDER.verify(app.ctx, DOC, result.signature)
    assert report.valid, _checks(report)
    assert "time-stamped at" in _checks(report)["certificate validity"][1]
    with pytest.raises(PermanentError) as raised:  # but it cannot sign any more
        plugin.PROVIDER.sign(app.ctx, 7, [DOC])
    assert raised.value.code == "certificate_expired"


def test_the_tsa_down_or_refusing(app, doctor, enroll, fake_tsa):
    enroll(app, 7, doctor)
    fake_tsa.stop()
    with pytest.raises(RetryableError) as down:
        plugin.PROVIDER.sign(app.ctx, 7, [DOC])
    assert down.value.code == "tsa_unreachable"
    fake_tsa.start()
    fake_tsa.fail_next(1, status=502)
    with pytest.raises(RetryableError):
        plugin.PROVIDER.sign(app.ctx, 7, [DOC])
    fake_tsa.reject_next("bad_alg", "no")
    with pytest.raises(PermanentError) as rejected:
        plugin.PROVIDER.sign(app.ctx, 7, [DOC])
    assert rejected.value.code == "tsa_rejected" and "bad_alg" in str(rejected.value)
    assert len(plugin.PROVIDER.sign(app.ctx, 7, [DOC, DOC + b"!"])) == 2
    assert len(fake_tsa.effects) == 2


def test_time_stamps_of_an_untrusted_tsa_or_none_at_all_fail_verification(plugin_app, pki, doctor, enroll,
                                                                         settings_for):
    with FakeTSA(TestPKI("Unknown TSA root").tsa()) as rogue:
        app = plugin_app(plugin, settings=settings_for(pki, rogue), country="KR")
        enroll(app, 7, doctor)
        (result,) = plugin.PROVIDER.sign(app.ctx, 7, [DOC])
    checks = _checks(plugin.PROVIDER.verify(app.ctx, DOC, result.signature))
    assert checks["time-stamp"][0] is False and "not trusted" in checks["time-stamp"][1]

    info = acms.ContentInfo.load(result.signature)  # strip the token: a signature without a time-stamp
    signer = info["content"]["signer_infos"][0]
    signer["unsigned_attrs"] = acms.CMSAttributes([])
    info["content"]["signer_infos"] = acms.SignerInfos([signer])
    bare = info.dump(force=False)
    checks = _checks(plugin.PROVIDER.verify(app.ctx, DOC, bare))
    assert checks["time-stamp"] == (False, "no time-stamp token (required)")


def test_settings_and_the_connection_test(app, fake_tsa, pki):
    with pytest.raises(ValueError):
        Settings(tsa_url="ftp://tsa")
    with pytest.raises(ValueError):
        Settings(trusted_roots_pem="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
    with pytest.raises(ValueError):
        Settings(key_encryption_secret="short")
    (ok,) = app.call("praxis_test_connection", settings=Settings(tsa_url=fake_tsa.url, trusted_roots_pem=pki.pem))
    assert ok.value.ok and ok.value.details["tsa"] == "Praxis Test TSA"
    fake_tsa.stop()
    (down,) = app.call("praxis_test_connection", settings=Settings(tsa_url=fake_tsa.url))
    assert not down.value.ok and down.value.details["code"] == "tsa_unreachable"
